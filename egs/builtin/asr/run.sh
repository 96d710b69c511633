#!/usr/bin/env bash
# Kaldi GMM-HMM ASR on the built-in corpus: what z1 is worth to a Kaldi recipe, in word error
# rate, per noise x channel condition, against Kaldi's own MFCC+CMVN (docs/asr.md).
# Needs a built Kaldi (KALDI_ROOT: a checkout with src/ built, or ../shared/tools/build_kaldi.sh
# --asr's prefix) and the main recipe's data and models, made from the project root by
#   ./run.sh --train-clean true --num-dev-unseen-spk 120 --stop-stage 3 --ivector false
#   ./run.sh --stage 1 --stop-stage 3 --input-norm utt-cmvn --exp exp/fhvae_cmvn --ivector false
# (the same options as the first, for the data). Stages:
#   0: links steps/ utils/ to Kaldi's; lexicon (espeak-ng, every training accent), a unigram
#      grammar from the training text -> data/lang, data/lang_test
#   1: features of every set in data/<set>_<feat>: mfcc (compute-mfcc-feats), fbank (the
#      main recipe's), z1 of each --fhvae-models entry, <a>+<b> (a and b pasted frame by
#      frame, e.g. mfcc+fhvae_z1); per-speaker CMVN stats
#   2: mono -> tri1 (deltas) -> tri2 (LDA+MLLT) -> tri3 (SAT) for each feature x training set
#      (train: all conditions; train_clean: clean close-talk only, the mismatched condition)
#   3: decode dev, test, test_unseen with every --decode-models system
#   4: WER tables per noise x channel (language-model weight and insertion penalty chosen on
#      dev), paired speaker-bootstrap against mfcc -> RESULTS_<train-set>.md of this dir
#   5: augmentation (ASRU 2017): train_clean plus `fhvae augment` copies moved toward dev and
#      dev_unseen, through the same GMM chain and scoring
#   6: (opt-in, needs build_kaldi.sh --nnet3) a small nnet3 TDNN on each --final GMM's
#      alignments, decoded with its graph -> RESULTS_<train-set>_tdnn.md
# Run from anywhere: ./run.sh [--stage N] [--stop-stage M] [--feats "mfcc z1"] ...
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

stage=0
stop_stage=4
nj=2                          # parallel jobs of every Kaldi step
main=$(cd ../../.. && pwd)    # the main recipe's directory: its data/ and exp/ are read
feats="mfcc fbank fhvae_z1 fhvae_cmvn_z1"  # feature types: mfcc, fbank, <model>_z1, <a>+<b>
fhvae_models="fhvae:exp/fhvae:none fhvae_cmvn:exp/fhvae_cmvn:utt-cmvn"  # <model>:<exp>:<input-norm>
                              # (<exp> relative to --main; its final.pt is read)
train_sets="train train_clean"  # training conditions (multi-condition, clean-only)
dev_set=dev                   # LM weight, penalty and every other choice are made here
test_sets="test test_unseen"  # read once, at the end
final=tri3                    # the system decoded: tri1, tri2 or tri3, for every training
                              # set, or per set as "train:tri2 train_clean:tri3"
tri_leaves=1800               # tree leaves of tri1-tri3
tri_gauss=9000                # Gaussians of tri1-tri3
mono_gauss=1000               # Gaussians of mono
splice_opts="--left-context=3 --right-context=3"   # tri2/tri3's LDA input
decode_beam=11                # gmm-latgen-faster --beam (Kaldi's default is 13)
lattice_beam=5                # --lattice-beam (default 6)
bootstrap=1000                # speaker resamples of the WER intervals
aug_targets="dev dev_unseen"  # stage 5: untranscribed target-condition sets
aug_model=fhvae               # stage 5: the model (a --fhvae-models name) that augments
tdnn_dim=256                  # stage 6: units per TDNN layer
tdnn_epochs=3                 # stage 6: training epochs

. ../../../utils/parse_options.sh
. ./cmd.sh
local/check_kaldi.sh           # one line naming what is missing, and exit 1
. ./path.sh

