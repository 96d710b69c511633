#!/usr/bin/env bash
# local/make_z1.sh [--nj N] [--cmd CMD] [--input-norm none|utt-cmvn] <model.pt> <src-data>
#                  <dst-prefix> <latent-dir>
# z1 of <src-data> by the FHVAE <model.pt> as a Kaldi data dir <dst-prefix>_z1 (feats.scp,
# per-speaker cmvn.scp; the project's utils/extract_latents.sh). --input-norm utt-cmvn: the
# model reads per-utterance CMVN FBank (as `./run.sh --input-norm utt-cmvn` trained it), made
# here as <dst-prefix>_uttcmvn. Skipped when <dst-prefix>_z1 is newer than the model.
set -euo pipefail
nj=2
cmd=run.pl
input_norm=none
. utils/parse_options.sh
[ $# -eq 4 ] || { echo "usage: $0 [options] <model.pt> <src-data> <dst-prefix> <latent-dir>" >&2; exit 1; }
model=$1 src=$2 prefix=$3 dir=$4
[ -f "$model" ] || { echo "$0: no $model: train it with the main recipe (stage 3)" >&2; exit 1; }
[ "${prefix}_z1/cmvn.scp" -nt "$model" ] && exit 0
fhvae_utils=$(cd "$(dirname "$(readlink -f "$0")")/../../../../utils" && pwd)
case $input_norm in
  none) in=$src ;;
  utt-cmvn) in=${prefix}_uttcmvn
    python -m fhvae.bin.apply_utt_cmvn "$src" "$in" uttcmvn ;;
  *) echo "$0: --input-norm '$input_norm': expected none or utt-cmvn" >&2; exit 1 ;;
esac
"$fhvae_utils/extract_latents.sh" --nj $nj --cmd "$cmd" --data-out-prefix "$prefix" \
  "$model" "$in" "$dir"
