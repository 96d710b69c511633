#!/usr/bin/env bash
# Idempotent set-up of what a recipe needs, and nothing more:
#   --debian "pkg ..."   Debian packages it needs (espeak-ng libespeak-ng1 for the built-in
#                        corpus, sox for Aurora-4). Only missing ones are installed, with apt
#                        as root or through passwordless sudo; otherwise one line says what
#                        is missing and how to install it, and the script fails.
#                        Making .venv also installs python3.X-venv the same way when
#                        python3 lacks ensurepip (Debian's own python3 without it).
#   --venv true|auto|false
#                        true: create or refresh the project's .venv from requirements.txt
#                        and requirements-test.txt (the README's commands). auto (default):
#                        only when no usable Python exists (FHVAE_PYTHON, an existing .venv,
#                        or a python3 that imports the runtime packages: see path.sh).
#                        false: never.
# A package counts as present when dpkg has it installed or a command of that name is on
# PATH (a cluster module or conda env may provide sox without dpkg knowing). Only files on
# PATH count: bash's own `time` keyword is not the Debian package `time` (/usr/bin/time).
# Re-running is cheap: each step is skipped when already satisfied.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
me=setup_env.sh

debian=""
venv=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --debian) debian="${2?$me: --debian needs a value}"; shift 2 ;;
    --venv) venv="${2?$me: --venv needs a value}"; shift 2 ;;
    *) echo "$me: unknown option '$1' (expected --debian \"pkg ...\"," \
            "--venv true|auto|false)" >&2; exit 1 ;;
  esac
done
case "$venv" in
  true|auto|false) ;;
  *) echo "$me: --venv must be true, auto or false, not '$venv'" >&2; exit 1 ;;
esac

installed() {
  type -P "$1" >/dev/null 2>&1 && return 0
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# apt-get install the given Debian packages as root or through passwordless sudo; otherwise
# say in one line what to install and fail.
apt_install() {
  local sudo
  if [ "$(id -u)" -eq 0 ]; then sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n)
  else
    echo "$me: missing Debian packages: $*; not root and no passwordless sudo," \
         "so install them yourself (sudo apt-get install $*, or ask an" \
         "administrator / load them as modules) and rerun" >&2
    exit 1
  fi
  echo "$me: installing Debian packages: $*" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}

missing=()
for pkg in $debian; do installed "$pkg" || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

[ "$venv" = false ] && exit 0
cd "$root"
if [ "$venv" = auto ] && [ ! -d .venv ]; then
  # An interpreter chosen with FHVAE_PYTHON is path.sh's to check; a python3 that has the
  # runtime packages is used as it is. Either way no .venv is made.
  [ -n "${FHVAE_PYTHON:-}" ] && exit 0
  (. ./path.sh) >/dev/null 2>&1 && exit 0
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-test.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "$me: creating .venv from requirements.txt and requirements-test.txt" >&2
  if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/pip ]; then
    # Debian's own python3 has venv but not ensurepip without python3.X-venv, and then
    # `python3 -m venv` fails half-way (`-m venv --help` works): check both modules.
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
      pkg=$(python3 -c 'import sys; print("python3.%d-venv" % sys.version_info[1])')
      apt_install "$pkg"
      python3 -c 'import ensurepip, venv' 2>/dev/null || {
        echo "$me: $(command -v python3) cannot create a venv (no ensurepip) even with" \
             "$pkg; use a python3 that can, or set FHVAE_PYTHON (see path.sh)" >&2; exit 1; }
    fi
    rm -rf .venv                # a venv that failed half-way has python but no pip
    python3 -m venv .venv
  fi
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
  echo "$want" > "$stamp"
fi
