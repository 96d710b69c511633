#!/usr/bin/env bash
# fhvae-kaldi recipe for TIMIT (LDC93S1): 3,696 training utterances (Kaldi's split, no SA
# sentences), the 50-speaker dev set for early stopping, the 24-speaker core test set for
# evaluation; phone alignments from the .PHN files colour z1 by sonorant/obstruent/silence.
#   0: TIMIT -> data/{train,dev,test} (local/prepare_timit.py)     1-5: utils/fhvae_pipeline.sh
# Example: ./run.sh --timit /data/LDC93S1/TIMIT      (resume training: --stage 3)
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=5
nj=4                        # parallel jobs (FBank, extraction)
seed=777                    # data split, training
timit=/export/corpora/LDC/LDC93S1/TIMIT   # TIMIT root: holds TRAIN/ and TEST/ (or train/, test/)
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
  echo "$(date '+%F %T') run.sh: stage 0: $timit -> data/{train,dev,test}" >&2
  python local/prepare_timit.py "$timit" data
  for x in train dev test; do utils/validate_data_dir.sh --no-feats data/$x; done
fi

utils/fhvae_pipeline.sh --stage $stage --stop-stage $stop_stage --nj $nj --seed $seed \
  --fhvae-config $fhvae_config --seq-unit $seq_unit --exp $exp \
  --nproc-per-node $nproc_per_node \
  train dev test
