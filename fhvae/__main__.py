"""`python -m fhvae <command> ...`: one front door to the stage entry points.

Each subcommand hands the rest of the command line, unparsed, to its fhvae/bin module,
so `python -m fhvae extract --help` shows that stage's own options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fhvae.bin.cli import run_main

COMMANDS = {
    "extract": ("fhvae.bin.extract", "z1/z2/s-vectors of a data dir with a trained model"),
    "evaluate": ("fhvae.bin.evaluate", "EER, t-SNE and re-combination figures"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m fhvae",
                                     description="FHVAE toolkit commands.")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    # Only the command word is parsed here; everything after it belongs to the command.
    args = parser.parse_args(argv[:1])
    module = importlib.import_module(COMMANDS[args.command][0])
    run_main(module.main, argv[1:])


if __name__ == "__main__":
    main()
