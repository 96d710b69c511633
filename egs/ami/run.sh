#!/usr/bin/env bash
# fhvae-kaldi recipe for the AMI meeting corpus: headset (IHM) and distant (SDM, Array1-01)
# copies of every manually segmented utterance mixed into one training set, as in the paper;
# official full-corpus-ASR train/dev/eval meetings; K = 5000. z2 should separate rooms and
# microphones as well as speakers.
#   0: AMI -> data/{train,dev,eval} (local/prepare_ami.py)           1-5: utils/fhvae_pipeline.sh
# Example: ./run.sh --ami /data/amicorpus --ami-annotations /data/ami_public_manual_1.6.2
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=5
nj=8                        # parallel jobs (FBank, extraction)
seed=777                    # training
ami=/export/corpora/amicorpus   # audio: <meeting>/audio/<meeting>.{Headset-<n>,Array1-01}.wav
ami_annotations=            # default $ami/annotations; or Kaldi's data/local/annotations/
fhvae_config=conf/fhvae.yaml
seq_unit=utt                # utt | spk: what counts as one sequence (mu2 row)
exp=exp/fhvae
nproc_per_node=1            # >1: train with torchrun + DDP on this many processes/GPUs
setup_venv=auto             # true|false|auto: .venv only without a usable Python (docs/corpus_recipes.md)

. ./cmd.sh
. utils/parse_options.sh
"$(readlink -f utils)/setup_env.sh" --venv $setup_venv
. ./path.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$(date '+%F %T') run.sh: stage 0: $ami -> data/{train,dev,eval}" >&2
  python local/prepare_ami.py "$ami" "${ami_annotations:-$ami/annotations}" data
  for x in train dev eval; do utils/validate_data_dir.sh --no-feats --no-text data/$x; done
fi

utils/fhvae_pipeline.sh --stage $stage --stop-stage $stop_stage --nj $nj --seed $seed \
  --fhvae-config $fhvae_config --seq-unit $seq_unit --exp $exp \
  --nproc-per-node $nproc_per_node --compress true --train-svector-only true \
  train dev eval
