#!/usr/bin/env python
"""Stages 2-3 at 1,000-hour scale: index build, training memory and speed vs M utterances.

The corpus is an I/O-realistic stand-in, not 1,000 hours of unique data: a pool of
`--distinct` random matrices of log-normal lengths (median `--frames`) is written once into
one ark, and the feats.scp of M utterances points every utterance at one pool matrix's
offset. Training therefore reads real ark bytes by offset, sequence batch by sequence batch,
exactly as it would on a real corpus (from the page cache once the pool has been read).

For every M, stage 2 (`fhvae.bin.make_index`, MVN from `--mvn-utts` utterances) and stage 3
(`fhvae.bin.train`, a small model for `--steps` steps) each run in a fresh process, whose
wall time and peak RSS (os.wait4) are recorded; ms/step and seg/s are steady-state numbers
from the run's train_metrics.tsv (first to last logged step: reads, resets and all).

  python bench/bench_scale.py --threads 1
  python bench/bench_scale.py --ms 1000,300000 --steps 200 --device cuda --hidden 256 --layers 2
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from common import ROOT, add_device_args, setup, steady_rate, write_results
from fhvae.io.tables import write_table

DEFAULT_MS = "1000,10000,100000,300000"


def make_pool(work: Path, distinct: int, frames: int, feat_dim: int,
              seed: int) -> tuple[list[str], np.ndarray]:
    """(rxfile per pool matrix, its frame count); the ark is written only once per setting."""
    pool = work / f"pool_{distinct}x{frames}x{feat_dim}_s{seed}"
    scp = pool / "pool.scp"
    rng = np.random.default_rng(seed)
    # ~12 s median like read speech; clipped to 1-60 s.
    lengths = np.clip(rng.lognormal(np.log(frames), 0.5, distinct), 100, 6000).astype(int)
    if not scp.is_file():
        scale = rng.uniform(0.5, 3.0, feat_dim).astype(np.float32)
        items = ((f"p{i:06d}", rng.standard_normal((n, feat_dim), dtype=np.float32) * scale)
                 for i, n in enumerate(lengths))
        write_table(pool / "pool.ark", scp, items)
    refs = [line.split(maxsplit=1)[1] for line in scp.read_text().splitlines()]
    return refs, lengths


def make_data_dir(data: Path, refs: list[str], lengths: np.ndarray, m: int, seed: int) -> float:
    """feats.scp + utt2num_frames of m utterances drawn from the pool; returns hours."""
    rng = np.random.default_rng(seed + m)
    pick = rng.integers(0, len(refs), m)
    data.mkdir(parents=True, exist_ok=True)
    ids = [f"u{i:07d}" for i in range(m)]
    (data / "feats.scp").write_text("".join(f"{u} {refs[p]}\n" for u, p in zip(ids, pick)))
    (data / "utt2num_frames").write_text("".join(f"{u} {lengths[p]}\n"
                                                 for u, p in zip(ids, pick)))
    return float(lengths[pick].sum()) / 100 / 3600


# Linux records the high-water RSS of the image a process replaces at exec, and
# subprocess spawns by vfork: a child started from this (torch-importing) process would
# report at least our own peak. A small interpreter in between starts the command instead
# and prints its exit code and max RSS (KiB) on the last line.
_PEAK_RSS = ("import os, subprocess, sys\n"
             "proc = subprocess.Popen(sys.argv[1:])\n"
             "_, status, usage = os.wait4(proc.pid, 0)\n"
             "print(); print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n")


def run_measured(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run cmd in a fresh process: (wall s, peak RSS MiB of that process); fail loudly."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with open(log, "w") as handle:
        subprocess.run([sys.executable, "-c", _PEAK_RSS, *cmd], stdout=handle,
                       stderr=subprocess.STDOUT, cwd=ROOT, env=env, check=True)
    wall = time.perf_counter() - start
    lines = log.read_text().strip().splitlines()
    code, peak_kib = (int(v) for v in lines[-1].split())
    if code != 0:
        raise SystemExit(f"ERROR: {shlex.join(cmd)} failed:\n" + "\n".join(lines[-4:-1]))
    return wall, peak_kib / 1024


def train_config(args: argparse.Namespace, path: Path) -> None:
    cfg = {"model": {"hidden": args.hidden, "num_layers": args.layers},
           "seq_batch_size": args.k, "batch_size": args.batch,
           "num_seg_batches": args.seg_batches, "max_steps": args.steps,
           "log_every": max(args.steps // 10, 1), "ckpt_every": 10 ** 9,
           "device": args.device, "amp": args.amp, "seed": args.seed}
    path.write_text(yaml.safe_dump(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--ms", default=DEFAULT_MS, help="comma-separated utterance counts M")
    parser.add_argument("--distinct", type=int, default=2000, help="distinct pool matrices")
    parser.add_argument("--frames", type=int, default=1200, help="median frames per utterance")
    parser.add_argument("--mvn-utts", type=int, default=1000, help="--mvn-max-utts of stage 2")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--k", type=int, default=200, help="sequence batch size K")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seg-batches", type=int, default=40,
                        help="segment batches per sequence batch (so a short run visits several)")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--work", default="/tmp/fhvae_bench_scale",
                        help="scratch dir (the pool ark is reused between runs)")
    parser.add_argument("--name", default="", help="results/<name>.md (default scale_<dev>)")
    args = parser.parse_args()
    device = setup(args)
    work = Path(args.work)
    refs, lengths = make_pool(work, args.distinct, args.frames, 80, args.seed)
    threads = ["--num-threads", str(args.threads)] if args.threads else []
    rows = []
    for m in (int(float(v)) for v in args.ms.split(",")):
        run = work / f"m{m}"
        subprocess.run(["rm", "-rf", str(run)], check=True)
        hours = make_data_dir(run / "data", refs, lengths, m, args.seed)
        index_s, index_rss = run_measured(
            [sys.executable, "-m", "fhvae.bin.make_index", "--mvn-out",
             str(run / "mvn.npz"), "--mvn-max-utts", str(args.mvn_utts), str(run / "data")],
            run / "make_index.log")
        index = run / "data" / "fhvae" / "seg_index.npz"
        train_config(args, run / "train.yaml")
        train_s, train_rss = run_measured(
            [sys.executable, "-m", "fhvae.bin.train", "--config", str(run / "train.yaml"),
             "--train-index", str(index), "--mvn", str(run / "mvn.npz"), *threads,
             str(run / "exp")], run / "train.log")
        ms, seg_s = steady_rate(run / "exp" / "train_metrics.tsv", args.batch)
        rows.append([f"{m:,}", f"{hours:,.0f}", f"{index_s:.1f}", f"{index_rss:.0f}",
                     f"{index.stat().st_size / 2**20:.2f}", f"{index.stat().st_size / m:.1f}",
                     f"{train_rss:.0f}",
                     f"{train_s:.0f}", f"{ms:.0f}", f"{seg_s:.0f}"])
        print(f"M={m}: {rows[-1]}", file=sys.stderr)
        subprocess.run(["rm", "-rf", str(run)], check=True)
    name = args.name or f"scale_{device.type}" + ("_bf16" if args.amp == "bf16" else "")
    notes = (
        f"Stand-in corpus: {args.distinct} distinct random 80-dim matrices (log-normal "
        f"lengths, median {args.frames} frames, 1-60 s) written once; each of the M "
        "utterances' feats.scp lines points at one of them, so every read is a real ark read "
        "by offset but the data is not unique. Stage 2: make_index with MVN from "
        f"{args.mvn_utts} evenly spaced utterances (wall s and peak RSS of the process). "
        f"Stage 3: fhvae.bin.train, LSTM {args.hidden}x{args.layers}, K = {args.k}, batch "
        f"{args.batch}, {args.seg_batches} segment batches per sequence batch, {args.steps} "
        "steps, no dev set; 'train s' is the whole process (imports, index load, the first "
        "unprefetched sequence batch, final checkpoint); ms/step and seg/s are steady state "
        "(first to last logged step) and include reads, table resets and segment cutting.")
    path = write_results(name, "Stages 2-3 at scale: index, memory and speed vs M",
                         ["M utts", "hours", "index s", "index peak RSS MiB", "index MiB", "B/utt",
                          "train peak RSS MiB", "train s", "ms/step", "seg/s"],
                         rows, device, args.amp, "python " + shlex.join(sys.argv), notes)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
