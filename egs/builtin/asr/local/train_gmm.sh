#!/usr/bin/env bash
# local/train_gmm.sh [options] <data> <lang> <exp-dir>
# Kaldi's GMM-HMM chain on one feature type, each step as egs/rm and egs/wsj run it:
#   mono (flat start) -> tri1 (deltas) -> tri2 (LDA+MLLT) -> tri3 (SAT, fMLLR)
# each trained on the previous one's alignments, in <exp-dir>/{mono,tri1,tri2,tri3}; a step
# whose final.mdl exists is kept (resume). --final stops the chain earlier.
set -euo pipefail
nj=2
cmd=run.pl
final=tri3
mono_gauss=1000
leaves=1800
gauss=9000
splice_opts="--left-context=3 --right-context=3"
. utils/parse_options.sh
[ $# -eq 3 ] || { echo "usage: $0 [options] <data> <lang> <exp-dir>" >&2; exit 1; }
data=$1 lang=$2 dir=$3
case $final in tri1|tri2|tri3) ;; *) echo "$0: --final must be tri1, tri2 or tri3" >&2; exit 1 ;; esac
done_() { [ -f "$dir/$1/final.mdl" ]; }
done_ mono || steps/train_mono.sh --nj $nj --cmd "$cmd" --totgauss $mono_gauss \
  "$data" "$lang" "$dir/mono"
done_ mono_ali || steps/align_si.sh --nj $nj --cmd "$cmd" "$data" "$lang" "$dir/mono" "$dir/mono_ali"
done_ tri1 || steps/train_deltas.sh --cmd "$cmd" $leaves $gauss "$data" "$lang" \
  "$dir/mono_ali" "$dir/tri1"
[ $final = tri1 ] && exit 0
done_ tri1_ali || steps/align_si.sh --nj $nj --cmd "$cmd" "$data" "$lang" "$dir/tri1" "$dir/tri1_ali"
done_ tri2 || steps/train_lda_mllt.sh --cmd "$cmd" --splice-opts "$splice_opts" $leaves $gauss \
  "$data" "$lang" "$dir/tri1_ali" "$dir/tri2"
[ $final = tri2 ] && exit 0
done_ tri2_ali || steps/align_si.sh --nj $nj --cmd "$cmd" --use-graphs true "$data" "$lang" \
  "$dir/tri2" "$dir/tri2_ali"
done_ tri3 || steps/train_sat.sh --cmd "$cmd" $leaves $gauss "$data" "$lang" "$dir/tri2_ali" \
  "$dir/tri3"
