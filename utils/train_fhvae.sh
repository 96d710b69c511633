#!/usr/bin/env bash
# Stage 3: train an FHVAE on a data dir indexed by stage 2 (resumes if <exp-dir> has a
# checkpoint; the log goes to <exp-dir>/log/train.log).
#
#   utils/train_fhvae.sh [options] <train-data> <dev-data|-> <exp-dir>
#
# <dev-data> '-' uses the held-out split that stage 2 wrote into <train-data>/fhvae/.
# Extra settings reach the trainer as --set key=value through --extra-opts, e.g.
#   --extra-opts "--set max_steps=2000 --set model.hidden=128".
# Training runs as one job of --cmd, as Kaldi's nnet3 scripts run theirs:
#   $cmd [--gpu N] <exp-dir>/log/train.log python -m fhvae.bin.train ...
# (torchrun with --nproc-per-node > 1), so with cuda_cmd="run_slurm.sh" or Kaldi's
# slurm.pl/queue.pl it runs on a GPU node. --gpu auto asks for GPUs (one per process)
# when the device (--set device=... in --extra-opts, else the config's `device:`) is cuda,
# or auto and this machine has a GPU; --gpu N forces N (0: none).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nproc_per_node=1              # >1: data-parallel training through torchrun (DDP)
config=conf/fhvae.yaml        # YAML training configuration
seed=0                        # random seed of initialisation and sampling
cmd=run_local.sh              # job launcher, e.g. "$cuda_cmd" (see cmd.sh)
gpu=auto                      # GPUs to ask --cmd for (Kaldi's --gpu N): auto | 0 | N
extra_opts=                   # more options for python -m fhvae.bin.train

. "$FHVAE_ROOT/utils/parse_options.sh"

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

if [ "$gpu" = auto ]; then
  device=$(sed -n 's/^device:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$config" | tail -n 1)
  prev=
  for opt in $extra_opts; do  # --set device=X, --device X or --device=X
    case $prev/$opt in --device/*) device=$opt;; */device=*|*/--device=*) device=${opt#*device=};; esac
    prev=$opt
  done
  gpu=0
  case ${device:-auto} in
    cuda*) gpu=$nproc_per_node;;
    auto) nvidia-smi -L 2>/dev/null | grep -q '^GPU' && gpu=$nproc_per_node;;
  esac
fi
[[ "$gpu" =~ ^[0-9]+$ ]] || { echo "$0: --gpu expects auto or a number, got '$gpu'" >&2; exit 1; }
gpu_opt=()
[ "$gpu" -gt 0 ] && gpu_opt=(--gpu "$gpu")

mkdir -p "$exp/log"
echo "$(date '+%F %T') train_fhvae.sh: training in $exp (log: $exp/log/train.log)" >&2
# shellcheck disable=SC2086  # $cmd and $extra_opts are word lists on purpose
$cmd ${gpu_opt[@]+"${gpu_opt[@]}"} "$exp/log/train.log" \
  "${launcher[@]}" --config "$config" --seed "$seed" \
  --train-index "$train_index" --dev-index "$dev_index" --mvn "$mvn" $extra_opts "$exp"
[ -f "$exp/final.pt" ] || { echo "$0: training did not write $exp/final.pt" >&2; exit 1; }
echo "$(date '+%F %T') train_fhvae.sh: done, $exp/final.pt" >&2
