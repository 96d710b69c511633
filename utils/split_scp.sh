#!/usr/bin/env bash
# Split an scp into contiguous, balanced parts (every line in exactly one part).
#   utils/split_scp.sh [--utt2spk <file>] <in.scp> <out.1.scp> ... <out.N.scp>
#   utils/split_scp.sh [--utt2spk <file>] --num-parts N <in.scp> <out.JOB.scp>
# With --utt2spk, all utterances of a speaker stay in one part.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.split_scp "$@"
