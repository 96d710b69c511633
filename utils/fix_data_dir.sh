#!/usr/bin/env bash
# Repair a Kaldi data dir in place (sort, de-duplicate, keep utterances present in
# utt2spk, wav.scp/segments and feats.scp, regenerate spk2utt); backup in <dir>/.backup/.
#   utils/fix_data_dir.sh <data-dir>
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.fix_data_dir "$@"
