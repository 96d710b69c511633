"""One table from a dev-set sweep: each setting's training outcome and stage-5 numbers.

Settings are decided on dev data only; this table is the evidence a configuration cites.
It reads what the stages already wrote (train_metrics.tsv, eval_<set>/summary.json), so a
sweep can be tabulated again at any time without recomputing anything.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from fhvae.errors import FhvaeError

# (column header, system name in summary.json) of the s-vector systems the table shows.
SYSTEM_COLUMNS = (("cos all", "cosine"), ("WCCN all", "lda-wccn"), ("PLDA all", "lda-plda"),
                  ("cos matched", "cosine_matched"), ("WCCN matched", "lda-wccn_matched"),
                  ("PLDA matched", "lda-plda_matched"))
PROBE_COLUMNS = (("spk z2", "speaker", "z2"), ("spk z1", "speaker", "z1"),
                 ("phone z1", "phone class", "z1"), ("phone z2", "phone class", "z2"))
# (column header, summary.json section, key, field, scale, format) of the latent scores.
LATENT_COLUMNS = (("swap z1 (nats)", "swap", "z1_swap", "cost", 1, "{:.0f}"),
                  ("z2→utt mean (nats)", "swap", "z2_utt_mean", "cost", 1, "{:.0f}"),
                  ("recomb B's spk", "recombination", "speaker: B's rather than A's",
                   "decoded", 100, "{:.1f}"),
                  ("recomb A's phone", "recombination", "phone class: A's rather than B's",
                   "decoded", 100, "{:.1f}"))


@dataclass
class Setting:
    name: str
    options: str
    exp_dir: Path


def training_outcome(exp_dir: Path) -> tuple[int, float | None, float]:
    """(last step, best dev lower bound, training minutes) from train_metrics.tsv."""
    path = exp_dir / "train_metrics.tsv"
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file (has the setting been trained?)")
    with open(path) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        raise FhvaeError(f"{path}: no training steps logged")
    dev = [float(r["dev_lb"]) for r in rows if r.get("dev_lb")]
    return int(rows[-1]["step"]), (max(dev) if dev else None), float(rows[-1]["elapsed"]) / 60


def _cell(value: float | None, fmt: str = "{:.2f}") -> str:
    return "" if value is None else fmt.format(value)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else scale * value


def sweep_table(settings: list[Setting], eval_name: str) -> str:
    """Markdown: one row per setting (s-vector EERs, verdicts against the baseline, probes),
    then the mean-FBank baseline row (it depends on the data only)."""
    header = (["setting", "options", "steps", "train min", "best dev lb"]
              + [f"EER {c}" for c, _ in SYSTEM_COLUMNS] + ["wins / losses vs FBank"]
              + [c for c, *_ in PROBE_COLUMNS] + [c for c, *_ in LATENT_COLUMNS])
    rows = ["| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    baseline = None
    for setting in settings:
        steps, best_dev, minutes = training_outcome(setting.exp_dir)
        summary_path = setting.exp_dir / f"eval_{eval_name}" / "summary.json"
        if not summary_path.is_file():
            raise FhvaeError(f"{summary_path}: no such file (has the setting been evaluated?)")
        summary = json.loads(summary_path.read_text())
        systems = summary["systems"]
        baseline = systems
        eers = [_cell(systems.get(f"svector_{key}", {}).get("eer")) for _, key in SYSTEM_COLUMNS]
        intervals = [c["interval"] for c in summary["comparisons"].values()]
        wins = sum(high < 0 for _, high in intervals)
        losses = sum(low > 0 for low, _ in intervals)
        probes = [_cell(100 * summary["probes"][f][z], "{:.1f}") if f in summary["probes"]
                  else "" for _, f, z in PROBE_COLUMNS]
        latent = [_cell(_scaled(((summary.get(part) or {}).get(key) or {}).get(name), scale), fmt)
                  for _, part, key, name, scale, fmt in LATENT_COLUMNS]
        rows.append("| " + " | ".join([setting.name, f"`{setting.options}`" if setting.options
                                       else "(base config)", str(steps), f"{minutes:.1f}",
                                       _cell(best_dev, "{:.1f}"), *eers,
                                       f"{wins} / {losses} of {len(intervals)}", *probes,
                                       *latent]) + " |")
    if baseline is not None:
        eers = [_cell(baseline.get(f"fbank-mean_{key}", {}).get("eer")) for _, key in SYSTEM_COLUMNS]
        rows.append("| mean-FBank baseline | | | | | " + " | ".join(eers) + " | | "
                    + " | ".join([""] * (len(PROBE_COLUMNS) + len(LATENT_COLUMNS))) + " |")
    return "\n".join(rows) + "\n"
