#!/usr/bin/env bash
# Repair a Kaldi data dir in place, as Kaldi's utils/fix_data_dir.sh: sort and de-duplicate
# every table, keep the utterances present in utt2spk, wav.scp/segments, feats.scp, text
# and utt2lang, filter utt2*, spk2*, cmvn.scp, vad.scp, reco2* to match, regenerate spk2utt;
# the original files go to <data-dir>/.backup/.
#   utils/fix_data_dir.sh [--utt-extra-files "<f> ..."] [--spk-extra-files "<f> ..."] <data-dir>
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.fix_data_dir "$@"
