#!/usr/bin/env python
"""Time of one optimisation step vs the sequence batch size K (paper Table 2).

One step = fhvae_loss + backward + Adam step at the paper configuration (2x256 LSTMs,
z dims 32, 20x80 segments, batch 256). The discriminative term alone (forward + backward of
the (B,K) logits and log-softmax) is timed separately to show its share of the step.

  python bench/bench_step_time.py --device auto --steps 20
  python bench/bench_step_time.py --device cpu --steps 5 --threads 2
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from common import (add_device_args, median, optimisation_step, setup, time_steps_ms,
                    write_results)
from fhvae.model import FHVAE, ModelConfig
from fhvae.objective import discriminative_logits
from fhvae.training.runtime import make_adam

PAPER_MS = {10: 84, 100: 84, 1000: 86, 2000: 87, 5000: 103, 10000: 147, 20000: 230}


def disc_fn(z2_mu: torch.Tensor, table: torch.Tensor, seq_idx: torch.Tensor, sigma2: float):
    """A closure running forward + backward of the discriminative term alone."""
    def step():
        z2_mu.grad = table.grad = None
        logits = discriminative_logits(z2_mu, table, sigma2)
        log_qy = torch.log_softmax(logits, dim=1).gather(1, seq_idx.unsqueeze(1))
        log_qy.sum().backward()
    return step


def bench_k(k: int, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """Median ms of a full step and of the discriminative term alone, for a K-row table."""
    cfg = ModelConfig(num_seqs=k)
    model = FHVAE(cfg).to(device)
    with torch.no_grad():
        model.mu2.normal_()
    opt = make_adam(model.parameters(), 1e-3, (0.95, 0.999))
    x = torch.randn(args.batch, cfg.seg_len, cfg.feat_dim, device=device)
    seq_idx = torch.randint(0, k, (args.batch,), device=device)
    num_segs = torch.randint(1, 200, (k,), device=device)
    step_ms = median(time_steps_ms(optimisation_step(model, opt, x, seq_idx, num_segs, device,
                                                     args.amp),
                                   device, args.warmup, args.steps))
    z2_mu = torch.randn(args.batch, cfg.z2_dim, device=device, requires_grad=True)
    table = torch.randn(k, cfg.z2_dim, device=device, requires_grad=True)
    disc_ms = median(time_steps_ms(disc_fn(z2_mu, table, seq_idx, cfg.sigma2_z2), device,
                                   args.warmup, max(args.steps, 10)))
    return step_ms, disc_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--ks", default=",".join(map(str, PAPER_MS)),
                        help="comma-separated sequence batch sizes K")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per K (median)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--name", default=None,
                        help="results/<name>.md (default step_time_<device>[_bf16])")
    args = parser.parse_args()
    device = setup(args)
    rows, base = [], None
    for k in (int(v) for v in args.ks.split(",")):
        step_ms, disc_ms = bench_k(k, args, device)
        base = base or step_ms
        rows.append([k, f"{step_ms:.1f}", f"{step_ms / base:.2f}",
                     f"{disc_ms:.2f}", f"{100 * disc_ms / step_ms:.1f}%",
                     PAPER_MS.get(k, "-")])
        print(f"K={k}: {step_ms:.1f} ms/step, discriminative {disc_ms:.2f} ms", file=sys.stderr)
    name = args.name or f"step_time_{device.type}" + ("_bf16" if args.amp == "bf16" else "")
    notes = (f"Median of {args.steps} steps after {args.warmup} warm-up steps, batch "
             f"{args.batch}. 'disc ms' is forward+backward of the discriminative logits and "
             "log-softmax alone; 'ratio' is relative to the first K. Paper: TensorFlow on a GPU "
             "(Table 2).")
    path = write_results(name, "Optimisation step time vs sequence batch size K",
                         ["K", "ms/step", "ratio", "disc ms", "disc share", "paper ms"], rows,
                         device, args.amp, "python " + shlex.join(sys.argv), notes)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
