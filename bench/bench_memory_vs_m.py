#!/usr/bin/env python
"""Step time and peak memory vs the number of training sequences M: hierarchical vs flat.

hierarchical: the mu2 table has K rows (default 2000) whatever M is; the only O(M) state is
  the per-sequence index (offsets and lengths as int64 arrays) and the draw of K of the M
  sequences without replacement, both included here.
flat (original FHVAE training): the table has M rows, all trained by Adam, and the
  discriminative softmax runs over all M rows.

Every configuration runs in a fresh subprocess so its peak is its own: max RSS from
getrusage on CPU, torch.cuda.max_memory_allocated on CUDA.

  python bench/bench_memory_vs_m.py --device auto
  python bench/bench_memory_vs_m.py --device cpu --steps 2 --max-flat-m 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from common import (add_device_args, median, optimisation_step, setup, time_steps_ms,
                    write_results)
from fhvae.model import FHVAE, ModelConfig
from fhvae.training.runtime import make_adam

DEFAULT_MS = "1000,10000,100000,1000000"


def sequence_index(m: int, rng: np.random.Generator) -> np.ndarray:
    """(2, M) int64 [frame offset; length] per sequence: the O(M) state of hierarchical runs."""
    lengths = rng.integers(100, 400, size=m, dtype=np.int64)
    return np.stack([np.cumsum(lengths) - lengths, lengths])


def run_config(args: argparse.Namespace) -> dict:
    """One configuration (in this process): median step ms and peak memory in MiB."""
    device = setup(args)
    m = args.m
    rng = np.random.default_rng(args.seed)
    rows = args.k if args.mode == "hierarchical" else m
    if args.mode == "hierarchical":
        index = sequence_index(m, rng)                  # held for the run, as in training
        chosen = rng.choice(m, size=min(args.k, m), replace=False)
        num_segs = torch.from_numpy(index[1, chosen] - 19).to(device)
    else:
        num_segs = torch.randint(80, 380, (m,), device=device)
    cfg = ModelConfig(num_seqs=min(rows, m))
    model = FHVAE(cfg).to(device)
    with torch.no_grad():
        model.mu2.normal_()
    opt = make_adam(model.parameters(), 1e-3, (0.95, 0.999))
    x = torch.randn(args.batch, cfg.seg_len, cfg.feat_dim, device=device)
    seq_idx = torch.randint(0, cfg.num_seqs, (args.batch,), device=device)
    step = optimisation_step(model, opt, x, seq_idx, num_segs, device, args.amp)
    ms = median(time_steps_ms(step, device, args.warmup, args.steps))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    return {"ms": ms, "peak_mib": peak}


def spawn(args: argparse.Namespace, mode: str, m: int) -> dict | None:
    """Run one configuration in a fresh interpreter; None if it failed (e.g. out of memory)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--mode", mode,
           "--m", str(m), "--k", str(args.k), "--batch", str(args.batch),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device,
           "--amp", args.amp, "--threads", str(args.threads), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["killed"])[-1]
        print(f"{mode} M={m} failed (rc {proc.returncode}): {tail}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cell(result: dict | None, key: str, skipped: bool) -> str:
    if skipped:
        return "skipped"
    return "failed" if result is None else f"{result[key]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_device_args(parser)
    parser.add_argument("--ms", default=DEFAULT_MS, help="comma-separated numbers of sequences M")
    parser.add_argument("--k", type=int, default=2000, help="hierarchical table rows K")
    parser.add_argument("--max-flat-m", type=float, default=float("inf"),
                        help="skip flat runs with M above this (slow/huge on CPU)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--name", default=None,
                        help="results/<name>.md (default memory_vs_m_<device>[_bf16])")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["hierarchical", "flat"], help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_config(args)))
        return
    device = setup(args)
    rows = []
    for m in (int(float(v)) for v in args.ms.split(",")):
        hier = spawn(args, "hierarchical", m)
        skip_flat = m > args.max_flat_m
        flat = None if skip_flat else spawn(args, "flat", m)
        rows.append([f"{m:,}", cell(hier, "ms", False), cell(hier, "peak_mib", False),
                     cell(flat, "ms", skip_flat), cell(flat, "peak_mib", skip_flat)])
        print(f"M={m}: hierarchical {hier}, flat {flat}", file=sys.stderr)
    unit = "peak alloc MiB" if device.type == "cuda" else "peak RSS MiB"
    name = args.name or f"memory_vs_m_{device.type}" + ("_bf16" if args.amp == "bf16" else "")
    notes = (f"Hierarchical: K = {args.k} table rows whatever M. Flat: M table rows, softmax "
             f"over all M. Median of {args.steps} optimisation steps (fhvae_loss + backward + "
             f"Adam) after {args.warmup} warm-up, batch {args.batch}, paper model. Each cell is "
             "a fresh process; CPU peaks include the Python/torch runtime and the model.")
    path = write_results(name, "Step time and peak memory vs number of training sequences M",
                         ["M", "hier ms/step", f"hier {unit}", "flat ms/step", f"flat {unit}"],
                         rows, device, args.amp, "python " + shlex.join(sys.argv), notes)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
