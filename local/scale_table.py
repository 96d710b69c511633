#!/usr/bin/env python3
"""The per-stage table of a scale run (local/scale_run.sh): wall time, time per hour of
audio, peak RSS and disk of every stage measured so far, as table.md and table.json.

Usage: local/scale_table.py [--data-root data] [--sets "train dev ..."] [--run-opts S] <out-dir>

Reads <out-dir>/stageN.time (GNU `/usr/bin/time -v`), stageN.disk (`du -sb` lines) and
stageN.load (/proc/loadavg at the stage's start); the hours of audio are the utt2dur sums
of the corpus's sets under --data-root. The table is rewritten after every stage, so a
long run shows its progress and a failed one what it reached.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from fhvae.bin.cli import run_main
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import UTT2DUR, DataDir

STAGES = {0: "corpus synthesis", 1: "FBank, fix + validate", 2: "segment index + MVN",
          3: "FHVAE + i-vector extractor training", 4: "latents + i-vectors",
          5: "evaluation", 6: "augmentation probe", 7: "voice conversion"}
# The lines of `time -v` a table needs, by the names it gets here.
TIME_FIELDS = {"user_s": "User time (seconds)", "sys_s": "System time (seconds)",
               "wall": "Elapsed (wall clock) time (h:mm:ss or m:ss)",
               "max_rss_kb": "Maximum resident set size (kbytes)", "exit": "Exit status"}
MB = 1e6


@dataclass
class StageRow:
    """One stage as measured: seconds, the largest process's peak RSS, disk after it."""

    stage: int
    what: str
    wall_s: float
    cpu_s: float
    s_per_audio_hour: float | None
    peak_rss_mb: float
    disk_mb: dict[str, float]
    load_at_start: float | None
    exit_status: int


def wall_seconds(text: str) -> float:
    """`time -v`'s elapsed time, h:mm:ss or m:ss(.ss), in seconds."""
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def read_time(path: Path) -> dict[str, str]:
    """The TIME_FIELDS of one `time -v` output file (missing ones absent)."""
    found = {}
    for line in path.read_text().splitlines():
        key, _, value = line.strip().rpartition(": ")
        for name, label in TIME_FIELDS.items():
            if key == label:
                found[name] = value.strip()
    return found


def read_disk(path: Path) -> dict[str, float]:
    """`du -sb` lines -> dir -> MB (dirs that do not exist yet are simply absent)."""
    if not path.is_file():
        return {}
    sizes = {}
    for line in path.read_text().splitlines():
        size, _, name = line.partition("\t")
        sizes[name.strip()] = int(size) / MB
    return sizes


def stage_row(out_dir: Path, stage: int, hours: float) -> StageRow:
    times = read_time(out_dir / f"stage{stage}.time")
    wall = wall_seconds(times["wall"])
    load = out_dir / f"stage{stage}.load"
    return StageRow(
        stage=stage, what=STAGES.get(stage, "?"), wall_s=wall,
        cpu_s=float(times["user_s"]) + float(times["sys_s"]),
        s_per_audio_hour=wall / hours if hours else None,
        peak_rss_mb=int(times["max_rss_kb"]) * 1024 / MB,
        disk_mb=read_disk(out_dir / f"stage{stage}.disk"),
        load_at_start=float(load.read_text().split()[0]) if load.is_file() else None,
        exit_status=int(times.get("exit", "-1")))


def corpus_size(data_root: Path, sets: list[str]) -> dict[str, dict[str, float]]:
    """set -> {'hours', 'utterances'} from the utt2dur of each set present."""
    sizes = {}
    for name in sets:
        data = DataDir(data_root / name)
        if data.has(UTT2DUR):
            durations = [float(d) for _, d in data.pairs(UTT2DUR)]
            sizes[name] = {"hours": sum(durations) / 3600, "utterances": len(durations)}
    return sizes


def render_markdown(out_dir: Path, run_opts: str, sizes: dict[str, dict[str, float]],
                    rows: list[StageRow]) -> str:
    hours = sum(s["hours"] for s in sizes.values())
    utts = sum(int(s["utterances"]) for s in sizes.values())
    per_set = ", ".join(f"{name} {s['hours']:.2f} h / {int(s['utterances']):,} utts"
                        for name, s in sizes.items())
    dirs = sorted({d for row in rows for d in row.disk_mb})
    head = ["stage", "what", "wall s", "s per audio hour", "CPU s", "peak RSS MB",
            *[f"{d}/ MB" for d in dirs], "load at start", "exit"]
    lines = [f"# Scale run: {out_dir}", "",
             f"`./run.sh {run_opts}`".replace(" `", "`") if run_opts else "`./run.sh`", "",
             f"Corpus: {hours:.2f} h of audio, {utts:,} utterances ({per_set or 'none yet'}).",
             "Peak RSS: the largest single process of the stage (GNU time -v), not a sum.",
             "Disk: `du -sb` after the stage.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        per_hour = "" if row.s_per_audio_hour is None else f"{row.s_per_audio_hour:.1f}"
        load = "" if row.load_at_start is None else f"{row.load_at_start:.2f}"
        cells = [str(row.stage), row.what, f"{row.wall_s:.1f}", per_hour, f"{row.cpu_s:.1f}",
                 f"{row.peak_rss_mb:.0f}",
                 *[f"{row.disk_mb[d]:.1f}" if d in row.disk_mb else "" for d in dirs],
                 load, str(row.exit_status)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scale_table.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--sets", default="train dev test test_unseen dev_unseen train_clean",
                        help="the corpus's data dirs whose utt2dur give the hours of audio")
    parser.add_argument("--run-opts", default="", help="the run.sh options, for the heading")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    sizes = corpus_size(args.data_root, args.sets.split())
    hours = sum(s["hours"] for s in sizes.values())
    stages = sorted(int(m.group(1)) for p in args.out_dir.glob("stage*.time")
                    if (m := re.fullmatch(r"stage(\d+)\.time", p.name)))
    rows = [stage_row(args.out_dir, n, hours) for n in stages]
    record = {"run_opts": args.run_opts, "corpus": sizes,
              "stages": [asdict(row) for row in rows]}
    write_text_atomic(args.out_dir / "table.json", json.dumps(record, indent=1) + "\n")
    write_text_atomic(args.out_dir / "table.md",
                      render_markdown(args.out_dir, args.run_opts, sizes, rows))
    return 0


if __name__ == "__main__":
    run_main(main)
