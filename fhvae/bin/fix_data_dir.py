"""Repair a Kaldi data dir in place: `python -m fhvae.bin.fix_data_dir <dir>`.

Sorts and de-duplicates every table, drops utterances missing from utt2spk, wav.scp
(or segments) or feats.scp, regenerates spk2utt; originals go to <dir>/.backup/.
"""

from __future__ import annotations

import argparse

from fhvae.bin.cli import run_main
from fhvae.io.validate import fix_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fix_data_dir.sh", description=__doc__)
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    report = fix_data_dir(args.data_dir)
    print(f"fix_data_dir: {args.data_dir}: kept {report.after} of {report.before} utterances "
          f"({report.dropped} dropped, {report.duplicates} duplicate lines removed); "
          f"backup in {report.backup}")
    return 0


if __name__ == "__main__":
    run_main(main)
