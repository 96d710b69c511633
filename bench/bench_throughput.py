#!/usr/bin/env python
"""End-to-end training throughput (segments/s) vs model-only steps on random tensors.

End-to-end = the real training loop (fhvae.training.loop.Trainer) on ark-backed features:
sequence sampling, reading + MVN of each sequence batch (prefetched in a thread), the table
reset, segment cutting by indexing, and the optimisation steps. Model-only = the same optimisation
step on a fixed random batch. Algorithm 1 compute = those steps plus the table reset they
need (one no-grad z2-encoder pass over the sequence batch's non-overlapping windows,
fhvae.training.loop.reset_windows), amortised over
the sequence batch's steps. e2e / step is the share of the step rate that the whole loop
keeps; e2e / Algorithm 1 is the data path's share (reading, MVN, cutting, bookkeeping):
near 1 means the input pipeline never starves the model.

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

from common import (add_device_args, median, optimisation_step, setup, steady_rate, time_steps_ms,
                    write_results)
from fhvae.data.index import SegmentIndex
from fhvae.data.loader import SequenceBatchLoader
from fhvae.data.sampler import HierarchicalSampler
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.io.tables import write_table
from fhvae.model import FHVAE, ModelConfig
from fhvae.inference import sequence_mu2
from fhvae.training.config import TrainConfig
from fhvae.training.loop import MU2_BATCH, Trainer, reset_windows
from fhvae.training.runtime import make_adam


def make_corpus(root: Path, utts: int, frames: int, feat_dim: int, seed: int) -> SegmentIndex:
    """An ark of `utts` random utterances of frames/2..3*frames/2 frames, indexed."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(frames // 2, 3 * frames // 2, utts)
    items = ((f"u{i:07d}", rng.normal(size=(n, feat_dim)).astype(np.float32))
             for i, n in enumerate(lengths))
    write_table(root / "feats.ark", root / "feats.scp", items)
    (root / "utt2num_frames").write_text("".join(f"u{i:07d} {n}\n" for i, n in enumerate(lengths)))
    return SegmentIndex.build(root, seq_unit="utt")


def end_to_end(cfg: TrainConfig, index: SegmentIndex, mvn: MVN,
               exp: Path) -> tuple[float, float]:
    """Segments per second of Trainer.train() (no dev set): over the whole call, and in the
    steady state (from the first logged step to the last, out of train_metrics.tsv)."""
    trainer = Trainer(cfg, index, None, mvn, exp)
    start = time.perf_counter()
    trainer.train()
    total = cfg.max_steps * cfg.batch_size / (time.perf_counter() - start)
    return total, steady_rate(exp / "train_metrics.tsv", cfg.batch_size)[1]


def reset_cost(cfg: TrainConfig, index: SegmentIndex, mvn: MVN,
               device: torch.device) -> tuple[float, int]:
    """(ms of one table reset, steps it is amortised over) for the run's first sequence batch."""
    batch = HierarchicalSampler(index, cfg.seq_batch_size, cfg.seg_shift, cfg.seed).seq_batch(0)
    loader = SequenceBatchLoader(index, mvn, device, prefetch=False)
    buf = reset_windows(index, loader.load(batch), cfg.reset_shift)
    mcfg = dataclasses.replace(cfg.model, num_seqs=cfg.seq_batch_size)
    model = FHVAE(mcfg).to(device)
    reset = lambda: sequence_mu2(model, buf, buf.rows, mcfg.num_seqs, MU2_BATCH)  # noqa: E731
    ms = median(time_steps_ms(reset, device, warmup=1, steps=3))
    loader.close()
    return ms, cfg.num_seg_batches or batch.default_num_batches(cfg.batch_size)