log() { echo "$(date '+%F %T') asr/run.sh: $*" >&2; }
final_of() {  # final_of <train-set>: the system --final names for it
  local entry
  for entry in $final; do
    case $entry in "$1":*) echo "${entry#*:}"; return 0 ;; *:*) ;; *) echo "$entry"; return 0 ;; esac
  done
  echo "asr/run.sh: --final '$final' names no system for $1" >&2
  return 1
}
for t in $train_sets; do final_of $t > /dev/null; done
model_field() {  # model_field <name> <1|2|3>: exp-dir or input-norm of a --fhvae-models entry
  local entry
  for entry in $fhvae_models; do
    [ "${entry%%:*}" = "$1" ] && { echo "$entry" | cut -d: -f"$2"; return 0; }
  done
  echo "asr/run.sh: '$1' is not a --fhvae-models name ($fhvae_models)" >&2
  return 1
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "stage 0: lexicon, lang, grammar"
  python local/prepare_dict.py data/local/dict
  utils/prepare_lang.sh data/local/dict "<UNK>" data/local/lang data/lang
  python local/prepare_lm.py --vocab data/local/dict/lexicon.txt $main/data/train/text \
    data/local/lm/unigram.arpa.gz
  utils/format_lm.sh data/lang data/local/lm/unigram.arpa.gz data/local/dict/lexicon.txt \
    data/lang_test
fi

make_feature() {  # make_feature <set> <feat>: data/<set>_<feat>, its parts first
  local x=$1 f=$2 part parts=()
  case $f in
    *+*) for part in ${f//+/ }; do make_feature $x $part; parts+=(data/${x}_$part); done
      local/paste_feats.sh --nj $nj --cmd "$train_cmd" data/${x}_$f "${parts[@]}" ;;
    mfcc|fbank) local/make_feats.sh --nj $nj --cmd "$train_cmd" $f $main/data/$x data/${x}_$f ;;
    *_z1) local m=${f%_z1}
      local/make_z1.sh --nj $nj --cmd "$train_cmd" --input-norm "$(model_field $m 3)" \
        $main/$(model_field $m 2)/final.pt $main/data/$x data/${x}_$m exp/latents_$m/$x ;;
    *) echo "asr/run.sh: feature '$f': expected mfcc, fbank, <model>_z1 or <a>+<b>" >&2; exit 1 ;;
  esac
}
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for x in $train_sets $dev_set $test_sets; do
    for f in $feats; do make_feature $x $f; done
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for t in $train_sets; do
    for f in $feats; do
      log "stage 2: GMM-HMM on data/${t}_$f -> exp/${t}_$f"
      local/train_gmm.sh --nj $nj --cmd "$train_cmd" --final $(final_of $t) --mono-gauss $mono_gauss \
        --leaves $tri_leaves --gauss $tri_gauss --splice-opts "$splice_opts" \
        data/${t}_$f data/lang exp/${t}_$f
    done
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for t in $train_sets; do
    for f in $feats; do
      for x in $dev_set $test_sets; do
        log "stage 3: decode data/${x}_$f with exp/${t}_$f/$(final_of $t)"
        local/decode_am.sh --nj $nj --cmd "$decode_cmd" --beam $decode_beam \
          --lattice-beam $lattice_beam data/lang_test exp/${t}_$f/$(final_of $t) data/${x}_$f $x
      done
    done
  done
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  # One file per training condition, so that a condition can be (re)run on its own.
  for t in $train_sets; do
    log "stage 4: WER tables of the $t systems -> RESULTS_$t.md"
    systems=()
    for f in $feats; do systems+=("${t}_$f=exp/${t}_$f/$(final_of $t)"); done
    python local/wer_tables.py --dev-set $dev_set --test-sets "$test_sets" --baseline mfcc \
      --train-sets $t --bootstrap $bootstrap --data-root $main/data \
      --out RESULTS_$t.md "${systems[@]}"
    cat RESULTS_$t.md
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "stage 5: train_clean + FHVAE augmentation toward $aug_targets"
  local/augment.sh --nj $nj --cmd "$train_cmd" --model $main/$(model_field $aug_model 2)/final.pt \
    --input-norm "$(model_field $aug_model 3)" --targets "$aug_targets" --main $main \
    --final $(final_of train_clean) --mono-gauss $mono_gauss --leaves $tri_leaves \
    --gauss $tri_gauss --splice-opts "$splice_opts" --beam $decode_beam \
    --lattice-beam $lattice_beam --dev-set $dev_set --test-sets "$test_sets"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  local/check_kaldi.sh --nnet3
  for t in $train_sets; do
    systems=()
    for f in $feats; do
      gmm=exp/${t}_$f/$(final_of $t)
      log "stage 6: TDNN on data/${t}_$f, alignments of $gmm -> exp/${t}_$f/tdnn"
      local/train_tdnn.sh --nj $nj --cmd "$train_cmd" --dim $tdnn_dim --epochs $tdnn_epochs \
        data/${t}_$f data/lang $gmm exp/${t}_$f/tdnn
      for x in $dev_set $test_sets; do
        local/decode_am.sh --nj $nj --cmd "$decode_cmd" --beam $decode_beam \
          --lattice-beam $lattice_beam --graph $gmm/graph data/lang_test exp/${t}_$f/tdnn \
          data/${x}_$f $x
      done
      systems+=("${t}_$f=exp/${t}_$f/tdnn")
    done
    python local/wer_tables.py --dev-set $dev_set --test-sets "$test_sets" --baseline mfcc \
      --train-sets $t --bootstrap $bootstrap --data-root $main/data \
      --acoustic-model "nnet3 TDNN" --out RESULTS_${t}_tdnn.md "${systems[@]}"
  done
fi
