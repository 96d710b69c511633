#!/usr/bin/env bash
# Check a Kaldi data dir; the first problem is reported as one line naming file and line.
#   utils/validate_data_dir.sh [--no-feats] [--no-wav] [--no-path-check] <data-dir>
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.validate_data_dir "$@"
