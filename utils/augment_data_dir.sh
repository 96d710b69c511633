#!/usr/bin/env bash
# Conditional data augmentation with a trained FHVAE (python -m fhvae augment, in jobs).
#   utils/augment_data_dir.sh [options] <model.pt> <src-data> <target-data> [<target-data> ...] \
#                             <out-root> <exp-dir>
# e.g. utils/augment_data_dir.sh --nj 4 --cmd "$extract_cmd" exp/fhvae/final.pt \
#        data/train_clean data/noisy_a data/noisy_b data exp/fhvae/augment
# For every target dir (untranscribed speech of a condition: only its feats.scp is read,
# and its utt2noise/utt2channel where they hold one label) writes <out-root>/<src>_aug_<target>/:
# FBank of each source utterance decoded from its z1 with z2 moved to the target's domain
# (by default the source plus that decoding's change from its own, --residual add),
# frame-aligned with the source (text, phone alignments and utt2* carry over), on the
# source's FBank scale; utterance ids <utt>-<target> (or --suffix), the source's speakers,
# utt2uniq, per-speaker cmvn.scp; arks in --fbank-dir. Splits <src-data> with
# utils/split_data.sh into --nj parts, runs the jobs through --cmd (logs in
# <exp-dir>/log/augment.JOB.log), then merges. No wav.scp: check the result with
# utils/validate_data_dir.sh --no-wav; add it to the source with utils/combine_data.sh.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                  # number of parallel jobs (at most the source's speakers)
cmd=run_local.sh      # job launcher called as: $cmd JOB=1:N <log> <command...>
method=shift          # shift (z2 + target - source mean s-vector) | target (a target s-vector)
frames=centre         # centre (of row t's decoded window) | average (of every window's frame t)
residual=add          # none | add (+ source - decoded own z2) | scaled (per-bin std ratio)
suffix=               # utterance-id suffix (one target only; default: the target dir's name)
compress=true         # Kaldi compressed matrices (copy-feats --compress=true)
fbank_dir=fbank       # where the feature arks go
relabel=utt2noise,utt2channel  # tables set to the target's label where it has a single one
seed=0                # seed of --method target's choice of target utterances
device=auto           # auto (GPU when present), cpu, cuda, cuda:N
batch_size=4096       # windows per model call
num_threads=1         # CPU threads of each job

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -lt 5 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
args=("$@")
model=$1
src=$2
dir=${args[$#-1]}                 # the exp dir (logs)
dirs=("${args[@]:1:$#-2}")        # <src-data> <target-data>... <out-root>
die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

[ -f "$model" ] || die "no such file: $model"
for d in "${dirs[@]:0:${#dirs[@]}-1}"; do
  [ -f "$d/feats.scp" ] || die "no such file: $d/feats.scp"
done
[ -f "$src/utt2spk" ] || die "no such file: $src/utt2spk"
[ "$nj" -ge 1 ] 2>/dev/null || die "--nj must be a positive integer, got '$nj'"
num_spk=$(wc -l < "$src/spk2utt")
if [ "$nj" -gt "$num_spk" ]; then
  echo "$(basename "$0"): only $num_spk speakers in $src: using --nj $num_spk" >&2
  nj=$num_spk
fi
opts=(--method "$method" --frames "$frames" --ark-dir "$fbank_dir" --relabel "$relabel"
      --seed "$seed" --device "$device" --batch-size "$batch_size" --num-threads "$num_threads"
      --num-jobs "$nj")
[ -n "$suffix" ] && opts+=(--suffix "$suffix")
opts+=(--residual "$residual")
case $compress in
  true) opts+=(--compress) ;;
  false) ;;
  *) die "--compress must be true or false, got '$compress'" ;;
esac

"$FHVAE_ROOT/utils/split_data.sh" "$src" "$nj"
mkdir -p "$dir/log"
# shellcheck disable=SC2086  # $cmd is a word list on purpose
$cmd JOB=1:"$nj" "$dir/log/augment.JOB.log" \
  python -m fhvae.bin.augment --job JOB "${opts[@]}" "$model" "${dirs[@]}" \
  || die "augmentation failed; see $dir/log/augment.*.log"
python -m fhvae.bin.augment --merge "${opts[@]}" "$model" "${dirs[@]}" 2> "$dir/log/merge.log" \
  || die "merging failed; see $dir/log/merge.log"
