#!/usr/bin/env bash
# local/make_feats.sh [--nj N] [--cmd CMD] <mfcc|fbank> <src-data> <dst-data>
# A copy of <src-data> (utils/copy_data_dir.sh) with Kaldi features and per-speaker CMVN stats:
#   mfcc:  Kaldi's compute-mfcc-feats (steps/make_mfcc.sh, conf/mfcc.conf) from wav.scp, the
#          baseline every Kaldi recipe starts from
#   fbank: the main recipe's 80-dim FBank (its feats.scp)
# Skipped when <dst-data>/cmvn.scp is newer than <src-data>/feats.scp (resume).
set -euo pipefail
nj=2
cmd=run.pl
. utils/parse_options.sh
[ $# -eq 3 ] || { echo "usage: $0 [--nj N] [--cmd CMD] <mfcc|fbank> <src-data> <dst-data>" >&2; exit 1; }
kind=$1 src=$2 dst=$3
name=$(basename "$dst")
[ -f "$src/feats.scp" ] || { echo "$0: no $src/feats.scp: run the main recipe's stage 1" >&2; exit 1; }
[ "$dst/cmvn.scp" -nt "$src/feats.scp" ] && exit 0
rm -rf "$dst"
utils/copy_data_dir.sh "$src" "$dst"
case $kind in
  mfcc) rm -f "$dst/feats.scp"
        steps/make_mfcc.sh --nj $nj --cmd "$cmd" --mfcc-config conf/mfcc.conf \
          "$dst" exp/make_feats/$name mfcc ;;
  fbank) ;;   # copy_data_dir.sh kept the main recipe's feats.scp
  *) echo "$0: unknown feature kind '$kind' (mfcc or fbank)" >&2; exit 1 ;;
esac
steps/compute_cmvn_stats.sh "$dst" exp/make_feats/$name cmvn
utils/fix_data_dir.sh "$dst"
