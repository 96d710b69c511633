"""Copy part of a Kaldi data dir, with the command lines of Kaldi's subset_data_dir.sh:

    subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] <src> <num> <dst>
    subset_data_dir.sh --utt-list <file> <src> <dst>
    subset_data_dir.sh --spk-list <file> <src> <dst>

Without an option, <num> utterances spread evenly through utt2spk (as Kaldi); --speakers:
whole speakers (fixed random order) until there are <num> utterances; --per-spk: <num>
utterances of each speaker; --shortest: the <num> shortest (utt2num_frames, feats.scp or
utt2dur); --first/--last: the first/last <num> of utt2spk. Every table of <src> (feats.scp,
text, wav.scp, segments, utt2*, spk2*, cmvn.scp, vad.scp, reco2*) is filtered to match.
"""

from __future__ import annotations

import sys

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.io.datadir import UTT2SPK, DataDir
from fhvae.io.subset import subset_data_dir

MODES = {"--speakers": "speakers", "--shortest": "shortest", "--first": "first",
         "--last": "last", "--per-spk": "per-spk"}
USAGE = ("usage: subset_data_dir.sh [--speakers|--shortest|--first|--last|--per-spk] "
         "<src> <num> <dst>\n"
         "       subset_data_dir.sh --utt-list <file> <src> <dst>\n"
         "       subset_data_dir.sh --spk-list <file> <src> <dst>")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    flag = args.pop(0) if args and args[0].startswith("--") else None
    if len(args) != 3 or (flag is not None and flag not in (*MODES, "--utt-list", "--spk-list")):
        print(USAGE, file=sys.stderr)
        return 1
    if flag in ("--utt-list", "--spk-list"):
        lst, src, dst = args
        kind = "utt_list" if flag == "--utt-list" else "spk_list"
        count = subset_data_dir(src, dst, **{kind: lst})
    else:
        src, num, dst = args
        if not num.isdigit():
            raise FhvaeError(f"<num> must be a positive integer, got '{num}'\n{USAGE}")
        count = subset_data_dir(src, dst, mode=MODES.get(flag, "spread"), num=int(num))
    total = len(DataDir(src).pairs(UTT2SPK))
    print(f"subset_data_dir.sh: reducing #utt from {total} to {count}")
    return 0


if __name__ == "__main__":
    run_main(main)
