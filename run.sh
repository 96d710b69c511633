#!/usr/bin/env bash
# fhvae-kaldi default recipe: a synthesised multi-speaker corpus (local/), 80-dim FBank,
# FHVAE trained with hierarchical sampling, z1/z2/s-vector extraction and evaluation.
# Runs on CPU in minutes. Resume anywhere with --stage N; see --help.
set -euo pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=5
nj=2                        # parallel jobs for FBank and extraction
seed=777                    # corpus generation, data split, training
num_train_spk=200           # built-in corpus size (speakers per set)
num_dev_spk=20
num_test_spk=40
utts_per_spk=6
corpus=corpus               # where generated audio goes
fhvae_config=conf/fhvae_cpu.yaml
exp=exp/fhvae
nproc_per_node=1            # >1: train with torchrun + DDP on this many processes/GPUs

utils/setup_env.sh
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

log() { echo "$(date '+%F %T') run.sh: $*" >&2; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "stage 0: generate the built-in corpus and its Kaldi data dirs"
  local/make_corpus.sh --seed $seed --nj $nj \
    --num-train-spk $num_train_spk --num-dev-spk $num_dev_spk \
    --num-test-spk $num_test_spk --utts-per-spk $utts_per_spk \
    $corpus data
  for x in train dev test; do utils/validate_data_dir.sh --no-feats data/$x; done
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: 80-dim FBank (kaldi-native-fbank)"
  for x in train dev test; do
    utils/make_fbank.sh --nj $nj --cmd "$train_cmd" --fbank-config conf/fbank.conf \
      data/$x exp/make_fbank/$x fbank
    utils/validate_data_dir.sh data/$x
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: segment index and normalisation statistics"
  python -m fhvae.bin.make_index --mvn-out data/train/fhvae/mvn.npz data/train
  for x in dev test; do python -m fhvae.bin.make_index data/$x; done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: train the FHVAE with hierarchical sampling ($fhvae_config)"
  utils/train_fhvae.sh --nproc-per-node $nproc_per_node --config $fhvae_config --seed $seed \
    data/train data/dev $exp
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "stage 4: dump z1/z2/s-vectors as Kaldi ark/scp"
  for x in train test; do
    utils/extract_latents.sh --nj $nj --cmd "$extract_cmd" $exp/final.pt data/$x $exp/latents_$x
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "stage 5: speaker verification, factor probes, t-SNE and re-combination figures"
  python -m fhvae.bin.evaluate --seed $seed --model $exp/final.pt \
    --train-data data/train --train-latents $exp/latents_train \
    data/test $exp/latents_test $exp/eval_test
  cat $exp/eval_test/results.md
fi
log "done"
