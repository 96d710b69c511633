# Sourced by every run.sh: the project's .venv, utils/ on PATH, the package importable.
# Works from the top level and from egs/<corpus>/ (where path.sh is a symlink).
FHVAE_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
export FHVAE_ROOT
if [ ! -x "$FHVAE_ROOT/.venv/bin/python" ]; then
  echo "path.sh: $FHVAE_ROOT/.venv is missing; run $FHVAE_ROOT/utils/setup_env.sh" >&2
  return 1
fi
export PATH="$FHVAE_ROOT/.venv/bin:$FHVAE_ROOT/utils:$PATH"
export PYTHONPATH="$FHVAE_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
export PYTHONUNBUFFERED=1
