#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: Debian packages the built-in corpus
# needs (espeak-ng, sox) and the project's .venv from requirements.txt.
# Re-running is cheap: each step is skipped when already satisfied.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
ldconfig -p 2>/dev/null | grep -q 'libespeak-ng.so.1' || missing+=(libespeak-ng1)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup_env.sh: installing Debian packages: ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup_env.sh: creating .venv from requirements.txt" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi
