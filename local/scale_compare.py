#!/usr/bin/env python3
"""Two scale runs side by side (local/scale_run.sh's table.json): per stage, the wall and
CPU time, the CPU time per hour of audio, and the peak RSS at both sizes with its ratio,
marked where the larger run's peak exceeds --max-ratio times the smaller's (issue 31's
test of memory that does not grow with the corpus).

Usage (after `. ./path.sh`): local/scale_compare.py [--max-ratio 1.5] <small-run> <large-run>
Prints the markdown table; exits 0 either way (a ratio over the limit may be a per-corpus
table the docs name, which only a reader can judge).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.errors import FhvaeError


def load_run(out_dir: Path) -> dict:
    """table.json of a scale run, with its audio hours summed over the sets."""
    path = out_dir / "table.json"
    if not path.is_file():
        raise FhvaeError(f"{path}: no table.json (run local/scale_run.sh first)")
    run = json.loads(path.read_text())
    run["hours"] = sum(s["hours"] for s in run["corpus"].values())
    run["utterances"] = sum(int(s["utterances"]) for s in run["corpus"].values())
    return run


def compare(small: dict, large: dict, max_ratio: float) -> str:
    """The markdown table of the stages both runs measured, in stage order."""
    by_stage = {row["stage"]: row for row in large["stages"]}
    lines = [f"Audio: {small['hours']:.1f} h / {small['utterances']:,} utterances against "
             f"{large['hours']:.1f} h / {large['utterances']:,} ({large['hours'] / small['hours']:.1f}x).",
             "",
             "| stage | what | wall s | CPU s | CPU s per audio hour | peak RSS MB | RSS ratio |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in small["stages"]:
        big = by_stage.get(row["stage"])
        if big is None:
            continue
        ratio = big["peak_rss_mb"] / row["peak_rss_mb"]
        mark = f" **> {max_ratio:g}**" if ratio > max_ratio else ""
        lines.append(
            f"| {row['stage']} | {row['what']} | {row['wall_s']:.0f} → {big['wall_s']:.0f} | "
            f"{row['cpu_s']:.0f} → {big['cpu_s']:.0f} | "
            f"{row['cpu_s'] / small['hours']:.1f} → {big['cpu_s'] / large['hours']:.1f} | "
            f"{row['peak_rss_mb']:.0f} → {big['peak_rss_mb']:.0f} | {ratio:.2f}{mark} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scale_compare.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument("small", type=Path)
    parser.add_argument("large", type=Path)
    args = parser.parse_args(argv)
    print(compare(load_run(args.small), load_run(args.large), args.max_ratio), end="")
    return 0


if __name__ == "__main__":
    run_main(main)
