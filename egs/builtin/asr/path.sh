# Sourced by run.sh and by every Kaldi steps/ script (they run `. ./path.sh`): Kaldi's tools
# from $KALDI_ROOT (a checkout with src/ built, or build_kaldi.sh's prefix with bin/), the
# project's python (for `python -m fhvae`), then this recipe's utils/ (Kaldi's) first, as a
# Kaldi recipe's path.sh puts them.
__asr_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$__asr_dir/../../../path.sh"
export PATH="$KALDI_ROOT/bin:$KALDI_ROOT/tools/openfst/bin:$PATH"
for __d in featbin gmmbin fgmmbin bin fstbin latbin lmbin ivectorbin nnet3bin chainbin; do
  [ -d "$KALDI_ROOT/src/$__d" ] && PATH="$KALDI_ROOT/src/$__d:$PATH"
done
export PATH="$__asr_dir/utils:$__asr_dir:$PATH"
unset __asr_dir __d
export LC_ALL=C
