#!/usr/bin/env bash
# Kaldi is a witness, not a dependency: this recipe needs one, and says in one line what is
# missing when $KALDI_ROOT does not hold it. Then links steps/ and utils/ to Kaldi's own
# (egs/wsj/s5's in a checkout, or those build_kaldi.sh copied beside bin/).
#   local/check_kaldi.sh [--nnet3]   (--nnet3: also the tools steps/nnet3/ runs, for stage 6)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
nnet3=false
[ "${1:-}" = --nnet3 ] && nnet3=true
tools="compute-mfcc-feats compute-cmvn-stats gmm-init-mono gmm-est gmm-align-compiled
       acc-tree-stats build-tree gmm-acc-stats-ali est-lda est-mllt gmm-est-fmllr
       gmm-latgen-faster lattice-scale lattice-best-path arpa2fst fstcompile fstarcsort"
nnet3_tools="nnet3-init nnet3-am-init nnet3-get-egs nnet3-shuffle-egs nnet3-merge-egs nnet3-train
             nnet3-compute-prob nnet3-combine nnet3-am-adjust-priors nnet3-latgen-faster"
if [ -z "${KALDI_ROOT:-}" ]; then
  echo "asr/run.sh: needs Kaldi: set KALDI_ROOT to a Kaldi checkout with src/ built (or to" \
       "../shared/tools/build_kaldi.sh --asr's prefix, e.g. /opt/kaldi)" >&2
  exit 1
fi
scripts=
for d in "$KALDI_ROOT/egs/wsj/s5" "$KALDI_ROOT"; do
  [ -f "$d/steps/train_sat.sh" ] && [ -f "$d/utils/prepare_lang.sh" ] && { scripts=$d; break; }
done
[ -n "$scripts" ] || { echo "asr/run.sh: KALDI_ROOT=$KALDI_ROOT has no steps/ and utils/" \
  "(looked in \$KALDI_ROOT/egs/wsj/s5 and \$KALDI_ROOT)" >&2; exit 1; }
missing_of() {  # missing_of <tools>: those of <tools> that neither $KALDI_ROOT nor PATH has
  local t d found
  for t in $1; do
    found=
    for d in "$KALDI_ROOT/bin" "$KALDI_ROOT"/src/*bin "$KALDI_ROOT/tools/openfst/bin"; do
      [ -x "$d/$t" ] && { found=1; break; }
    done
    [ -n "$found" ] || command -v "$t" > /dev/null || printf ' %s' "$t"
  done
}
missing=$(missing_of "$tools")
[ -z "$missing" ] || { echo "asr/run.sh: KALDI_ROOT=$KALDI_ROOT lacks Kaldi's GMM tools:$missing" \
  "(build src/, or build_kaldi.sh --asr)" >&2; exit 1; }
if $nnet3; then
  missing=$(missing_of "$nnet3_tools")
  [ -z "$missing" ] || { echo "asr/run.sh: KALDI_ROOT=$KALDI_ROOT lacks Kaldi's nnet3 tools" \
    "(stage 6):$missing (build src/nnet3bin, or build_kaldi.sh --nnet3)" >&2; exit 1; }
fi
for d in steps utils; do
  [ "$(readlink -f $d 2>/dev/null)" = "$(readlink -f "$scripts/$d")" ] || ln -sfn "$scripts/$d" $d
done
