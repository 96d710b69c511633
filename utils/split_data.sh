#!/usr/bin/env bash
# Split a Kaldi data dir into <data>/split<N>/{1..N}/, as Kaldi's utils/split_data.sh:
#   utils/split_data.sh [--per-utt|--per-reco] <data-dir> <num-to-split>
# Contiguous, balanced parts of utt2spk, every table filtered to match; speakers are kept
# whole (default), recordings with --per-reco (-> split<N>reco), nothing with --per-utt
# (-> split<N>utt). Does nothing when the split is newer than <data-dir>.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.split_data "$@"
