#!/usr/bin/env bash
# Stage 3: train an FHVAE on a data dir indexed by stage 2 (resumes if <exp-dir> has a
# checkpoint; the log goes to <exp-dir>/log/train.log).
#
#   utils/train_fhvae.sh [options] <train-data> <dev-data|-> <exp-dir>
#
# <dev-data> '-' uses the held-out split that stage 2 wrote into <train-data>/fhvae/.
# Extra settings reach the trainer as --set key=value through --extra-opts, e.g.
#   --extra-opts "--set max_steps=2000 --set model.hidden=128".
set -euo pipefail

nproc_per_node=1              # >1: data-parallel training through torchrun (DDP)
config=conf/fhvae.yaml        # YAML training configuration
seed=0                        # random seed of initialisation and sampling
cmd=utils/run_local.sh        # job launcher (see cmd.sh)
extra_opts=                   # more options for python -m fhvae.bin.train

. utils/parse_options.sh

if [ $# -ne 3 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
train_data=$1 dev_data=$2 exp=$3

if [ "$dev_data" = "-" ]; then
  train_index=$train_data/fhvae/train_index.npz
  dev_index=$train_data/fhvae/heldout_index.npz
else
  train_index=$train_data/fhvae/seg_index.npz
  dev_index=$dev_data/fhvae/seg_index.npz
fi
mvn=$train_data/fhvae/mvn.npz
for f in "$config" "$train_index" "$dev_index" "$mvn"; do
  [ -f "$f" ] || { echo "$0: no such file: $f (run stage 2 first?)" >&2; exit 1; }
done

launcher=(python -m fhvae.bin.train)
if [ "$nproc_per_node" -gt 1 ]; then
  launcher=(python -m torch.distributed.run --standalone --nproc_per_node="$nproc_per_node"
            -m fhvae.bin.train)
fi

mkdir -p "$exp/log"
echo "$(date '+%F %T') train_fhvae.sh: training in $exp (log: $exp/log/train.log)" >&2
# shellcheck disable=SC2086  # $cmd and $extra_opts are word lists on purpose
$cmd "$exp/log/train.log" "${launcher[@]}" --config "$config" --seed "$seed" \
  --train-index "$train_index" --dev-index "$dev_index" --mvn "$mvn" $extra_opts "$exp"
[ -f "$exp/final.pt" ] || { echo "$0: training did not write $exp/final.pt" >&2; exit 1; }
echo "$(date '+%F %T') train_fhvae.sh: done, $exp/final.pt" >&2
