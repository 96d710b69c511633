"""Stages 1-2 throughput: FBank real-time factor per core, and segment-index build cost.

  python bench/bench_features.py [--seconds 60] [--sizes 10000 100000 1000000]

FBank: CPU seconds per second of audio on one core (process time, so the number does not
depend on other load on the machine; wall time is shown too), for both backends, on
--seconds of 16 kHz noise + tone, best of --repeats. Index: for each size a fresh
subprocess writes a synthetic data dir (feats.scp over 8 arks, utt2num_frames, utt2spk),
then times SegmentIndex.build + save + load and reports its peak RSS and the .npz
bytes/utt.
Writes bench/results/features.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from fhvae.features.fbank import BACKENDS, FbankComputer, FbankConfig  # noqa: E402
from fhvae.io.atomic import write_text_atomic  # noqa: E402

RATE = 16000
NUM_ARKS = 8


def fbank_rows(seconds: float, repeats: int) -> list[list[object]]:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    wave = np.round(2000 * rng.standard_normal(t.size) + 6000 * np.sin(2 * np.pi * 300 * t))
    rows = []
    for backend in BACKENDS:
        computer = FbankComputer(FbankConfig(dither=0.0), backend)
        cpu, wall = [], []
        for _ in range(repeats):
            c0, w0 = time.process_time(), time.perf_counter()
            feats = computer(wave, RATE, "bench")
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        rows.append([backend, f"{seconds:g}", feats.shape[0], f"{min(cpu):.3f}",
                     f"{min(cpu) / seconds:.5f}", f"{min(wall) / seconds:.5f}",
                     f"{seconds / min(cpu):.0f}x"])
    return rows


def write_synthetic_data_dir(data: Path, num_utts: int) -> None:
    """feats.scp whose entries all point at one real 50x80 matrix in each of 8 arks."""
    from fhvae.io.tables import write_table

    offsets = []
    for n in range(1, NUM_ARKS + 1):
        write_table(data / f"raw_fbank.{n}.ark", data / f"part.{n}.scp",
                    [("x", np.zeros((50, 80), np.float32))])
        offsets.append((data / f"part.{n}.scp").read_text().split()[1])
    rng = np.random.default_rng(0)
    frames = rng.integers(10, 1500, num_utts)   # ~1% shorter than 20 frames: excluded
    ids = [f"spk{i // 20:06d}-utt{i:08d}" for i in range(num_utts)]
    per_ark = -(-num_utts // NUM_ARKS)
    (data / "feats.scp").write_text("".join(
        f"{u} {offsets[i // per_ark]}\n" for i, u in enumerate(ids)))
    (data / "utt2num_frames").write_text("".join(f"{u} {t}\n" for u, t in zip(ids, frames)))
    (data / "utt2spk").write_text("".join(f"{u} {u[:9]}\n" for u in ids))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage: ru_maxrss survives exec on Linux and
    would report the parent's peak in a fresh subprocess."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def index_cell(data: Path, seq_unit: str) -> dict:
    """Build, save and load one index; run in a fresh process so ru_maxrss is its peak."""
    from fhvae.data.index import SegmentIndex

    rss_before = peak_rss_mb()
    c0, w0 = time.process_time(), time.perf_counter()
    index = SegmentIndex.build(data, seq_unit=seq_unit)
    build_cpu, build_wall = time.process_time() - c0, time.perf_counter() - w0
    c0 = time.process_time()
    index.save(data / "seg_index.npz")
    save_cpu = time.process_time() - c0
    c0 = time.process_time()
    SegmentIndex.load(data / "seg_index.npz")
    load_cpu = time.process_time() - c0
    return {"kept": index.num_utts, "seqs": index.num_seqs,
            "build_cpu": build_cpu, "build_wall": build_wall, "save_cpu": save_cpu,
            "load_cpu": load_cpu,
            "rss_mb": peak_rss_mb(), "rss_before_mb": rss_before,
            "bytes_per_utt": (data / "seg_index.npz").stat().st_size / index.num_utts}


def index_rows(sizes: list[int]) -> list[list[object]]:
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_synthetic_data_dir(Path(tmp), size)
            for seq_unit in ("utt", "spk"):
                out = subprocess.run([sys.executable, __file__, "--index-cell", tmp,
                                      "--seq-unit", seq_unit], capture_output=True, text=True,
                                     check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
                cell = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(index_row(size, seq_unit, cell))
                print(rows[-1], flush=True)
    return rows


def index_row(size: int, seq_unit: str, cell: dict) -> list[object]:
    return [f"{size:,}", seq_unit, f"{cell['seqs']:,}", f"{cell['build_cpu']:.2f}",
            f"{cell['build_wall']:.2f}", f"{cell['save_cpu']:.2f}", f"{cell['load_cpu']:.2f}",
            f"{cell['rss_before_mb']:.0f} -> {cell['rss_mb']:.0f}",
            f"{cell['bytes_per_utt']:.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seq-unit", choices=("utt", "spk"), help=argparse.SUPPRESS)
    parser.add_argument("--index-cell", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.index_cell:
        print(json.dumps(index_cell(args.index_cell, args.seq_unit)))
        return

    from bench.common import RESULTS_DIR, cpu_model, markdown_table  # imports torch: not in cells

    fb = markdown_table(["backend", "audio s", "frames", "CPU s", "RTF (CPU)", "RTF (wall)",
                         "speed"], fbank_rows(args.seconds, args.repeats))
    print(fb)
    rows = index_rows(args.sizes)
    ix = markdown_table(["utts", "seq unit", "seqs", "build CPU s", "build wall s",
                         "save CPU s", "load CPU s", "peak RSS MB (after imports -> peak)",
                         "bytes/utt"], rows)
    print(ix)
    text = (f"# Stages 1-2: FBank speed and segment-index cost\n\n"
            f"- CPU: {cpu_model()}, {os.cpu_count()} cores visible; FBank runs on one core\n"
            f"- load average (1/5/15 min) when written: "
            + " / ".join(f"{v:.1f}" for v in os.getloadavg()) + "\n"
            f"- command: `python bench/bench_features.py {' '.join(sys.argv[1:])}`\n"
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n"
            f"## FBank (80 bins, 25/10 ms, dither 0), one utterance of {args.seconds:g} s\n\n"
            f"RTF = seconds of compute per second of audio (lower is better).\n\n{fb}\n\n"
            f"## Segment index (synthetic feats.scp over {NUM_ARKS} arks, 10-1500 frames/utt)\n\n"
            f"CPU seconds are process time (robust to other load on a shared machine); wall\n"
            f"seconds depend on that load. Peak RSS is the maximum of a fresh process that\n"
            f"only builds, saves and loads (first number: after imports). bytes/utt is the\n"
            f"saved .npz; with seq unit utt the sequence ids are not stored twice.\n\n{ix}\n")
    write_text_atomic(RESULTS_DIR / "features.md", text)


if __name__ == "__main__":
    main()
