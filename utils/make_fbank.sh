#!/usr/bin/env bash
# Stage 1: FBank features of a Kaldi data dir, like Kaldi's steps/make_fbank.sh.
#   utils/make_fbank.sh [options] <data-dir> <log-dir> <fbank-dir>
# Splits wav.scp (or segments, if present) into --nj parts, runs one
# `python -m fhvae.bin.compute_fbank` per part through --cmd (logs in
# <log-dir>/make_fbank.JOB.log), writes <fbank-dir>/raw_fbank_<set>.JOB.{ark,scp}
# (absolute ark paths) and <data-dir>/{feats.scp,utt2num_frames,utt2dur}, sorted.
# Works from any directory (paths are relative to it).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                          # number of parallel jobs
cmd=run_local.sh              # job launcher, e.g. "$train_cmd" (see cmd.sh)
fbank_config=conf/fbank.conf  # Kaldi-style options (--name=value lines)
backend=knf                   # knf (kaldi-native-fbank, Kaldi's numbers) | psf
compress=true                 # Kaldi compressed matrices (CM), as copy-feats --compress=true
max_failed_percent=5          # fail when more utterances than this have no features (Kaldi: 5)
permissive=true               # skip utterances whose audio cannot be read, counting them as
                              # failed (Kaldi reads scp,p:); false: the first one stops the job

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
data=$1 logdir=$2 fbankdir=$3
name=$(basename "$data")

die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

[ -s "$data/wav.scp" ] || die "$data/wav.scp is missing or empty"
[ -f "$fbank_config" ] || die "FBank config $fbank_config not found"
[ "$nj" -ge 1 ] 2>/dev/null || die "--nj must be a positive integer, got '$nj'"
case $compress in
  true) job_opts=--compress ;;
  false) job_opts= ;;
  *) die "--compress must be true or false, got '$compress'" ;;
esac
[ "$max_failed_percent" -ge 0 ] 2>/dev/null || die "--max-failed-percent must be an integer >= 0"
case $permissive in
  true) job_opts="$job_opts --permissive" ;;
  false) ;;
  *) die "--permissive must be true or false, got '$permissive'" ;;
esac
mkdir -p "$logdir" "$fbankdir"
fbankdir=$(cd "$fbankdir" && pwd)

# Old outputs may point into arks this run is about to replace: remove them first.
rm -f "$data/feats.scp" "$data/utt2num_frames" "$data/utt2dur"

if [ -f "$data/segments" ]; then
  list=$data/segments
  part_opt="--segments $logdir/segments.JOB"
  input=$data/wav.scp
else
  list=$data/wav.scp
  part_opt=""
  input=$logdir/wav.JOB.scp
fi
num_utts=$(wc -l < "$list")
[ "$num_utts" -ge 1 ] || die "$list is empty"
if [ "$nj" -gt "$num_utts" ]; then
  echo "$(basename "$0"): only $num_utts utterances: using --nj $num_utts" >&2
  nj=$num_utts
fi
parts=()
for n in $(seq "$nj"); do
  if [ -n "$part_opt" ]; then parts+=("$logdir/segments.$n"); else parts+=("$logdir/wav.$n.scp"); fi
done
"$FHVAE_ROOT/utils/split_scp.sh" "$list" "${parts[@]}"

# shellcheck disable=SC2086  # $cmd, $part_opt and $job_opts are word lists on purpose
$cmd JOB=1:"$nj" "$logdir/make_fbank.JOB.log" \
  python -m fhvae.bin.compute_fbank --config "$fbank_config" --backend "$backend" $part_opt \
    $job_opts \
    --utt2num-frames "$logdir/utt2num_frames.JOB" --utt2dur "$logdir/utt2dur.JOB" \
    "$input" "$fbankdir/raw_fbank_$name.JOB.ark" "$fbankdir/raw_fbank_$name.JOB.scp" \
  || die "FBank failed for $data; see $logdir/make_fbank.*.log"

feat_parts=$(for n in $(seq "$nj"); do echo "$fbankdir/raw_fbank_$name.$n.scp"; done)
# shellcheck disable=SC2086
num_feats=$(cat $feat_parts | wc -l)
num_failed=$((num_utts - num_feats))
if [ "$num_failed" -ne 0 ]; then
  # As Kaldi's make_fbank.sh: a few failures are normal (fix_data_dir.sh drops them from the
  # other tables), many mean something is wrong; then nothing is merged into the data dir.
  echo "$(basename "$0"): WARNING: $num_failed of $num_utts utterances in $data failed/skipped" \
    "(audio unreadable or shorter than one frame), see $logdir/make_fbank.*.log; run" \
    "utils/fix_data_dir.sh $data" >&2
  if [ $((num_failed * 100)) -gt $((num_utts * max_failed_percent)) ]; then
    die "more than $max_failed_percent% of the utterances of $data have no features"
  fi
fi

merge() {  # merge <out> <part-files...>: sorted, written under a temporary name first
  local out=$1; shift
  cat "$@" | LC_ALL=C sort > "$out.tmp"
  mv "$out.tmp" "$out"
}
merge "$data/utt2dur" $(for n in $(seq "$nj"); do echo "$logdir/utt2dur.$n"; done)
merge "$data/utt2num_frames" $(for n in $(seq "$nj"); do echo "$logdir/utt2num_frames.$n"; done)
# shellcheck disable=SC2086
merge "$data/feats.scp" $feat_parts
rm -f "$logdir"/utt2dur.* "$logdir"/utt2num_frames.*
echo "$(basename "$0"): FBank for $num_feats utterances of $data in $fbankdir" >&2
