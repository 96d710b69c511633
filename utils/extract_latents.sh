#!/usr/bin/env bash
# Stage 4: frame-level z1/z2, utterance s-vectors and speaker s-vectors of a data dir.
#   utils/extract_latents.sh [options] <model.pt> <data-dir> <out-dir>
# e.g. utils/extract_latents.sh --nj 4 --cmd "$extract_cmd" \
#        exp/fhvae/final.pt data/test exp/fhvae/latents_test
# Runs --nj jobs over contiguous parts of <data-dir>/feats.scp through --cmd, then writes
#   <out-dir>/{z1,z2,svector}.scp    every utterance, sorted (the arks stay per job:
#                                    {z1,z2,svector}.JOB.ark, as Kaldi does)
#   <out-dir>/spk_svector.{ark,scp}  mean s-vector of each speaker of utt2spk
#   <out-dir>/num_utts.ark           utterances per speaker (as ivector-mean writes it)
#   <prefix>_z1/, <prefix>_z2/       with --data-out-prefix <prefix> (e.g. data/test): Kaldi
#                                    data dirs of the latents (feats.scp, cmvn.scp per speaker,
#                                    utt2num_frames, frame_shift, the source dir's tables)
# and checks that every utterance of feats.scp was extracted (0-frame ones are skipped
# with a warning). z1/z2 have one row per frame: row t encodes the 20-frame window
# centred on frame t, edge-padded (see fhvae/inference/windows.py). Re-running skips every job
# that already finished with the same model, data and options (<out-dir>/extract.JOB.done);
# the others are redone from scratch, so a killed run never leaves a half-written table.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

nj=4                  # number of parallel jobs
cmd=run_local.sh      # job launcher called as: $cmd JOB=1:N <log> <command...>
sample=false          # true: draw z1/z2 from the posteriors instead of taking their means
seed=0                # seed of the draws with --sample true
svector_only=false    # true: only svector/spk_svector/num_utts (~20x faster; no z1/z2)
compress=false        # true: z1/z2 as Kaldi compressed matrices (copy-feats --compress=true)
svector_pool=all      # all | speech: pool only the segments mostly voiced in <data-dir>/vad.scp
                      # (utils/compute_vad_decision.sh) into s-vectors; z1/z2 unchanged
data_out_prefix=      # e.g. data/test: also write data/test_z1 and data/test_z2
device=auto           # auto (GPU when present), cpu, cuda, cuda:N
batch_size=4096       # windows per encoder call
num_threads=1         # CPU threads of each job

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 3 ]; then
  echo "usage: $0 [options] <model.pt> <data-dir> <out-dir>  (--help for options)" >&2
  exit 1
fi
model=$1
data=$2
dir=$3
for f in "$model" "$data/feats.scp" "$data/utt2spk"; do
  [ -f "$f" ] || { echo "$0: no such file: $f" >&2; exit 1; }
done

case $svector_pool in
  all) ;;
  speech) [ -f "$data/vad.scp" ] || {
    echo "$0: --svector-pool speech needs $data/vad.scp (utils/compute_vad_decision.sh)" >&2
    exit 1; } ;;
  *) echo "$0: --svector-pool must be all or speech, got '$svector_pool'" >&2; exit 1 ;;
esac

opts=(--num-jobs "$nj" --seed "$seed" --device "$device" --batch-size "$batch_size"
      --num-threads "$num_threads" --svector-pool "$svector_pool")
[ "$sample" = true ] && opts+=(--sample)
[ "$svector_only" = true ] && opts+=(--svector-only)
[ "$compress" = true ] && opts+=(--compress)
merge_opts=()
if [ -n "$data_out_prefix" ]; then
  [ "$svector_only" = true ] && { echo "$0: --data-out-prefix needs z1/z2, not --svector-only true" >&2; exit 1; }
  merge_opts=(--data-out-prefix "$data_out_prefix")
fi

# one line now, not in every job's log, when another model's latents hold <prefix>_z1
python -m fhvae.bin.extract --check-only "${merge_opts[@]}" "$model" "$data" "$dir"
mkdir -p "$dir/log"
if ! $cmd JOB=1:"$nj" "$dir/log/extract.JOB.log" \
    python -m fhvae.bin.extract --job JOB "${opts[@]}" "$model" "$data" "$dir"; then
  echo "$0: extraction failed; see $dir/log/extract.*.log" >&2
  exit 1
fi
python -m fhvae.bin.extract --merge "${opts[@]}" "${merge_opts[@]}" "$model" "$data" "$dir"
echo "$0: $(wc -l < "$dir/svector.scp") utterances and $(wc -l < "$dir/num_utts.ark")" \
     "speakers extracted to $dir"
