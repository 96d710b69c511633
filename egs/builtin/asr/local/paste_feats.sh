#!/usr/bin/env bash
# local/paste_feats.sh [--nj N] [--cmd CMD] <dst-data> <src-data1> <src-data2> [...]
# Frame-wise concatenation of the sources' features (Kaldi's steps/paste_feats.sh; e.g. MFCC
# with z1, both at 10 ms: the GMM sees what either front end alone would miss) with per-speaker
# CMVN stats of the joint vector. Skipped when <dst-data>/cmvn.scp is newer than every
# source's feats.scp (resume). Stored uncompressed (Kaldi's steps compress by default), so
# that the joint vector holds what its parts alone hold.
set -euo pipefail
nj=2
cmd=run.pl
. utils/parse_options.sh
[ $# -ge 3 ] || { echo "usage: $0 [--nj N] [--cmd CMD] <dst-data> <src-data1> <src-data2> [...]" >&2; exit 1; }
dst=$1; shift
name=$(basename "$dst")
fresh=true
for src in "$@"; do
  [ -f "$src/feats.scp" ] || { echo "$0: no $src/feats.scp: make that feature type first" >&2; exit 1; }
  [ "$dst/cmvn.scp" -nt "$src/feats.scp" ] || fresh=false
done
$fresh && exit 0
rm -rf "$dst"
steps/paste_feats.sh --nj $nj --cmd "$cmd" --compress false "$@" "$dst" exp/make_feats/$name paste
steps/compute_cmvn_stats.sh "$dst" exp/make_feats/$name cmvn
utils/fix_data_dir.sh "$dst"
