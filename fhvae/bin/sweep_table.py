"""Tabulate a dev-set sweep written by utils/sweep_fhvae.sh.

Usage: python -m fhvae.bin.sweep_table [--eval-name dev] <sweep-dir> <name>=<options> ...
Writes <sweep-dir>/sweep.md and prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError
from fhvae.evaluate.sweep import Setting, sweep_table
from fhvae.io.atomic import write_text_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweep_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("settings", nargs="+", help="<name>=<trainer options>")
    parser.add_argument("--eval-name", default="dev", help="evaluated set (eval_<name>/)")
    parser.add_argument("--title", default="", help="heading line of sweep.md")
    args = parser.parse_args(argv)
    settings = []
    for spec in args.settings:
        name, sep, options = spec.partition("=")
        if not sep or not name:
            raise FhvaeError(f"setting '{spec}': expected <name>=<trainer options>")
        settings.append(Setting(name, options.strip(), args.sweep_dir / name))
    text = (f"# {args.title}\n\n" if args.title else "") + sweep_table(settings, args.eval_name)
    write_text_atomic(args.sweep_dir / "sweep.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
