#!/usr/bin/env bash
# Stage 3's i-vector extractor (diagonal UBM + total variability) as parallel jobs, in the
# shape of Kaldi's egs/sre08/v1/sid/train_diag_ubm.sh + train_ivector_extractor.sh:
#   utils/train_ivector.sh [options] <data-dir> <exp-dir>
# e.g. utils/train_ivector.sh --nj 4 --cmd "$train_cmd" data/train exp/ivector
#   1. one job: the UBM on a bounded random subset of <data-dir> (--ubm-max-utts
#      utterances, --ubm-max-frames frames) and the random extractor
#      -> <exp-dir>/extractor.0.npz (log/init.log)
#   2. each EM iteration x: --nj jobs over <data-dir>/split<nj>/JOB (utils/split_data.sh)
#      stream their utterances (features -> front end -> UBM posteriors -> accumulators of
#      a size fixed by the model) into <exp-dir>/acc.x.JOB.npz (log/acc.x.JOB.log); one job
#      sums them and updates the model -> <exp-dir>/extractor.<x+1>.npz (log/update.x.log)
#   3. the last iteration's model is <exp-dir>/extractor.npz (read by extract_ivector).
# No job's memory grows with the number of utterances. Re-running resumes after the last
# finished iteration, if it was trained with the same options on this feats.scp (else it
# starts again). --extra-opts are the options of python -m fhvae.bin.train_ivector
# (--num-gauss, --ivector-dim, --num-iters, ...); the same command without --nj runs all of
# this in one process.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                          # parallel accumulation jobs (speakers are kept whole)
cmd=run_local.sh              # job launcher, e.g. "$train_cmd" (see cmd.sh)
extra_opts=                   # options of python -m fhvae.bin.train_ivector

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 2 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
data=$1 dir=$2

die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

[ -f "$data/feats.scp" ] || die "no such file $data/feats.scp"
[ "$nj" -ge 1 ] 2>/dev/null || die "--nj must be a positive integer, got '$nj'"
mkdir -p "$dir/log"

# File names as fhvae/ivector/resume.py gives them: extractor.<n>.npz after n iterations,
# extractor.npz after the last one, acc.<n>.<job>.npz.
# shellcheck disable=SC2086  # $extra_opts is a word list on purpose
plan=$(python -m fhvae.bin.train_ivector $extra_opts --plan "$data" "$dir")
read -r done num_iters <<< "$plan"
model() {  # model <n>: the file of the model after n EM iterations
  if [ "$1" -eq "$num_iters" ]; then echo "$dir/extractor.npz"
  else echo "$dir/extractor.$1.npz"; fi
}

if [ "$done" -lt 0 ]; then
  echo "$(basename "$0"): UBM and initial extractor in $dir (log: $dir/log/init.log)" >&2
  # shellcheck disable=SC2086  # so are $cmd and $extra_opts
  $cmd "$dir/log/init.log" python -m fhvae.bin.train_ivector $extra_opts --init-only \
    "$data" "$dir" || die "initialisation failed; see $dir/log/init.log"
  done=0
elif [ "$done" -eq "$num_iters" ]; then
  echo "$(basename "$0"): $dir/extractor.npz is already trained with these options" >&2
  exit 0
elif [ "$done" -gt 0 ]; then
  echo "$(basename "$0"): resuming after EM iteration $done of $num_iters" >&2
fi

"$FHVAE_ROOT/utils/split_data.sh" "$data" "$nj"
sdata=$data/split$nj
for ((x = done; x < num_iters; x++)); do
  echo "$(basename "$0"): EM iteration $((x + 1)) of $num_iters ($nj jobs)" >&2
  # shellcheck disable=SC2086  # $cmd is a word list on purpose
  $cmd JOB=1:"$nj" "$dir/log/acc.$x.JOB.log" \
    python -m fhvae.bin.ivector_acc_stats "$(model $x)" "$sdata/JOB" "$dir/acc.$x.JOB.npz" \
    || die "accumulation failed on iteration $x; see $dir/log/acc.$x.*.log"
  accs=()
  for j in $(seq "$nj"); do accs+=("$dir/acc.$x.$j.npz"); done
  # shellcheck disable=SC2086
  $cmd "$dir/log/update.$x.log" \
    python -m fhvae.bin.ivector_est "$(model $x)" "$(model $((x + 1)))" "${accs[@]}" \
    || die "update failed on iteration $x; see $dir/log/update.$x.log"
  rm -f "$(model $x)" "${accs[@]}"
done
echo "$(basename "$0"): $dir/extractor.npz ($num_iters EM iterations)" >&2
