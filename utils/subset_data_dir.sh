#!/usr/bin/env bash
# Copy part of a Kaldi data dir (all its tables filtered consistently).
#   utils/subset_data_dir.sh --utt-list <file> | --first N | --spk-list <file> <src> <dst>
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.subset_data_dir "$@"
