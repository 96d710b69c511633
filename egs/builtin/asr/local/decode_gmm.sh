#!/usr/bin/env bash
# local/decode_gmm.sh [options] <lang-test> <model-dir> <data> <set>
# The decoding graph (utils/mkgraph.sh, once) and lattices of <data> in
# <model-dir>/decode_<set>, scored by
# local/score.sh; a SAT model (trans.* in its dir's alignments) decodes with fMLLR
# (steps/decode_fmllr.sh). Kept when its scoring is there (resume).
set -euo pipefail
nj=2
cmd=run.pl
beam=13
lattice_beam=6
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "usage: $0 [options] <lang-test> <model-dir> <data> <set>" >&2; exit 1; }
lang=$1 sys=$2 data=$3
out=$sys/decode_$4
[ -f "$out/scoring_kaldi/best_wer" ] && exit 0
[ -f "$sys/graph/HCLG.fst" ] || utils/mkgraph.sh "$lang" "$sys" "$sys/graph"
spks=$(wc -l < "$data/spk2utt")
[ $nj -le $spks ] || nj=$spks
opts=(--nj $nj --cmd "$cmd" --beam $beam --lattice-beam $lattice_beam)
if [ -f "$sys/trans.1" ]; then
  steps/decode_fmllr.sh "${opts[@]}" "$sys/graph" "$data" "$out"
else
  steps/decode.sh "${opts[@]}" "$sys/graph" "$data" "$out"
fi
