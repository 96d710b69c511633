#!/usr/bin/env bash
# Measure FHVAE augmentation with the robust-ASR probe (issue 23, part 1):
#   local/augment_probe.sh [options] <model.pt> <train-data> <work-dir> <out.md>
# From <train-data> (utt2noise, utt2channel, phone_ali.ctm) makes <work-dir>/data/clean (the
# clean close-talk utterances) and one dir per noisy or channel condition (noise_<n>: that
# noise at the close-talk channel; channel_<c>: clean speech on that channel); decodes the
# clean dir toward every condition dir with utils/augment_data_dir.sh (only their features
# are read) into <work-dir>/<method>/; trains the frame phone classifiers (a) clean,
# (b) clean + augmented, (c) clean + the real condition dirs, and writes the per-condition
# table of every --eval set to <out.md> (local/augment_probe.py).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

method=shift          # z2 method of utils/augment_data_dir.sh (shift | target)
frames=centre         # frame formation of utils/augment_data_dir.sh (centre | average)
residual=add          # residual rule of utils/augment_data_dir.sh (none | add | scaled)
nj=1                  # augmentation jobs
cmd=run_local.sh      # job launcher
eval_sets=data/dev    # evaluated data dirs (space-separated)
resamples=1000        # speaker resamples of the intervals

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -ne 4 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
model=$1 train=$2 work=$3 out=$4

mkdir -p "$work/data"
pick() {  # pick <name> <noise> <channel>: utterances with that noise and channel
  join <(LC_ALL=C sort "$train/utt2noise") <(LC_ALL=C sort "$train/utt2channel") \
    | awk -v n="$2" -v c="$3" '$2 == n && $3 == c {print $1}' > "$work/data/$1.list"
  subset_data_dir.sh --utt-list "$work/data/$1.list" "$train" "$work/data/$1" >&2
}
pick clean clean close
conds=()
for n in $(cut -d' ' -f2 "$train/utt2noise" | sort -u); do
  [ "$n" = clean ] || { pick "noise_$n" "$n" close; conds+=("$work/data/noise_$n"); }
done
for c in $(cut -d' ' -f2 "$train/utt2channel" | sort -u); do
  [ "$c" = close ] || { pick "channel_$c" clean "$c"; conds+=("$work/data/channel_$c"); }
done

tag=${method}_${frames}_$residual
augment_data_dir.sh --nj "$nj" --cmd "$cmd" --method "$method" --frames "$frames" \
  --residual "$residual" --fbank-dir "$work/fbank/$tag" \
  "$model" "$work/data/clean" "${conds[@]}" "$work/$tag" "$work/exp/$tag"
aug=()
for c in "${conds[@]}"; do aug+=("$work/$tag/clean_aug_$(basename "$c")"); done
eval_opts=()
for e in $eval_sets; do eval_opts+=(--eval "$e"); done
python "$FHVAE_ROOT/local/augment_probe.py" --model "$model" --clean "$work/data/clean" \
  --augmented "${aug[@]}" --real "${conds[@]}" "${eval_opts[@]}" --resamples "$resamples" \
  --out "$out"
