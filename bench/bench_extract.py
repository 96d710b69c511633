"""Extraction throughput (frames/s) of the paper-size FHVAE (random init) on random features.

    python bench/bench_extract.py [--device cpu] [--threads 2] [--minutes 1]

Every frame costs two encoder passes over its 20-frame window (z2, then z1 given z2), so
throughput is about 1/40 of the LSTM's frames/s over segments. Rows: in-memory extraction
for several --batch-size values, and a full run_job (Kaldi ark read + three tables written).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_device_args, amp_context, setup, synchronize, write_results  # noqa: E402

from fhvae.extract import ExtractOptions, extract_latents, run_job  # noqa: E402
from fhvae.features.mvn import MVN  # noqa: E402
from fhvae.io.tables import write_table  # noqa: E402
from fhvae.model import FHVAE, ModelConfig  # noqa: E402
from fhvae.training.checkpoint import save_checkpoint  # noqa: E402

UTT_FRAMES = 500  # 5 s utterances


def _row(what: str, batch: int, frames: int, start: float, cpu: float) -> list[object]:
    """One result row from the wall-clock and process-CPU start times."""
    wall = time.perf_counter() - start
    return [what, batch, frames, f"{wall:.2f}", f"{time.process_time() - cpu:.2f}",
            f"{frames / wall:,.0f}", f"{frames / 100 / wall:.2f}x"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--minutes", type=float, default=1.0, help="minutes of features")
    parser.add_argument("--batch-sizes", default="1024,4096", help="windows per encoder call")
    args = parser.parse_args()
    device = setup(args)
    cfg = ModelConfig()
    model = FHVAE(cfg).to(device).eval()
    mvn = MVN(np.zeros(cfg.feat_dim, np.float32), np.ones(cfg.feat_dim, np.float32))
    rng = np.random.default_rng(args.seed)
    total = int(args.minutes * 6000)
    utts = [(f"utt{i:04d}", rng.normal(size=(min(UTT_FRAMES, total - s), cfg.feat_dim))
             .astype(np.float32)) for i, s in enumerate(range(0, total, UTT_FRAMES))]

    rows = []
    with amp_context(device, args.amp):
        list(extract_latents(model, mvn, utts[:1], device))   # warm-up
        for batch in map(int, args.batch_sizes.split(",")):
            synchronize(device)
            start, cpu = time.perf_counter(), time.process_time()
            list(extract_latents(model, mvn, utts, device, ExtractOptions(batch_size=batch)))
            synchronize(device)
            rows.append(_row("extract_latents", batch, total, start, cpu))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            write_table(tmp / "data" / "feats.ark", tmp / "data" / "feats.scp", utts)
            save_checkpoint(tmp / "model.pt", {
                "model_config": cfg.to_dict(), "model": model.state_dict(),
                "mvn_mean": torch.from_numpy(mvn.mean), "mvn_std": torch.from_numpy(mvn.std)})
            start, cpu = time.perf_counter(), time.process_time()
            run_job(tmp / "model.pt", tmp / "data", tmp / "out", device=str(device))
            rows.append(_row("run_job (with I/O)", 4096, total, start, cpu))
    write_results("extract", "Extraction throughput, paper-size model (random init)",
                  ["what", "batch", "frames", "wall s", "CPU s", "frames/s", "x real time"], rows,
                  device, args.amp, "python " + " ".join(sys.argv),
                  notes="Frames are 10 ms, so 'x real time' = frames/s / 100 (wall clock). The "
                        "model has hidden 256, 2 layers, z dims 32, 80-dim input (paper "
                        "defaults). CPU s well below threads x wall s means the cores were "
                        "shared with other processes during the run.")


if __name__ == "__main__":
    main()
