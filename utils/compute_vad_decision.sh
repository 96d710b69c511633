#!/usr/bin/env bash
# Energy-based voice activity detection of a Kaldi data dir, with the command line of
# Kaldi's steps/compute_vad_decision.sh:
#   utils/compute_vad_decision.sh [options] <data-dir> [<log-dir> [<vad-dir>]]
# e.g. utils/compute_vad_decision.sh --nj 4 data/train exp/make_vad vad
# <log-dir> defaults to <data-dir>/log, <vad-dir> to <data-dir>/data. Splits feats.scp into
# --nj parts, runs `python -m fhvae.bin.compute_vad` (Kaldi's compute-vad) on each through
# --cmd (logs in <log-dir>/vad_<name>.JOB.log), and writes <vad-dir>/vad_<name>.JOB.{ark,scp}
# (absolute ark paths) and <data-dir>/vad.scp: per utterance a float vector of 0/1, one per
# frame, as Kaldi's (readable by copy-vector and kaldiio). An existing vad.scp is moved to
# <data-dir>/.backup first, as Kaldi does.
# The decision is compute-vad's (energy threshold + mean scale, frames context, proportion
# threshold; options in --vad-config). Kaldi thresholds MFCC c0; our 80-dim FBank has no
# energy column, so the frame log-energy is log(sum over mel bins of exp(fbank)).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                          # number of parallel jobs
cmd=run_local.sh              # job launcher called as: $cmd JOB=1:N <log> <command...>
vad_config=conf/vad.conf      # compute-vad options (--name=value lines)

echo "$0 $*" >&2
. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
data=$1
logdir=${2:-$data/log}
vaddir=${3:-$data/data}
name=$(basename "$data")

die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

for f in "$data/feats.scp" "$vad_config"; do
  [ -f "$f" ] || die "no such file $f"
done
[ "$nj" -ge 1 ] 2>/dev/null || die "--nj must be a positive integer, got '$nj'"
mkdir -p "$logdir" "$vaddir"
vaddir=$(cd "$vaddir" && pwd)

if [ -f "$data/vad.scp" ]; then
  mkdir -p "$data/.backup"
  echo "$(basename "$0"): moving $data/vad.scp to $data/.backup" >&2
  mv "$data/vad.scp" "$data/.backup/"
fi

num_utts=$(wc -l < "$data/feats.scp")
[ "$num_utts" -ge 1 ] || die "$data/feats.scp is empty"
[ "$nj" -le "$num_utts" ] || nj=$num_utts
parts=()
for n in $(seq "$nj"); do parts+=("$logdir/feats_$name.$n.scp"); done
split_scp.sh "$data/feats.scp" "${parts[@]}"

# shellcheck disable=SC2086  # $cmd is a word list on purpose
$cmd JOB=1:"$nj" "$logdir/vad_$name.JOB.log" \
  python -m fhvae.bin.compute_vad --config "$vad_config" "$logdir/feats_$name.JOB.scp" \
    "$vaddir/vad_$name.JOB.ark" "$vaddir/vad_$name.JOB.scp" \
  || die "VAD failed for $data; see $logdir/vad_$name.*.log"

for n in $(seq "$nj"); do cat "$vaddir/vad_$name.$n.scp"; done | sort > "$data/.vad.scp.tmp"
mv "$data/.vad.scp.tmp" "$data/vad.scp"
rm -f "${parts[@]}"

nc=$(wc -l < "$data/vad.scp")
if [ "$nc" -ne "$num_utts" ]; then
  echo "$(basename "$0"): WARNING: not every utterance got VAD output ($nc != $num_utts);" \
    "run utils/fix_data_dir.sh $data" >&2
  [ "$nc" -ne 0 ] || exit 1
fi
# each job logs "... proportion of voiced frames P over N frames"
voiced=$(grep -h "proportion of voiced frames" "$logdir"/vad_"$name".*.log |
  awk '{for (i = 1; i < NF; i++)
          if ($i == "frames" && $(i+2) == "over") { v += $(i+1) * $(i+3); n += $(i+3) }}
       END { if (n) printf "%.4f of %d frames", v / n, n }')
echo "$(basename "$0"): created VAD output for $name (voiced: $voiced)" >&2
