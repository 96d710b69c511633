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

from fhvae.asr.report import build_report, gap_closed, gap_lines, write_report  # noqa: E402
from fhvae.bin.cli import run_main  # noqa: E402


def group_by_training_set(systems: dict[str, Path], train_sets: list[str], baseline: str,
                          parser: argparse.ArgumentParser) -> dict[str, list[str]]:
    """<train>_<feat> systems grouped by <train> (longest match: train_clean before train),
    each group's <train>_<baseline> first."""
    trains = sorted(train_sets, key=len, reverse=True)
    groups: dict[str, list[str]] = {t: [] for t in train_sets}
    for name in systems:
        train = next((t for t in trains if name.startswith(f"{t}_")), None)
        if train is None:
            parser.error(f"'{name}' does not start with a --train-sets name ({train_sets})")
        groups[train].append(name)
    for train, names in groups.items():
        if f"{train}_{baseline}" not in names:
            parser.error(f"no baseline system {train}_{baseline} among {sorted(systems)}")
        groups[train] = [f"{train}_{baseline}"] + [n for n in names if n != f"{train}_{baseline}"]
    return groups


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
    parser.add_argument("--group", help="one table of every system, the first the baseline, the "
                        "last the oracle: also the share of the first-to-last gap that each "
                        "one between closes (augmentation)")
    parser.add_argument("--acoustic-model", default="GMM-HMM",
                        help="what the systems are, for the title (e.g. 'nnet3 TDNN')")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("systems", nargs="+", metavar="<train>_<feat>=<model-dir>")
    args = parser.parse_args(argv)
    systems = {}
    for item in args.systems:
        name, sep, model = item.partition("=")
        if not sep:
            parser.error(f"'{item}': expected <train>_<feat>=<model-dir>")
        systems[name] = Path(model)
    groups = ({args.group: list(systems)} if args.group
              else group_by_training_set(systems, args.train_sets.split(), args.baseline, parser))
    baseline_of = {g: names[0] for g, names in groups.items()}
    sets = [args.dev_set] + args.test_sets.split()
    body, summary = build_report(systems, groups, baseline_of,
                                 args.dev_set, {s: args.data_root / s for s in sets},
                                 args.bootstrap, args.seed)
    baseline = baseline_of[next(iter(groups))] if args.group else args.baseline
    header = (f"# Kaldi {args.acoustic_model} word error rates per condition (egs/builtin/asr)\n\n"
              f"WER (%); other cells: relative change against {baseline}, then the "
              f"paired speaker-bootstrap interval ({args.bootstrap} resamples) of the "
              "difference in points, Bonferroni-corrected over the table; **bold**: it "
              "excludes 0.\n")
    if args.group and len(systems) > 2:
        summary[f"{args.group}/gap_closed"] = gap_closed(summary, args.group, list(systems), sets)
        body += gap_lines(summary[f"{args.group}/gap_closed"])
    write_report(args.out, header, body, summary)
    return 0


if __name__ == "__main__":
    run_main(main)
