"""Copy part of a Kaldi data dir:
`python -m fhvae.bin.subset_data_dir (--utt-list F | --first N | --spk-list F) <src> <dst>`.
"""

from __future__ import annotations

import argparse

from fhvae.bin.cli import run_main
from fhvae.io.datadir import subset_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="subset_data_dir.sh", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--utt-list", help="file whose first field is an utterance id")
    which.add_argument("--first", type=int, help="keep the first N utterances of utt2spk")
    which.add_argument("--spk-list", help="file whose first field is a speaker id")
    parser.add_argument("src")
    parser.add_argument("dst")
    args = parser.parse_args(argv)
    count = subset_data_dir(args.src, args.dst, utt_list=args.utt_list, first=args.first,
                            spk_list=args.spk_list)
    print(f"subset_data_dir: {args.dst}: {count} utterances from {args.src}")
    return 0


if __name__ == "__main__":
    run_main(main)
