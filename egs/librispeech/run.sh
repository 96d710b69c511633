#!/usr/bin/env bash
# fhvae-kaldi recipe for LibriSpeech (OpenSLR 12): train on the ~960 h of train-clean-100,
# train-clean-360 and train-other-500 (those present), early-stop on dev-clean, evaluate
# on test-clean; K = 5000 sequences per sequence batch, one sequence per utterance.
#   0: LibriSpeech -> data/{train_960,dev_clean,test_clean}       1-5: utils/fhvae_pipeline.sh
# Example: ./run.sh --librispeech /data/LibriSpeech --nj 16 --nproc-per-node 4
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=5
nj=8                        # parallel jobs (FBank, extraction)
seed=777                    # training
librispeech=/export/corpora/LibriSpeech   # the LibriSpeech/ folder (SPEAKERS.TXT, <part>/)
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
  echo "$(date '+%F %T') run.sh: stage 0: $librispeech -> data/{train_960,dev_clean,test_clean}" >&2
  python local/prepare_librispeech.py "$librispeech" data
  for x in train_960 dev_clean test_clean; do utils/validate_data_dir.sh --no-feats data/$x; done
fi

utils/fhvae_pipeline.sh --stage $stage --stop-stage $stop_stage --nj $nj --seed $seed \
  --fhvae-config $fhvae_config --seq-unit $seq_unit --exp $exp \
  --nproc-per-node $nproc_per_node --compress true --train-svector-only true \
  train_960 dev_clean test_clean
