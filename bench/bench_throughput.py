#!/usr/bin/env python
"""End-to-end training throughput (segments/s) vs model-only steps on random tensors.

End-to-end = the real training loop (fhvae.train.Trainer) on ark-backed features: sequence
sampling, reading + MVN of each sequence batch (prefetched in a thread), the table reset,
segment cutting by indexing, and the optimisation steps. Model-only = the same optimisation
step on a fixed random batch. Their ratio is the share of the step rate that the data path
and the table resets keep; near 1 means the input pipeline is not the bottleneck.

  python bench/bench_throughput.py --device cpu --threads 2 --steps 40
  python bench/bench_throughput.py --device cuda --hidden 256 --layers 2 --batch 256 --k 2000 \
      --utts 20000 --steps 500
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import add_device_args, amp_context, median, setup, time_steps_ms, write_results
from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import compute_mvn
from fhvae.io.tables import write_table
from fhvae.model import FHVAE, ModelConfig
from fhvae.objective import fhvae_loss
from fhvae.train import TrainConfig, Trainer


def make_corpus(root: Path, utts: int, frames: int, feat_dim: int, seed: int) -> SegmentIndex:
    """An ark of `utts` random utterances of frames/2..3*frames/2 frames, indexed."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(frames // 2, 3 * frames // 2, utts)
    items = ((f"u{i:07d}", rng.normal(size=(n, feat_dim)).astype(np.float32))
             for i, n in enumerate(lengths))
    write_table(root / "feats.ark", root / "feats.scp", items)
    (root / "utt2num_frames").write_text("".join(f"u{i:07d} {n}\n" for i, n in enumerate(lengths)))
    return SegmentIndex.build(root, seq_unit="utt")


def end_to_end(cfg: TrainConfig, index: SegmentIndex, exp: Path) -> tuple[float, float]:
    """Segments per second of Trainer.train() (no dev set): over the whole call, and in the
    steady state (from the first logged step to the last, out of train_metrics.tsv)."""
    mvn = compute_mvn(index.read_utt(u) for u in range(min(index.num_utts, 200)))
    trainer = Trainer(cfg, index, None, mvn, exp)
    start = time.perf_counter()
    trainer.train()
    total = cfg.max_steps * cfg.batch_size / (time.perf_counter() - start)
    rows = [line.split("\t") for line in (exp / "train_metrics.tsv").read_text().splitlines()[1:]]
    (s0, t0), (s1, t1) = [(int(r[0]), float(r[-1])) for r in (rows[0], rows[-1])]
    return total, (s1 - s0) * cfg.batch_size / max(t1 - t0, 1e-9)


def model_only(cfg: TrainConfig, device: torch.device, amp: str, steps: int) -> float:
    """Segments per second of the optimisation step alone on a fixed random batch."""
    mcfg = dataclasses.replace(cfg.model, num_seqs=cfg.seq_batch_size)
    model = FHVAE(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas)
    x = torch.randn(cfg.batch_size, mcfg.seg_len, mcfg.feat_dim, device=device)
    rows = torch.randint(0, mcfg.num_seqs, (cfg.batch_size,), device=device)
    num_segs = torch.randint(1, 50, (mcfg.num_seqs,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with amp_context(device, amp):
            loss, _ = fhvae_loss(model, x, rows, num_segs, cfg.alpha)
        loss.backward()
        opt.step()

    ms = median(time_steps_ms(step, device, warmup=2, steps=steps))
    return cfg.batch_size / (ms / 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--utts", type=int, default=600, help="utterances in the corpus")
    parser.add_argument("--frames", type=int, default=300, help="mean frames per utterance")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--k", type=int, default=200, help="sequence batch size K")
    parser.add_argument("--steps", type=int, default=40, help="end-to-end training steps")
    parser.add_argument("--name", default="", help="results/<name>.md (default throughput_<dev>)")
    args = parser.parse_args()
    device = setup(args)
    cfg = TrainConfig(model=ModelConfig(hidden=args.hidden, num_layers=args.layers),
                      seq_batch_size=args.k, batch_size=args.batch, max_steps=args.steps,
                      log_every=max(args.steps // 10, 1), ckpt_every=10 ** 9, device=device.type,
                      amp=args.amp, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        index = make_corpus(Path(tmp) / "data", args.utts, args.frames, 80, args.seed)
        e2e_total, e2e = end_to_end(cfg, index, Path(tmp) / "exp")
    alone = model_only(cfg, device, args.amp, steps=max(3, min(args.steps, 20)))
    rows = [[f"{args.hidden}x{args.layers}", args.batch, args.k, args.utts, args.steps,
             f"{e2e_total:.0f}", f"{e2e:.0f}", f"{alone:.0f}", f"{e2e / alone:.2f}"]]
    name = args.name or f"throughput_{device.type}" + ("_bf16" if args.amp == "bf16" else "")
    write_results(name, "Training throughput: end-to-end vs model-only",
                  ["LSTM", "batch", "K", "utts", "steps", "e2e seg/s (whole run)",
                   "e2e seg/s (steady)", "model-only seg/s", "ratio (steady)"],
                  rows, device, args.amp, "python " + shlex.join(sys.argv),
                  notes="e2e includes sampling, ark reading + MVN (prefetched in a thread), "
                        "table resets and segment cutting; 'whole run' also counts start-up "
                        "(first, unprefetched batch) and the final checkpoint/plot. 'steady' "
                        "is measured between the first and last logged steps. On a CPU the "
                        "prefetch thread and the reset share the cores with the steps.")


if __name__ == "__main__":
    main()
