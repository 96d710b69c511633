#!/usr/bin/env bash
# Combine Kaldi data dirs into one, with Kaldi's command line:
#   utils/combine_data.sh [--extra-files "<f1> <f2>"] [--skip-fix true] <dest-data-dir> \
#                         <src-data-dir1> <src-data-dir2> ...
# Tables present in every source are combined (utterance ids must be unique across the
# sources), others left out with a warning; utt2uniq is the identity for sources without
# it; cmvn.scp statistics of a speaker in several sources are added (an augmented copy
# keeps its source's speaker); CTMs and --extra-files are concatenated and sorted;
# spk2utt is derived. Then utils/fix_data_dir.sh runs unless --skip-fix true.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"

extra_files=      # more files to combine (sorted by their first field)
skip_fix=false    # true: do not run fix_data_dir.sh on the result

. "$FHVAE_ROOT/utils/parse_options.sh"

if [ $# -lt 2 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 1
fi
opts=(--extra-files "$extra_files")
[ "$skip_fix" = true ] && opts+=(--skip-fix)
exec python -m fhvae.bin.combine_data "${opts[@]}" "$@"
