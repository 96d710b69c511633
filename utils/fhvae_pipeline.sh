#!/usr/bin/env bash
# Stages 1-5 of every fhvae-kaldi recipe, shared by ./run.sh and egs/*/run.sh (which add
# their own stage 0, the corpus -> Kaldi data dir preparation).
#
#   utils/fhvae_pipeline.sh [options] <train-set> <dev-set|-> <eval-set>
#
# Sets are names of data dirs under data/. With <dev-set> '-', stage 2 holds out
# --heldout-frac of the training utterances for early stopping.
#   1: 80-dim FBank -> fbank/raw_fbank_<set>.JOB.{ark,scp}, data/<set>/feats.scp
#   2: data/<set>/fhvae/seg_index.npz (+ mvn.npz for the training set)
#   3: train the FHVAE -> <exp>/final.pt; with --ivector true also the i-vector baseline's
#      extractor (UBM + total variability, on <train-set> only; utils/train_ivector.sh,
#      --nj jobs per EM iteration, logs in <ivector-dir>/log) -> <ivector-dir>/extractor.npz,
#      unless one newer than the training set's feats.scp is there (seed runs share it)
#   4: z1/z2/s-vectors of the training and evaluation sets -> <exp>/latents_<set>/, and the
#      Kaldi data dirs data/<set><suffix>_z1, data/<set><suffix>_z2 (not for
#      --train-svector-only sets), <suffix> from --latent-suffix: by default none for
#      --exp exp/fhvae and _<name> for --exp exp/<name>, so two models' z1 live side by side
#      (each dir names its model in fhvae_model; extraction refuses another model's dir);
#      with --svector-pool speech first the energy VAD data/<set>/vad.scp (vad/, logs in
#      exp/make_vad/<set>), unless one newer than feats.scp is there. VAD is computed here,
#      not in stage 2, because only speech pooling reads it: `--stage 4 --svector-pool
#      speech` switches an existing model over without redoing the index, and a resumed
#      stage 4 keeps its finished jobs (the VAD is not rewritten).
#      i-vectors of the same sets in --nj jobs (utils/extract_ivectors.sh) ->
#      <ivector-dir>/ivectors_<set>/ivector.scp (kept while newer than the extractor and the
#      set's feats.scp)
#   5: speaker verification against the baselines (i-vector, mean+std FBank, mean FBank),
#      factor probes, figures -> <exp>/eval_<eval-set>/results.md (printed)
# --input-norm utt-cmvn: stage 1 also writes data/<set>_cmvn, each utterance's FBank
# normalised by its own mean and variance (python -m fhvae apply-utt-cmvn), and stages 2-5
# give the FHVAE those copies (the i-vector and FBank baselines keep data/<set>): for
# recordings in conditions the training set lacks (local/tuning/unseen_dev.md).
# --extra-eval-sets "a b" sends more evaluation sets through stages 1, 2, 4 (all latents)
# and 5 (<exp>/eval_<set>/results.md each, back-ends fitted on <train-set> as for <eval-set>).
# --adapt-sets "a" sends unlabelled adaptation sets (e.g. dev_unseen) through stages 1, 2 and
# 4 (s-vectors only, like the training set); --adapt-eval "<set>:<adapt-set> ..." makes stage
# 5 also evaluate <set> with the LDA + PLDA back-end adapted to <adapt-set> (its mean, and
# the PLDA model as Kaldi's ivector-adapt-plda; --adapt-plda false: the mean only; chosen on
# dev_unseen, local/tuning/adaptation_dev.md) in <exp>/eval_<set>_adapt_<adapt-set>/.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

stage=1
stop_stage=5
nj=2                          # parallel jobs for FBank, i-vector training and extraction
seed=777                      # trials, probes, held-out split; training too unless --train-seed
train_seed=                   # stage 3's seed (initialisation, sampling); default: --seed
fbank_config=conf/fbank.conf
fhvae_config=conf/fhvae_cpu.yaml
seq_unit=utt                  # utt | spk: what counts as one sequence (mu2 row)
heldout_frac=0.05             # used only when <dev-set> is '-'
nproc_per_node=1              # >1: torchrun + DDP
exp=exp/fhvae
latent_suffix=auto            # data/<set><suffix>_z1: auto = '' for exp/fhvae, else _<basename exp>
train_svector_only=false      # true: stage 4 writes only s-vectors for the training set
                              # (all stage 5 needs; z1/z2 of every frame cost ~20x more)
svector_pool=all              # all | speech: s-vectors pool only the VAD-voiced segments
vad_config=conf/vad.conf      # compute-vad options for --svector-pool speech
input_norm=none               # none | utt-cmvn: what the FHVAE reads (see above)
compress=false                # true: FBank and z1/z2 as Kaldi compressed matrices (~4x
                              # smaller; false keeps the built-in recipe's numbers)
