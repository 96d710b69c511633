#!/usr/bin/env bash
# Stage 0 of run.sh: synthesise the built-in corpus and write Kaldi data dirs.
# Usage: local/make_corpus.sh [--seed N] [--nj N] [--num-train-spk N | --train-hours H]
#          [--num-dev-spk N] [--num-test-spk N] [--num-unseen-spk N] [--num-dev-unseen-spk N]
#          [--utts-per-spk N] [--test-seed N] [--train-clean true|false]
#          [--floor-after-channel true|false] [--speaker-noise-prob P]
#          [--speaker-channel-prob P] <corpus-audio-dir> <data-root>
# A thin wrapper: options are parsed by local/make_corpus.py (see --help).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
python=python3
[ -x "$root/.venv/bin/python" ] && python="$root/.venv/bin/python"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
exec "$python" "$root/local/make_corpus.py" "$@"
