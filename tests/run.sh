#!/usr/bin/env bash
# Set up (Debian packages the tests need + .venv with runtime and test pins) and run the
# whole test suite.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/utils/setup_env.sh" --debian "espeak-ng libespeak-ng1 sox" --venv true
cd "$root"
. ./path.sh
exec python -m pytest -q -ra "${@:-tests}"
