#!/usr/bin/env bash
# Split an scp into contiguous, balanced parts (every line in exactly one part), with the
# command lines of Kaldi's utils/split_scp.pl:
#   utils/split_scp.sh [--utt2spk=<file>] <in.scp> <out.1.scp> ... <out.N.scp>
#   utils/split_scp.sh [--utt2spk=<file>] -j <N> <k> <in.scp> <out.scp>   (part k of N, 0-based)
#   utils/split_scp.sh [--utt2spk <file>] --num-parts N <in.scp> <out.JOB.scp>
# With --utt2spk, all utterances of a speaker stay in one part.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../path.sh"
exec python -m fhvae.bin.split_scp "$@"
