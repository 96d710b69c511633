#!/usr/bin/env bash
# local/decode_am.sh [options] <lang-test> <model-dir> <data> <set>
# Lattices of <data> in <model-dir>/decode_<set>, scored by local/score.sh, from whichever
# acoustic model <model-dir> holds: a GMM (steps/decode.sh), a SAT GMM (trans.* beside it:
# steps/decode_fmllr.sh) or an nnet3 model (configs/ beside it: steps/nnet3/decode.sh).
# The graph is --graph, or <model-dir>/graph made once by utils/mkgraph.sh; a TDNN trained on
# a GMM's tree passes that GMM's graph. Kept when its scoring is there (resume).
set -euo pipefail
nj=2
cmd=run.pl
beam=13
lattice_beam=6
graph=
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "usage: $0 [options] <lang-test> <model-dir> <data> <set>" >&2; exit 1; }
lang=$1 sys=$2 data=$3
out=$sys/decode_$4
[ -f "$out/scoring_kaldi/best_wer" ] && exit 0
if [ -z "$graph" ]; then
  graph=$sys/graph
  [ -f "$graph/HCLG.fst" ] || utils/mkgraph.sh "$lang" "$sys" "$graph"
fi
[ -f "$graph/HCLG.fst" ] || { echo "$0: no decoding graph $graph/HCLG.fst" >&2; exit 1; }
spks=$(wc -l < "$data/spk2utt")
[ $nj -le $spks ] || nj=$spks
opts=(--nj $nj --cmd "$cmd" --beam $beam --lattice-beam $lattice_beam)
if [ -d "$sys/configs" ]; then
  steps/nnet3/decode.sh "${opts[@]}" "$graph" "$data" "$out"
elif [ -f "$sys/trans.1" ]; then
  steps/decode_fmllr.sh "${opts[@]}" "$graph" "$data" "$out"
else
  steps/decode.sh "${opts[@]}" "$graph" "$data" "$out"
fi
