"""Tabulate stage 5 over training seeds (local/run_seeds.sh): per system the EER of every
seed, mean and range; per comparison each seed's corrected verdict.

Usage: python -m fhvae.bin.seed_table [--out seeds.md] <eval-name> <exp-dir> <exp-dir> ...
e.g.   python -m fhvae.bin.seed_table test exp/fhvae_seed777 exp/fhvae_seed1 exp/fhvae_seed2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.evaluate.seeds import load_runs, seed_table
from fhvae.io.atomic import write_text_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="seed_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_name", help="evaluated set: reads <exp-dir>/eval_<name>/")
    parser.add_argument("exp_dirs", type=Path, nargs="+", help="one exp dir per training seed")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    text = seed_table(load_runs(args.exp_dirs, args.eval_name), args.eval_name)
    if args.out is not None:
        write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
