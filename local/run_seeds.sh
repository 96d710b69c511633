#!/usr/bin/env bash
# Training-seed spread of the default recipe: stages 3-5 of utils/fhvae_pipeline.sh once per
# FHVAE training seed, on the data that ./run.sh (stages 0-2) prepared, into
# exp/fhvae_seed<S>/, then one table per evaluated set (mean and range of every EER, each
# seed's corrected verdicts): exp/seeds_<set>.md.
#
#   local/run_seeds.sh [--seeds "777 1 2"] [--eval-sets "dev test test_unseen"] [--stage 3]
#                      [--stop-stage 6] [--fhvae-config conf/fhvae_cpu.yaml]
#                      [--exp-prefix exp/fhvae_seed] [--input-norm none|utt-cmvn]
#
# --exp-prefix P trains into P<S>/ and writes the tables as P_<set>.md instead (e.g.
# exp/fhvae_9k_seed with --fhvae-config conf/fhvae_cpu_9k.yaml: another configuration's
# spread next to the default's).
# The corpus, features and i-vectors are those of ./run.sh; only --train-seed changes. An
# exp dir that already has final.pt is not retrained (stage 3 resumes and stops at once).
# Two seeds can train side by side on two cores: run this script twice with one seed each
# and OMP_NUM_THREADS=1, then once more with --stage 6 and every seed for the tables.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="777 1 2"
eval_sets="dev test test_unseen"   # the first is stage 5's <eval-set>; all get a table
stage=3                            # 3-5: pipeline stages; 6: tables only
stop_stage=6
fhvae_config=conf/fhvae_cpu.yaml
exp_prefix=exp/fhvae_seed          # models in <prefix><seed>/; tables exp/seeds_<set>.md, or
                                   # <prefix>_<set>.md for any other prefix
input_norm=none                    # utils/fhvae_pipeline.sh --input-norm (utt-cmvn: stage 1
                                   # must have written data/<set>_cmvn, i.e. run with --stage 1)
nj=2

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

first=${eval_sets%% *}
rest=${eval_sets#"$first"}
if [ "$stage" -le 5 ]; then
  for s in $seeds; do
    echo "$(date '+%F %T') run_seeds.sh: training seed $s -> $exp_prefix$s" >&2
    utils/fhvae_pipeline.sh --stage "$stage" --stop-stage "$stop_stage" --nj $nj --train-seed "$s" \
      --fhvae-config $fhvae_config --exp $exp_prefix$s --train-svector-only true \
      --input-norm $input_norm \
      --extra-eval-sets "$rest" train dev "$first"
  done
fi
[ "$stop_stage" -ge 6 ] || exit 0
dirs=()
for s in $seeds; do dirs+=("$exp_prefix$s"); done
table=${exp_prefix}_
[ "$exp_prefix" = exp/fhvae_seed ] && table=exp/seeds_
for x in $eval_sets; do
  python -m fhvae.bin.seed_table --out "$table$x.md" "$x" "${dirs[@]}"
done
