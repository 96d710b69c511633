#!/usr/bin/env bash
# fhvae-kaldi recipe for Aurora-4 (16 kHz): like the paper, train on the multi-condition
# development set (4,620 utterances: 330 WSJ sentences x 6 noises + clean x 2 microphones)
# whose noise and microphone are known, holding out a few utterances for early stopping;
# evaluate on the 14-condition eval92 test set (unseen speakers). K = 2000.
#   0: Aurora-4 -> data/{dev_0330,test_eval92}                       1-5: utils/fhvae_pipeline.sh
# Example: ./run.sh --aurora4 /data/aurora4
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=5
nj=4                        # parallel jobs (FBank, extraction)
seed=777                    # held-out split, training
aurora4=/export/corpora/AURORA4   # Aurora-4 root: lists/devtest01_0330_16k.list, audio files
fhvae_config=conf/fhvae.yaml
seq_unit=utt                # utt | spk: what counts as one sequence (mu2 row)
exp=exp/fhvae
nproc_per_node=1            # >1: train with torchrun + DDP on this many processes/GPUs
setup_venv=auto             # true|false|auto: .venv only without a usable Python (docs/corpus_recipes.md)

. ./cmd.sh
. utils/parse_options.sh
"$(readlink -f utils)/setup_env.sh" --debian sox --venv $setup_venv
. ./path.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$(date '+%F %T') run.sh: stage 0: $aurora4 -> data/{dev_0330,test_eval92}" >&2
  python local/prepare_aurora4.py "$aurora4" data
  for x in dev_0330 test_eval92; do utils/validate_data_dir.sh --no-feats --no-text data/$x; done
fi

utils/fhvae_pipeline.sh --stage $stage --stop-stage $stop_stage --nj $nj --seed $seed \
  --fhvae-config $fhvae_config --seq-unit $seq_unit --exp $exp \
  --nproc-per-node $nproc_per_node \
  dev_0330 - test_eval92
