# Sourced by every run.sh and utils/ script: the Python interpreter, utils/ and the launchers
# of utils/parallel/ on PATH (as Kaldi's path.sh), the package importable.
# Works from the top level and from egs/<corpus>/ (where path.sh is a symlink).
# The interpreter is FHVAE_PYTHON when set, else the project's .venv when present, else the
# python3 on PATH if it can import the runtime packages (a site PyTorch/CUDA build of any
# version is fine). Its folder goes first on PATH, so `python` (and torchrun) is that one.
FHVAE_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
export FHVAE_ROOT
__fhvae_path() {
  local py bin shim missing
  if [ -n "${FHVAE_PYTHON:-}" ]; then py=$FHVAE_PYTHON
  elif [ -x "$FHVAE_ROOT/.venv/bin/python" ]; then py=$FHVAE_ROOT/.venv/bin/python
  else py=$(command -v python3) || {
    echo "path.sh: no python3 on PATH and no $FHVAE_ROOT/.venv; set FHVAE_PYTHON or run" \
         "$FHVAE_ROOT/utils/setup_env.sh --venv true" >&2; return 1; }
  fi
  py=$(command -v "$py") && [ -x "$py" ] || {
    echo "path.sh: ${FHVAE_PYTHON:-$py} is not an executable" >&2; return 1; }
  if [ "$py" != "$FHVAE_ROOT/.venv/bin/python" ]; then
    # One fast probe (no imports): which runtime packages can this interpreter not find?
    missing=$("$py" -c 'import importlib.util as u
print(" ".join(m for m in ("torch", "numpy", "kaldiio", "kaldi_native_fbank", "soundfile",
      "sklearn", "scipy", "yaml", "tqdm", "matplotlib", "python_speech_features")
      if u.find_spec(m) is None))' 2>&1) || {
      echo "path.sh: $py does not run: ${missing##*$'\n'}" >&2; return 1; }
    if [ -n "$missing" ]; then
      echo "path.sh: $py lacks $missing; pip install -r $FHVAE_ROOT/requirements.txt" \
           "(or pip install -e $FHVAE_ROOT), set FHVAE_PYTHON, or run" \
           "utils/setup_env.sh --venv true" >&2
      return 1
    fi
  fi
  bin=$(dirname "$py")
  if [ "$(readlink -f "$bin/python" 2>/dev/null)" != "$(readlink -f "$py")" ]; then
    # No `python` beside it (a system python3): a per-user link so that `python` is $py.
    shim=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/fhvae-kaldi
    shim=$shim/python-$(printf %s "$py" | cksum | cut -d' ' -f1)
    mkdir -p "$shim" && ln -sfn "$py" "$shim/python" || {
      echo "path.sh: cannot create $shim/python (a link to $py)" >&2; return 1; }
    bin=$shim
  fi
  export PATH="$bin:$FHVAE_ROOT/utils:$FHVAE_ROOT/utils/parallel:$PATH"
}
__fhvae_path || return 1
unset -f __fhvae_path
export PYTHONPATH="$FHVAE_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C
export PYTHONUNBUFFERED=1
