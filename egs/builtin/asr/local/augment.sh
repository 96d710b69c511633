#!/usr/bin/env bash
# Stage 5 of run.sh: FHVAE data augmentation judged by WER (the ASRU 2017 setting).
#   local/augment.sh [options]
# The clean close-talk training set ($main/data/train_clean) plus copies of it made by the
# project's utils/augment_data_dir.sh: each utterance decoded from its own z1 with the z2 of
# a random utterance of a target set (--method target), the targets being untranscribed
# speech of the conditions to serve (--targets, e.g. dev and dev_unseen). An FBank GMM-HMM
# system on that (data/train_cleanaug_fbank) against the clean-only and the oracle
# multi-condition FBank systems -> RESULTS_augment.md, with the share of the clean-to-multi
# gap it closes on each evaluation set.
set -euo pipefail
nj=2
cmd=run.pl
model=                        # the FHVAE (trained with --input-norm none: it decodes FBank)
input_norm=none
targets="dev dev_unseen"
main=../../..
final=tri3
mono_gauss=1000
leaves=1800
gauss=9000
splice_opts="--left-context=3 --right-context=3"
beam=13
lattice_beam=6
dev_set=dev
test_sets="test test_unseen"
bootstrap=1000
. utils/parse_options.sh
[ -f "$model" ] || { echo "$0: --model: no such file '$model'" >&2; exit 1; }
[ "$input_norm" = none ] || { echo "$0: the augmenting model must read FBank as it is" \
  "(--input-norm none), not $input_norm: its decoding is on the FBank scale" >&2; exit 1; }
fhvae_utils=$(cd "$(dirname "$(readlink -f "$0")")/../../../../utils" && pwd)
target_dirs=()
for t in $targets; do target_dirs+=("$main/data/$t"); done
out=data/aug
if ! [ -f data/train_cleanaug_fbank/cmvn.scp ]; then
  "$fhvae_utils/augment_data_dir.sh" --nj $nj --cmd "$cmd" --method target \
    --fbank-dir "$PWD/fbank_aug" "$model" "$main/data/train_clean" "${target_dirs[@]}" $out \
    exp/augment
  parts=(data/train_clean_fbank)
  for t in $targets; do parts+=("$out/train_clean_aug_$t"); done
  utils/combine_data.sh data/train_cleanaug_fbank "${parts[@]}"
  steps/compute_cmvn_stats.sh data/train_cleanaug_fbank exp/make_feats/train_cleanaug_fbank cmvn
  utils/fix_data_dir.sh data/train_cleanaug_fbank
fi
local/train_gmm.sh --nj $nj --cmd "$cmd" --final $final --mono-gauss $mono_gauss \
  --leaves $leaves --gauss $gauss --splice-opts "$splice_opts" \
  data/train_cleanaug_fbank data/lang exp/train_cleanaug_fbank
for x in $dev_set $test_sets; do
  local/decode_am.sh --nj $nj --cmd "$cmd" --beam $beam --lattice-beam $lattice_beam \
    data/lang_test exp/train_cleanaug_fbank/$final data/${x}_fbank $x
done
python local/wer_tables.py --dev-set $dev_set --test-sets "$test_sets" --group augmentation \
  --bootstrap $bootstrap --data-root $main/data --out RESULTS_augment.md \
  train_clean_fbank=exp/train_clean_fbank/$final train_cleanaug_fbank=exp/train_cleanaug_fbank/$final \
  train_fbank=exp/train_fbank/$final
cat RESULTS_augment.md
