#!/usr/bin/env bash
# local/train_tdnn.sh [options] <data> <lang> <gmm-dir> <exp-dir>
# A small nnet3 TDNN (CPU) on one feature type: trained on <gmm-dir>'s alignments of <data>
# (steps/align_fmllr.sh for a SAT system, align_si.sh otherwise), the same per-speaker CMVN
# as the GMMs, no i-vectors: the question is what the features give a neural acoustic model,
# not what speaker adaptation adds. Its targets are the GMM's tree, so it decodes with the
# GMM's graph (local/decode_am.sh --graph). Each step is kept when its output exists (resume).
set -euo pipefail
nj=2
cmd=run.pl
dim=256              # units of each TDNN layer
epochs=3
initial_lrate=0.0015 # effective learning rate at the start and at the end (Kaldi's defaults
final_lrate=0.00015  # for its small TDNN recipes)
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "usage: $0 [options] <data> <lang> <gmm-dir> <exp-dir>" >&2; exit 1; }
data=$1 lang=$2 gmm=$3 dir=$4
ali=${gmm}_ali_tdnn
if ! [ -f "$ali/ali.1.gz" ]; then
  if [ -f "$gmm/trans.1" ] || [ -f "$gmm/final.alimdl" ]; then
    steps/align_fmllr.sh --nj $nj --cmd "$cmd" "$data" "$lang" "$gmm" "$ali"
  else
    steps/align_si.sh --nj $nj --cmd "$cmd" "$data" "$lang" "$gmm" "$ali"
  fi
fi
if ! [ -f "$dir/configs/final.config" ]; then
  num_targets=$(tree-info "$ali/tree" | awk '/num-pdfs/ {print $2}')
  feat_dim=$(feat-to-dim "scp:$data/feats.scp" -)
  mkdir -p "$dir/configs"
  # Batch-normalised input (no LDA preconditioning, which would need nnet2's tools), +-2
  # frames into the first layer, then growing context: +-7 frames in all.
  cat > "$dir/configs/network.xconfig" <<XCONFIG
input dim=$feat_dim name=input
batchnorm-component name=input-batchnorm
relu-batchnorm-layer name=tdnn1 dim=$dim input=Append(-2,-1,0,1,2)
relu-batchnorm-layer name=tdnn2 dim=$dim input=Append(-1,0,1)
relu-batchnorm-layer name=tdnn3 dim=$dim input=Append(-1,0,1)
relu-batchnorm-layer name=tdnn4 dim=$dim input=Append(-3,0,3)
output-layer name=output dim=$num_targets max-change=1.5
XCONFIG
  steps/nnet3/xconfig_to_configs.py --xconfig-file "$dir/configs/network.xconfig" \
    --config-dir "$dir/configs"
fi
[ -f "$dir/final.mdl" ] || steps/nnet3/train_dnn.py --stage -10 --cmd "$cmd" \
  --feat.cmvn-opts "--norm-means=true --norm-vars=false" \
  --trainer.num-epochs $epochs \
  --trainer.optimization.num-jobs-initial 1 --trainer.optimization.num-jobs-final 1 \
  --trainer.optimization.initial-effective-lrate $initial_lrate \
  --trainer.optimization.final-effective-lrate $final_lrate \
  --cleanup.remove-egs true --use-gpu false \
  --feat-dir "$data" --ali-dir "$ali" --lang "$lang" --dir "$dir"
