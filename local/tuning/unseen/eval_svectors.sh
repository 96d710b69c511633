#!/usr/bin/env bash
# s-vectors of one dev model on the back-end training set, data/dev and data/dev_unseen
# (stage 4, s-vectors only), scored against the baselines by score_svectors.py:
# <exp>/score_{dev,dev_unseen}/table.md, and the s-vector lines printed.
#
#   local/tuning/unseen/eval_svectors.sh [--pool all|speech] [--backend-set train]
#       [--ivector-dirs "<train-iv-dir> <dev-iv-dir> <dev_unseen-iv-dir>"]
#       <exp-dir-with-final.pt> <data-suffix>
#
# Run from a work dir with data/, utils -> the project's utils/, path.sh -> its path.sh.
# Sets are read from data/<set><data-suffix> (e.g. _cmn: the utterance-CMN copies the model
# was trained on); the back-end set is data/<backend-set><data-suffix> for the default
# `train`, data/<backend-set> as named otherwise (e.g. train_comb1). The FBank baselines use
# data/train/fhvae/mvn.npz and the unnormalised data/<set> features.
set -euo pipefail
pool=all
backend_set=train
ivector_dirs="exp/ivector/ivectors_train exp/ivector/ivectors_dev exp/ivector/ivectors_dev_unseen"
. ./path.sh
. "$FHVAE_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 1; }
exp=$1 suffix=$2
here=$(dirname "$(readlink -f "$0")")
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for set in $backend_set dev dev_unseen; do
  data=data/$set$suffix
  [ "$set" = "$backend_set" ] && [ "$backend_set" != train ] && data=data/$backend_set
  [ -f "$exp/latents_$set/svector.scp" ] ||
    utils/extract_latents.sh --nj 1 --cmd run_local.sh --svector-only true --svector-pool $pool \
      "$exp/final.pt" "$data" "$exp/latents_$set" > /dev/null
done
read -r iv_train iv_dev iv_unseen <<< "$ivector_dirs"
for set in dev dev_unseen; do
  iv=$iv_dev; [ $set = dev_unseen ] && iv=$iv_unseen
  python "$here/score_svectors.py" "$exp/score_$set" data/train/fhvae/mvn.npz data/$backend_set \
    "$exp/latents_$backend_set/svector.scp" data/$set "$exp/latents_$set/svector.scp" \
    "$iv_train/ivector.scp" "$iv/ivector.scp" > "$exp/score_$set.log" 2>&1
  echo "== $exp/score_$set/table.md"
  grep -E '^\| svector_lda-(wccn|plda)(_matched)? \|' "$exp/score_$set/table.md" |
    awk -F'|' '{printf "%-30s %6s (%s)\n", $2, $5, $6}'
done