train_cmd=${train_cmd:-run_local.sh}      # job launchers, from cmd.sh: Kaldi's
extract_cmd=${extract_cmd:-run_local.sh}  # run.pl/queue.pl/slurm.pl work too
cuda_cmd=${cuda_cmd:-run_local.sh}        # stage 3 (asks for --gpu N when training on GPU)
extra_eval_sets=""            # more data/<set> evaluated like <eval-set>, e.g. "test_unseen"
adapt_sets=""                 # unlabelled adaptation sets (stages 1, 2, 4), e.g. "dev_unseen"
adapt_eval=""                 # stage 5 with adapted back-ends: "<set>:<adapt-set> ...",
                              # e.g. "test_unseen:dev_unseen"
adapt_plda=true               # --adapt-eval: adapt the PLDA model too (false: the mean only)
ivector=true                  # the i-vector baseline in stages 3-5 (false: FBank baselines only)
ivector_dir=exp/ivector       # its extractor and i-vectors (shared by every <exp> on the data)
ivector_opts=""               # more python -m fhvae.bin.train_ivector options
                              # (utils/train_ivector.sh --extra-opts)

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
train_set=$1 dev_set=$2 eval_set=$3
train_seed=${train_seed:-$seed}
if [ "$latent_suffix" = auto ]; then
  latent_suffix=_$(basename "$exp")
  [ "$(readlink -m "$exp")" = "$(readlink -m exp/fhvae)" ] && latent_suffix=
fi
case $input_norm in
  none) m= ;;
  utt-cmvn) m=_cmvn ;;    # the FHVAE's data dirs are data/<set>$m
  *) echo "fhvae_pipeline.sh: --input-norm '$input_norm': expected none or utt-cmvn" >&2; exit 1 ;;
esac
for pair in $adapt_eval; do
  case $pair in
    ?*:?*) ;;
    *) echo "fhvae_pipeline.sh: --adapt-eval '$pair': expected <set>:<adapt-set>" >&2; exit 1 ;;
  esac
done
fbank_sets="$train_set $eval_set"
[ "$dev_set" = "-" ] || fbank_sets="$train_set $dev_set $eval_set"
fbank_sets="$fbank_sets $extra_eval_sets $adapt_sets"

