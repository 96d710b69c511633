#!/usr/bin/env bash
# Set up (Debian packages + .venv) and run the whole test suite.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/utils/setup_env.sh"
cd "$root"
. ./path.sh
exec python -m pytest -q -ra "${@:-tests}"