def model_only(cfg: TrainConfig, device: torch.device, amp: str, steps: int) -> float:
    """Segments per second of the optimisation step alone on a fixed random batch, over the
    total wall-clock time of `steps` steps (a mean rate, like the end-to-end figure)."""
    mcfg = dataclasses.replace(cfg.model, num_seqs=cfg.seq_batch_size)
    model = FHVAE(mcfg).to(device)
    opt = make_adam(model.parameters(), cfg.lr, cfg.betas)
    x = torch.randn(cfg.batch_size, mcfg.seg_len, mcfg.feat_dim, device=device)
    rows = torch.randint(0, mcfg.num_seqs, (cfg.batch_size,), device=device)
    num_segs = torch.randint(1, 50, (mcfg.num_seqs,), device=device)
    step = optimisation_step(model, opt, x, rows, num_segs, device, amp, cfg.alpha)
    ms = sum(time_steps_ms(step, device, warmup=2, steps=steps))
    return steps * cfg.batch_size / (ms / 1e3)


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
    parser.add_argument("--repeats", type=int, default=3,
                        help="end-to-end / model-only pairs, run alternately")
    parser.add_argument("--name", default="", help="results/<name>.md (default throughput_<dev>)")
    args = parser.parse_args()
    device = setup(args)
    cfg = TrainConfig(model=ModelConfig(hidden=args.hidden, num_layers=args.layers),
                      seq_batch_size=args.k, batch_size=args.batch, max_steps=args.steps,
                      log_every=max(args.steps // 10, 1), ckpt_every=10 ** 9, device=device.type,
                      amp=args.amp, seed=args.seed)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as tmp:
        index = make_corpus(Path(tmp) / "data", args.utts, args.frames, 80, args.seed)
        mvn = compute_mvn(index.read_utt(u) for u in range(min(index.num_utts, 200)))
        reset_ms, reset_steps = reset_cost(cfg, index, mvn, device)
        for repeat in range(1, args.repeats + 1):
            e2e_total, e2e = end_to_end(cfg, index, mvn, Path(tmp) / f"exp{repeat}")
            alone = model_only(cfg, device, args.amp, steps=args.steps)
            algo = args.batch / (args.batch / alone + reset_ms / 1e3 / reset_steps)
            ratios.append((e2e / alone, e2e / algo))
            rows.append([repeat, f"{args.hidden}x{args.layers}", args.batch, args.k, args.utts,
                         args.steps, f"{e2e_total:.0f}", f"{e2e:.0f}", f"{alone:.0f}",
                         f"{reset_ms:.0f}", reset_steps, f"{algo:.0f}", f"{e2e / alone:.2f}",
                         f"{e2e / algo:.2f}"])
    rows.append(["median"] + [""] * 11 + [f"{median([r[0] for r in ratios]):.2f}",
                                           f"{median([r[1] for r in ratios]):.2f}"])
    name = args.name or f"throughput_{device.type}" + ("_bf16" if args.amp == "bf16" else "")
    write_results(name, "Training throughput: end-to-end vs model-only",
                  ["repeat", "LSTM", "batch", "K", "utts", "steps", "e2e seg/s (whole run)",
                   "e2e seg/s (steady)", "step-only seg/s", "reset ms", "steps/reset",
                   "Alg. 1 compute seg/s", "e2e / step", "e2e / Alg. 1"],
                  rows, device, args.amp, "python " + shlex.join(sys.argv),
                  notes="e2e includes sampling, ark reading + MVN (prefetched in a thread), "
                        "table resets and segment cutting; 'whole run' also counts start-up "
                        "(first, unprefetched batch) and the final checkpoint/plot. 'steady' "
                        "is measured between the first and last logged steps. Both rates are "
                        "totals over wall-clock time (means, not medians), and each repeat runs "
                        "the end-to-end loop and then as many model-only steps. 'reset ms' is "
                        "one table reset (no-grad z2 encoder over the non-overlapping windows "
                        "of a sequence batch), amortised over 'steps/reset' steps in 'Alg. 1 "
                        "compute'. On a CPU the prefetch thread shares the cores with the steps.")


if __name__ == "__main__":
    main()