log() { echo "$(date '+%F %T') fhvae_pipeline.sh: $*" >&2; }

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for x in $fbank_sets; do
    log "stage 1: FBank for data/$x"
    utils/make_fbank.sh --nj $nj --cmd "$train_cmd" --fbank-config $fbank_config \
      --compress $compress data/$x exp/make_fbank/$x fbank
    utils/fix_data_dir.sh data/$x   # drops utterances without features, as Kaldi recipes do
    utils/validate_data_dir.sh --no-text data/$x  # transcripts are optional here
    if [ -n "$m" ]; then
      log "stage 1: data/$x$m (FBank normalised per utterance)"
      python -m fhvae.bin.apply_utt_cmvn --compress $compress data/$x data/$x$m fbank
    fi
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: segment index and normalisation statistics"
  heldout_opts=""
  [ "$dev_set" = "-" ] && heldout_opts="--heldout-frac $heldout_frac --seed $seed"
  python -m fhvae.bin.make_index --seq-unit $seq_unit \
    --mvn-out data/$train_set$m/fhvae/mvn.npz $heldout_opts data/$train_set$m
  for x in $fbank_sets; do
    [ "$x" = "$train_set" ] || python -m fhvae.bin.make_index --seq-unit $seq_unit data/$x$m
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "stage 3: train the FHVAE ($fhvae_config) in $exp"
  dev_arg=data/$dev_set$m
  [ "$dev_set" = "-" ] && dev_arg=-
  utils/train_fhvae.sh --cmd "$cuda_cmd" --nproc-per-node $nproc_per_node \
    --config $fhvae_config --seed $train_seed \
    data/$train_set$m $dev_arg $exp
  if [ $ivector = true ] && ! [ $ivector_dir/extractor.npz -nt data/$train_set/feats.scp ]; then
    log "stage 3: i-vector extractor on data/$train_set in $ivector_dir ($nj jobs)"
    utils/train_ivector.sh --nj $nj --cmd "$train_cmd" --extra-opts "$ivector_opts" \
      data/$train_set $ivector_dir
  fi
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for x in $train_set $eval_set $extra_eval_sets $adapt_sets; do
    svector_only=false
    [ $x = $train_set ] && svector_only=$train_svector_only
    case " $adapt_sets " in *" $x "*) svector_only=true ;; esac   # the back-ends read no more
    data_out=(--data-out-prefix data/$x$latent_suffix)   # data/<set>..._z1, _z2 for Kaldi
    [ $svector_only = true ] && data_out=()
    if [ $svector_pool = speech ] && ! [ data/$x/vad.scp -nt data/$x/feats.scp ]; then
      log "stage 4: energy VAD of data/$x ($vad_config)"
      utils/compute_vad_decision.sh --nj $nj --cmd "$extract_cmd" --vad-config $vad_config \
        data/$x exp/make_vad/$x vad
    fi
    # the VAD is decided on the FBank itself; the normalised copy shares it
    [ $svector_pool = speech ] && [ -n "$m" ] && cp data/$x/vad.scp data/$x$m/vad.scp
    log "stage 4: latents of data/$x (s-vectors only: $svector_only, pooling: $svector_pool)"
    utils/extract_latents.sh --nj $nj --cmd "$extract_cmd" --svector-only $svector_only \
      --svector-pool $svector_pool --compress $compress "${data_out[@]}" \
      $exp/final.pt data/$x$m $exp/latents_$x
    out=$ivector_dir/ivectors_$x
    if [ $ivector = true ] && ! [ -f $ivector_dir/extractor.npz ]; then
      log "stage 4: no $ivector_dir/extractor.npz (stage 3 trains it): no i-vectors of data/$x"
    elif [ $ivector = true ] && ! { [ $out/ivector.scp -nt $ivector_dir/extractor.npz ] &&
                                   [ $out/ivector.scp -nt data/$x/feats.scp ]; }; then
      log "stage 4: i-vectors of data/$x -> $out ($nj jobs)"
      utils/extract_ivectors.sh --nj $nj --cmd "$extract_cmd" $ivector_dir/extractor.npz \
        data/$x $out
    fi
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  has_ivectors() {  # has_ivectors <set> ...: i-vectors in use and stage 4 wrote them for all
    [ $ivector = true ] || return 1
    for set in "$@"; do [ -f $ivector_dir/ivectors_$set/ivector.scp ] || return 1; done
  }
  # evaluate <set> <eval-dir> <adapt-set|-> [more options]: one single-threaded job in the
  # background, logged in $exp/log/eval_*.log (the evaluations are independent, and mostly
  # single-threaded Python: --nj of them at once use the cores better than one after another)
  running=0 failed=0 outs=()
  wait_one() { wait -n || failed=1; running=$((running - 1)); }
  evaluate() {
    local x=$1 out=$2 a=$3 sets="$train_set $1"; shift 3
    [ "$a" = - ] || sets="$sets $a"
    local raw=()   # the FHVAE reads data/<set>$m; the FBank baselines data/<set>
    [ -z "$m" ] || raw=(--train-fbank-data data/$train_set --fbank-data data/$x)
    [ -z "$m" ] || [ "$a" = - ] || raw+=(--adapt-fbank-data data/$a)
    local iv=()
    # shellcheck disable=SC2086  # $sets is a word list
    if has_ivectors $sets; then
      iv=(--train-ivectors $ivector_dir/ivectors_$train_set --ivectors $ivector_dir/ivectors_$x)
      [ "$a" = - ] || iv+=(--adapt-ivectors $ivector_dir/ivectors_$a)
    elif [ $ivector = true ]; then
      log "stage 5: no i-vectors of every set of ($sets): i-vector baseline left out"
    fi
    [ $running -lt $nj ] || wait_one
    $train_cmd $exp/log/$(basename $out).log \
      OMP_NUM_THREADS=1 python -m fhvae.bin.evaluate --num-threads 1 --seed $seed \
      --model $exp/final.pt --train-data data/$train_set$m --train-latents $exp/latents_$train_set \
      ${iv[@]+"${iv[@]}"} ${raw[@]+"${raw[@]}"} "$@" data/$x$m $exp/latents_$x $out &
    running=$((running + 1)) outs+=("$out")
  }
  for x in $eval_set $extra_eval_sets; do
    log "stage 5: evaluation on data/$x ($exp/log/eval_$x.log)"
    evaluate $x $exp/eval_$x -
  done
  for pair in $adapt_eval; do
    x=${pair%%:*} a=${pair#*:}
    log "stage 5: evaluation on data/$x, back-ends adapted to data/$a" \
        "($exp/log/eval_${x}_adapt_$a.log)"
    evaluate $x $exp/eval_${x}_adapt_$a $a \
      --adapt-data data/$a$m --adapt-latents $exp/latents_$a --adapt-plda $adapt_plda
  done
  while [ $running -gt 0 ]; do wait_one; done
  [ $failed = 0 ] || { log "stage 5: an evaluation failed (logs above)"; exit 1; }
  for out in "${outs[@]}"; do echo "# $out/results.md"; cat $out/results.md; done
fi
