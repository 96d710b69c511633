"""Combine Kaldi data dirs, as Kaldi's utils/combine_data.sh (see fhvae/io/combine.py):
`python -m fhvae.bin.combine_data [--extra-files "f1 f2"] [--skip-fix] <dest> <src1> <src2> ...`.
Unless --skip-fix, the result is then repaired as fix_data_dir.sh does.
"""

from __future__ import annotations

import argparse

from fhvae.bin.cli import run_main
from fhvae.io.combine import combine_data
from fhvae.io.validate import fix_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="combine_data.sh", description=__doc__)
    parser.add_argument("--extra-files", default="",
                        help="more files to combine, sorted by their first field (space-separated)")
    parser.add_argument("--skip-fix", action="store_true", help="do not run fix_data_dir")
    parser.add_argument("dest")
    parser.add_argument("sources", nargs="+")
    args = parser.parse_args(argv)
    count = combine_data(args.dest, args.sources, args.extra_files.split())
    if not args.skip_fix:
        count = fix_data_dir(args.dest).after
    print(f"combine_data.sh: combined {len(args.sources)} data dirs into {args.dest}: "
          f"{count} utterances")
    return 0


if __name__ == "__main__":
    run_main(main)
