"""The record of a training run: train_metrics.tsv (one row per logged step) and loss.png.

Readers find columns by the header's names; `step` stays first and `elapsed` last (tests and
bench/common.py rely on both). Files written before the `lr` column read the same, and a
resume fills their old rows' lr with an empty cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from fhvae.io.atomic import atomic_path, write_text_atomic

METRICS = ("loss", "lb", "log_px", "kl_z1", "kl_z2", "log_pmu2", "log_qy", "acc")
TSV_COLUMNS = ("step", "seq_batch", *METRICS, "dev_lb", "lr", "elapsed")


def start_metrics(tsv: Path) -> None:
    """A new train_metrics.tsv: the header only."""
    write_text_atomic(tsv, "\t".join(TSV_COLUMNS) + "\n")


def append_metrics(tsv: Path, step: int, seq_batch: int, means: Mapping[str, float],
                   dev_lb: str, lr: float, elapsed: float) -> None:
    """One row: the mean of each metric over the steps since the previous row, and the lr
    of the row's step."""
    fields = [str(step), str(seq_batch), *(f"{means[k]:.4f}" for k in METRICS), dev_lb,
              f"{lr:.6g}", f"{elapsed:.1f}"]
    with open(tsv, "a") as handle:
        handle.write("\t".join(fields) + "\n")


def truncate_metrics(tsv: Path, step: int) -> None:
    """Drop metric rows logged after the checkpoint we resume from (they will be redone)."""
    if not tsv.is_file():
        start_metrics(tsv)
        return
    lines = tsv.read_text().splitlines()
    if not lines:
        start_metrics(tsv)
        return
    header, *rows = [line.split("\t") for line in lines]
    rows = [row for row in rows if int(row[0]) <= step]
    if header != list(TSV_COLUMNS):   # older columns: the rows move under the new header
        rows = [[dict(zip(header, row)).get(name, "") for name in TSV_COLUMNS] for row in rows]
    write_text_atomic(tsv, "".join("\t".join(row) + "\n" for row in [TSV_COLUMNS, *rows]))


def plot_metrics(tsv: Path, png: Path) -> None:
    """loss.png: training loss, lower bound (train and dev) and accuracy against steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, *rows = [line.split("\t") for line in tsv.read_text().splitlines()] or [[]]
    if not rows:
        return
    col = {name: i for i, name in enumerate(header)}
    step = [int(r[col["step"]]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, name in zip(axes, ("loss", "lb", "acc")):
        ax.plot(step, [float(r[col[name]]) for r in rows], label=f"train {name}")
        ax.set_xlabel("step")
        ax.set_title(name)
    dev = [(s, float(r[col["dev_lb"]])) for s, r in zip(step, rows) if r[col["dev_lb"]]]
    if dev:
        axes[1].plot(*zip(*dev), "o-", label="dev lb")
    axes[1].legend()
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
