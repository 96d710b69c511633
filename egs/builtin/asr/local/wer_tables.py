#!/usr/bin/env python3
"""Stage 4: WER per noise x channel condition of every system, one table per training set and
evaluation set, each feature type against the baseline's (fhvae/asr/report.py).

Usage: local/wer_tables.py [options] <train>_<feat>=<model-dir> ...
Each <model-dir> holds decode_<set>/ for --dev-set and every --test-sets set (local/score.sh
scored them). Writes --out (markdown) and its .json twin.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path[:1] = [str(ROOT)] + sys.path[:1]

from fhvae.asr.report import build_report, write_report  # noqa: E402
from fhvae.bin.cli import run_main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wer_tables.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev-set", default="dev")
    parser.add_argument("--test-sets", default="test test_unseen")
    parser.add_argument("--train-sets", default="train train_clean")
    parser.add_argument("--baseline", default="mfcc", help="the feature every other is compared to")
    parser.add_argument("--data-root", type=Path, required=True,
                        help="where data/<set> (text, utt2spk, utt2noise, utt2channel) is")
    parser.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("systems", nargs="+", metavar="<train>_<feat>=<model-dir>")
    args = parser.parse_args(argv)
    systems = {}
    for item in args.systems:
        name, sep, model = item.partition("=")
        if not sep:
            parser.error(f"'{item}': expected <train>_<feat>=<model-dir>")
        systems[name] = Path(model)
    trains = sorted(args.train_sets.split(), key=len, reverse=True)   # train_clean before train
    groups: dict[str, list[str]] = {t: [] for t in args.train_sets.split()}
    for name in systems:
        train = next((t for t in trains if name.startswith(f"{t}_")), None)
        if train is None:
            parser.error(f"'{name}' does not start with a --train-sets name ({args.train_sets})")
        groups[train].append(name)
    for train, names in groups.items():
        base = f"{train}_{args.baseline}"
        if base not in names:
            parser.error(f"no baseline system {base} among {sorted(systems)}")
        groups[train] = [base] + [n for n in names if n != base]
    sets = [args.dev_set] + args.test_sets.split()
    body, summary = build_report(systems, groups, {g: f"{g}_{args.baseline}" for g in groups},
                                 args.dev_set, {s: args.data_root / s for s in sets},
                                 args.bootstrap, args.seed)
    header = ("# Kaldi GMM-HMM word error rates per condition (egs/builtin/asr)\n\n"
              f"WER (%); other cells: relative change against {args.baseline}, then the "
              f"paired speaker-bootstrap interval ({args.bootstrap} resamples) of the "
              "difference in points, Bonferroni-corrected over the table; **bold**: it "
              "excludes 0.\n")
    write_report(args.out, header, body, summary)
    return 0


if __name__ == "__main__":
    run_main(main)
