"""One table over training seeds: how much the headline numbers move when only the FHVAE's
training seed changes.

The speaker bootstrap of stage 5 says how much an EER depends on which test speakers were
drawn; it says nothing about the training run. This table reads the summary.json that
stage 5 wrote for the same evaluated set under several trainings (same data, same
configuration, other `--train-seed`) and gives, per system, the EER of every seed with its
mean and range, and, per comparison, the corrected verdict of every seed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhvae.errors import FhvaeError

VERDICT_MARK = {"s-vector better": "+", "baseline better": "−", "no difference shown": "0"}


@dataclass
class SeedRun:
    """One training seed's stage-5 record of the evaluated set."""

    name: str          # e.g. the seed, or the exp dir's name
    record: dict       # summary.json


def load_runs(exp_dirs: list[Path], eval_name: str) -> list[SeedRun]:
    runs = []
    for exp_dir in exp_dirs:
        path = exp_dir / f"eval_{eval_name}" / "summary.json"
        if not path.is_file():
            raise FhvaeError(f"{path}: no such file (has stage 5 run for this seed?)")
        record = json.loads(path.read_text())
        if any("verdict" not in c for c in record.get("comparisons", {}).values()):
            raise FhvaeError(f"{path}: comparisons without a corrected verdict (written before "
                             "stage 5 corrected for multiple comparisons): rerun stage 5")
        runs.append(SeedRun(exp_dir.name, record))
    if not runs:
        raise FhvaeError("seed table: no runs given")
    return runs


def _common(runs: list[SeedRun], section: str) -> list[str]:
    """Keys of summary.json's `section` present in every run, in the first run's order."""
    keys = list(runs[0].record[section])
    return [k for k in keys if all(k in r.record[section] for r in runs)]


def system_rows(runs: list[SeedRun]) -> list[str]:
    rows = ["| system | " + " | ".join(r.name for r in runs) + " | mean | min … max |",
            "|---|" + "---:|" * (len(runs) + 2)]
    for name in _common(runs, "systems"):
        eers = np.array([r.record["systems"][name]["eer"] for r in runs])
        rows.append(f"| {name} | " + " | ".join(f"{e:.2f}" for e in eers)
                    + f" | {eers.mean():.2f} | {eers.min():.2f} … {eers.max():.2f} |")
    return rows


def comparison_rows(runs: list[SeedRun]) -> list[str]:
    rows = ["| comparison | " + " | ".join(r.name for r in runs)
            + " | mean difference | s-vector better in |",
            "|---|" + "---|" * len(runs) + "---:|---:|"]
    for name in _common(runs, "comparisons"):
        cells, diffs, wins = [], [], 0
        for run in runs:
            c = run.record["comparisons"][name]
            verdict = c["verdict"]
            wins += verdict == "s-vector better"
            diffs.append(c["difference"])
            cells.append(f"{c['difference']:+.2f} ({VERDICT_MARK[verdict]})")
        rows.append(f"| {name} | " + " | ".join(cells)
                    + f" | {np.mean(diffs):+.2f} | {wins} of {len(runs)} |")
    return rows


def seed_table(runs: list[SeedRun], eval_name: str) -> str:
    """Markdown: EER (%) per system and seed; per comparison the difference and the Holm
    verdict of each seed (+ s-vector better, − baseline better, 0 no difference shown)."""
    models = ", ".join(f"{r.name}: `{r.record.get('model', '?')}`" for r in runs)
    return "\n".join([
        f"## `{runs[0].record.get('data_dir', eval_name)}` over {len(runs)} training seeds\n",
        f"Models: {models}.\n",
        "EER (%) of every system:\n",
        *system_rows(runs), "",
        "s-vector − baseline (EER points) and the Holm-corrected verdict of each seed "
        "(+ s-vector better, − baseline better, 0 no difference shown):\n",
        *comparison_rows(runs), ""])
