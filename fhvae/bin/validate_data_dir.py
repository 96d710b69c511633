"""Check a Kaldi data dir, with the options of Kaldi's validate_data_dir.sh:
`python -m fhvae.bin.validate_data_dir [--no-feats] [--no-text] [--no-wav] [--no-spk-sort]
[--non-print] [--no-path-check] <dir>`.

As in Kaldi, feats.scp, text and wav.scp are required unless --no-feats/--no-text/--no-wav,
and utt2spk must also be in speaker order unless --no-spk-sort. Exit status 1 with one
`ERROR` line naming file and line at the first problem.
"""

from __future__ import annotations

import argparse

from fhvae.bin.cli import run_main
from fhvae.io.validate import validate_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="validate_data_dir.sh", description=__doc__)
    parser.add_argument("--no-feats", action="store_true", help="feats.scp is not required")
    parser.add_argument("--no-text", action="store_true", help="text is not required")
    parser.add_argument("--no-wav", action="store_true", help="wav.scp is not required")
    parser.add_argument("--no-spk-sort", action="store_true",
                        help="utt2spk need not be in speaker order too")
    parser.add_argument("--non-print", action="store_true",
                        help="accepted for Kaldi compatibility (text is read as UTF-8)")
    parser.add_argument("--no-path-check", action="store_true",
                        help="do not check that wav/ark files exist")
    parser.add_argument("data_dir")
    args = parser.parse_args(argv)
    summary = validate_data_dir(args.data_dir, need_wav=not args.no_wav,
                                need_feats=not args.no_feats, need_text=not args.no_text,
                                spk_sort=not args.no_spk_sort,
                                check_paths=not args.no_path_check)
    print(f"validate_data_dir: {args.data_dir} OK: {summary}")
    return 0


if __name__ == "__main__":
    run_main(main)
