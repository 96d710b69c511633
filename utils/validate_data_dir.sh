#!/usr/bin/env bash
# Check a Kaldi data dir, with the options of Kaldi's utils/validate_data_dir.sh; the first
# problem is reported as one line naming file and line.
#   utils/validate_data_dir.sh [--no-feats] [--no-text] [--no-wav] [--no-spk-sort]
#                              [--non-print] [--no-path-check] <data-dir>
# feats.scp, text and wav.scp are required unless --no-feats/--no-text/--no-wav, and
# utt2spk must be in speaker order too unless --no-spk-sort (as Kaldi).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.validate_data_dir "$@"
