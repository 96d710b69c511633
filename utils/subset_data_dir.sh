#!/usr/bin/env bash
# Copy part of a Kaldi data dir (all its tables filtered consistently), with the command
# lines of Kaldi's utils/subset_data_dir.sh:
#   utils/subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <src> <num> <dst>
#   utils/subset_data_dir.sh --utt-list <file> <src> <dst>
#   utils/subset_data_dir.sh --spk-list <file> <src> <dst>
# Without an option, <num> utterances spread evenly through utt2spk (as Kaldi does).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.subset_data_dir "$@"
