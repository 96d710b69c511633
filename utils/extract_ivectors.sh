#!/usr/bin/env bash
# i-vectors of a data dir in --nj parallel jobs, as Kaldi's sid/extract_ivectors.sh: each
# job extracts a contiguous part of feats.scp into <out-dir>/ivector.JOB.{ark,scp} (logs in
# <out-dir>/log/extract.JOB.log), then <out-dir>/ivector.scp lists them all in feats.scp
# order. A 1,000-hour training set then takes 1/nj of the time of one process; each job
# holds one block of statistics at a time.
#
#   utils/extract_ivectors.sh [--nj 4] [--cmd run_local.sh] <extractor.npz> <data-dir> <out-dir>
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                  # number of parallel jobs
cmd=run_local.sh      # job launcher called as: $cmd JOB=1:N <log> <command...>
num_threads=1         # BLAS threads of each job

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
extractor=$1 data=$2 dir=$3
for f in "$extractor" "$data/feats.scp"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

mkdir -p "$dir/log"
rm -f "$dir/ivector.scp"
if ! $cmd JOB=1:"$nj" "$dir/log/extract.JOB.log" \
    python -m fhvae.bin.extract_ivector --num-threads "$num_threads" --job JOB \
      --num-jobs "$nj" "$extractor" "$data" "$dir"; then
  echo "$0: i-vector extraction failed; see $dir/log/extract.*.log" >&2
  exit 1
fi
python -m fhvae.bin.extract_ivector --merge --num-jobs "$nj" "$extractor" "$data" "$dir"
