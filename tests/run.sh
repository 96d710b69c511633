#!/usr/bin/env bash
# Set up (Debian packages the tests need + .venv with runtime and test pins) and run the
# whole test suite. Arguments go to pytest, e.g. a quick run without the ~10 heavy tests
# (whole recipes, torchrun, corpus builds; marked `slow` in pyproject.toml):
#   tests/run.sh -m "not slow"
# With CI=true (.ci/run) a skip for a missing prerequisite is a failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/utils/setup_env.sh" --debian "espeak-ng libespeak-ng1 sox chromium" --venv true
cd "$root"
. ./path.sh
if [ $# -eq 0 ]; then set -- tests; fi
exec python -m pytest -q -ra "$@"
