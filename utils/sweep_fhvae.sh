#!/usr/bin/env bash
# Dev-set sweep of FHVAE settings: for each <name>=<trainer options>, train a model
# (stage 3), extract the training s-vectors and the dev latents (stage 4), evaluate on the
# dev set (stage 5), then tabulate every setting in <sweep-dir>/sweep.md. Decide settings
# here, on dev data; report on the test set once, with the chosen settings.
#
#   utils/sweep_fhvae.sh [options] <train-data> <dev-data> <sweep-dir> <name>=<options> ...
# e.g.
#   utils/sweep_fhvae.sh data/train data/dev exp/sweep "base=" \
#     "z2_32=--set model.z2_dim=32" "alpha10=--set alpha=10"
# Stages 1-2 must have run for both data dirs. A setting whose eval_<dev>/summary.json
# exists is skipped, so an interrupted sweep resumes where it stopped.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

config=conf/fhvae_cpu.yaml    # base configuration; each setting adds --set overrides
seed=777
nj=2
cmd=run_local.sh
bootstrap=1000                # speaker resamples of stage 5
title=                        # heading of sweep.md

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -lt 4 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
train=$1 dev=$2 dir=$3
shift 3
dev_name=$(basename "$dev")

for spec in "$@"; do
  name=${spec%%=*} opts=${spec#*=}
  [ -n "$name" ] && [ "$name" != "$spec" ] || { echo "$0: bad setting '$spec' (want <name>=<options>)" >&2; exit 1; }
  exp=$dir/$name
  if [ -f "$exp/eval_$dev_name/summary.json" ]; then
    echo "$0: $name: already evaluated, skipped" >&2
    continue
  fi
  echo "$(date '+%F %T') $0: $name: training ($opts)" >&2
  utils/train_fhvae.sh --cmd "$cmd" --config "$config" --seed "$seed" --extra-opts "$opts" \
    "$train" "$dev" "$exp"
  utils/extract_latents.sh --nj "$nj" --cmd "$cmd" --svector-only true \
    "$exp/final.pt" "$train" "$exp/latents_$(basename "$train")"
  utils/extract_latents.sh --nj "$nj" --cmd "$cmd" "$exp/final.pt" "$dev" "$exp/latents_$dev_name"
  python -m fhvae.bin.evaluate --seed "$seed" --bootstrap "$bootstrap" --model "$exp/final.pt" \
    --train-data "$train" --train-latents "$exp/latents_$(basename "$train")" \
    "$dev" "$exp/latents_$dev_name" "$exp/eval_$dev_name" > "$exp/eval_$dev_name.log" 2>&1 \
    || { echo "$0: $name: evaluation failed; see $exp/eval_$dev_name.log" >&2; exit 1; }
done
python -m fhvae.bin.sweep_table --eval-name "$dev_name" --title "$title" "$dir" "$@"
