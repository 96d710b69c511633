#!/usr/bin/env bash
# Voice conversion as audio, with objective scores and a listening page (docs/convert.md).
#   utils/convert_voices.sh [options] <model.pt> <data-dir> <out-dir>
# e.g. utils/convert_voices.sh --num-pairs 4 --seed 777 --fbank-config conf/fbank.conf \
#        exp/fhvae/final.pt data/test exp/fhvae/listen
# Holds out one utterance of every speaker (or --target-factor condition) of <data-dir>,
# decodes its z1 frame by frame with another speaker's z2, inverts the FBank to audio
# (Kaldi's mel filterbank + Griffin-Lim) and writes
#   <out-dir>/wav/*.wav                converted, re-synthesised source, originals of the page
#   <out-dir>/index.html, png/         the listening page (--num-pairs examples, relative links)
#   <out-dir>/scores.md, scores.tsv    judged target speaker, source phones, mel distortion
#   <out-dir>/log/convert.log
# One job: the judges are trained on, and the targets pooled over, the whole set.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

cmd=run_local.sh      # job launcher called as: $cmd <log> <command...>
num_pairs=4           # examples on the listening page
seed=777              # seed of the held-out sources, targets and page examples
target_factor=speaker # speaker | noise | channel | gender (reads utt2<factor>)
z2_mode=shift         # shift: source z2 moved to the target | replace: target s-vector per frame
frame_mode=centre     # centre | average of the decoded windows on each frame
max_sources=0         # convert at most this many held-out utterances (0: one per speaker)
griffin_lim_iters=64  # Griffin-Lim iterations
fbank_config=         # Kaldi FBank options of feats.scp (empty: Kaldi's, 80 bins, dither 0)
device=auto           # auto (GPU when present), cpu, cuda, cuda:N
num_threads=1         # CPU threads of the job (torch and OpenMP)

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "usage: $0 [options] <model.pt> <data-dir> <out-dir>  (--help for options)" >&2
  exit 1
fi
model=$1
data=$2
dir=$3
for f in "$model" "$data/feats.scp" "$data/utt2spk" ${fbank_config:+"$fbank_config"}; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

opts=(--num-pairs "$num_pairs" --seed "$seed" --target-factor "$target_factor"
      --z2-mode "$z2_mode" --frame-mode "$frame_mode" --max-sources "$max_sources"
      --griffin-lim-iters "$griffin_lim_iters" --device "$device" --num-threads "$num_threads")
[ -n "$fbank_config" ] && opts+=(--fbank-config "$fbank_config")

mkdir -p "$dir/log"
if ! $cmd "$dir/log/convert.log" \
    OMP_NUM_THREADS=$num_threads python -m fhvae.bin.convert "${opts[@]}" \
      "$model" "$data" "$dir"; then
  echo "$0: conversion failed; see $dir/log/convert.log" >&2
  exit 1
fi
echo "$0: $(grep -c $'\tconverted audio\t' "$dir/scores.tsv") converted utterances in $dir/wav;" \
     "listen: $dir/index.html; scores: $dir/scores.md"
