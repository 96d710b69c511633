#!/usr/bin/env bash
# Corpus scale on one machine (issue 31): ./run.sh one stage at a time, each under GNU
# `/usr/bin/time -v`, and after every stage a table of what each stage cost: wall time,
# time per hour of audio, peak RSS, disk (<out-dir>/table.md and table.json,
# local/scale_table.py).
#
#   local/scale_run.sh [--stage 0] [--stop-stage 5] <out-dir> [run.sh options ...]
#
# e.g. local/scale_run.sh exp/scale/default --nj 2
#      local/scale_run.sh exp/scale/50h --nj 2 --train-hours 50
# Everything after <out-dir> goes to every ./run.sh call (give each call the same options,
# as a resumed run.sh needs). Per stage N, <out-dir>/ gets stageN.log (run.sh's output),
# stageN.time (time -v), stageN.load (/proc/loadavg at its start) and stageN.disk
# (du -sb of --disk-dirs after it). Peak RSS is time -v's "Maximum resident set size": the
# largest single process among run.sh and every process it waits for (the python jobs,
# multiprocessing workers included), not the sum of processes running side by side.
# A failed stage ends the run after its row is written. <out-dir> is best kept out of
# --disk-dirs or small (a few kB) where it is not, e.g. under exp/.
set -euo pipefail
cd "$(dirname "$0")/.."

stage=0
stop_stage=5
disk_dirs="data fbank exp corpus"    # the recipe's outputs (run.sh --corpus: its audio dir)
sets="train dev test test_unseen dev_unseen train_clean"  # whose utt2dur give the audio hours

. utils/parse_options.sh

if [ $# -lt 1 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
out=$1
shift
utils/setup_env.sh --debian time --venv auto      # GNU time (not bash's); a .venv on a fresh clone
. ./path.sh
mkdir -p "$out"

for n in $(seq "$stage" "$stop_stage"); do
  echo "$(date '+%F %T') scale_run.sh: stage $n (./run.sh --stage $n --stop-stage $n $*)" >&2
  cut -d' ' -f1-3 /proc/loadavg > "$out/stage$n.load"
  status=0
  /usr/bin/time -v -o "$out/stage$n.time" \
    ./run.sh --stage "$n" --stop-stage "$n" "$@" > "$out/stage$n.log" 2>&1 || status=$?
  present=()
  for d in $disk_dirs; do [ -e "$d" ] && present+=("$d"); done
  : > "$out/stage$n.disk"
  [ ${#present[@]} -eq 0 ] || du -sb "${present[@]}" > "$out/stage$n.disk"
  python local/scale_table.py --sets "$sets" --run-opts "$*" "$out"
  if [ $status -ne 0 ]; then
    echo "scale_run.sh: stage $n failed (exit $status); see $out/stage$n.log" >&2
    exit $status
  fi
done
cat "$out/table.md"
