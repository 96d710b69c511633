"""Split a Kaldi data dir for parallel jobs, as Kaldi's split_data.sh:
`python -m fhvae.bin.split_data [--per-utt|--per-reco] <data> <num-to-split>`.

Writes <data>/split<N>/<n>/ (split<N>utt with --per-utt, split<N>reco with --per-reco),
n = 1..N, each a data dir with every table filtered to its utterances. Speakers are kept
whole by default; nothing is done when the split is newer than <data>.
"""

from __future__ import annotations

import logging
import sys

from fhvae.bin.cli import run_main
from fhvae.io.datadir import FEATS_SCP, TEXT, UTT2SPK, DataDir
from fhvae.io.split import split_data_dir

USAGE = "usage: split_data.sh [--per-utt|--per-reco] <data-dir> <num-to-split>"
log = logging.getLogger("split_data")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    per = {"--per-utt": "utt", "--per-reco": "reco"}.get(args[0] if args else "", "spk")
    if per != "spk":
        args.pop(0)
    if len(args) != 2 or not args[1].isdigit() or int(args[1]) < 1:
        print(USAGE, file=sys.stderr)
        return 1
    data, num = args[0], int(args[1])
    source = DataDir(data)
    num_utts = len(source.pairs(UTT2SPK))
    for name in (FEATS_SCP, TEXT):
        if not source.has(name):
            continue
        count = len(source.pairs(name))
        if count != num_utts:
            log.warning("#lines of (utt2spk, %s) is (%d, %d); utils/fix_data_dir.sh %s fixes "
                        "this", name, num_utts, count, data)
    split_data_dir(data, num, per)
    return 0


if __name__ == "__main__":
    run_main(main)
