#!/usr/bin/env python
"""Steps/s of the default CPU training configuration, per thread setting and CPU code path.

Each variant is one `python -m fhvae.bin.train --config <config>` process (as stage 3 runs
it) for --steps steps without dev evaluation or checkpoints; the rate is the steady one,
between the first and the last logged step of its train_metrics.tsv. The table names the
threads torch chose, the oneDNN/ATen code path, and what the configuration's max_steps
would take at that rate, so that a timing always comes with the machine that made it.

  python bench/bench_train_cpu.py                                   # generated features
  python bench/bench_train_cpu.py --train-index data/train/fhvae/seg_index.npz \\
      --mvn data/train/fhvae/mvn.npz                                # the recipe's features

Variants: torch's default threads, 1 thread, the prefetch thread off, and the same three
with the code path limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2): what
a CPU without AVX-512 runs. Time only on an otherwise idle machine (load < 0.5).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from bench_throughput import make_corpus
from common import ROOT, steady_rate, write_results
from fhvae.features.mvn import compute_mvn

AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


@dataclass(frozen=True)
class Variant:
    name: str
    threads: int          # 0: torch's default
    prefetch: bool
    avx2_only: bool


VARIANTS = [Variant(f"{base}{suffix}", threads, prefetch, avx2)
            for avx2, suffix in ((False, ""), (True, ", AVX2 only"))
            for base, threads, prefetch in (("default", 0, True), ("1 thread", 1, True),
                                            ("prefetch off", 0, False))]


def probe(env: dict[str, str]) -> tuple[int, str]:
    """(torch's default intra-op threads, ATen's CPU capability) under `env`."""
    code = ("import torch; print(torch.get_num_threads(), "
            "torch.backends.cpu.get_cpu_capability())")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), out[1]


def run_variant(variant: Variant, args: argparse.Namespace, index: str, mvn: str,
                exp: Path) -> tuple[int, str, float]:
    """(threads used, code path, steady steps/s) of one training process."""
    env = {**os.environ, **(AVX2_ENV if variant.avx2_only else {})}
    default_threads, capability = probe(env)
    cmd = [sys.executable, "-m", "fhvae.bin.train", "--config", args.config,
           "--train-index", index, "--mvn", mvn, "--max-steps", str(args.steps),
           "--num-threads", str(variant.threads), "--set", f"log_every={args.steps // 8}",
           "--set", "dev_every=1000000000", "--set", "ckpt_every=1000000000",
           "--set", f"prefetch={str(variant.prefetch).lower()}", str(exp)]
    proc = subprocess.run(cmd, env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{variant.name}: training failed: {proc.stderr.strip().splitlines()[-1]}")
    ms, _ = steady_rate(exp / "train_metrics.tsv", 1)
    return variant.threads or default_threads, capability, 1e3 / ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/fhvae_cpu.yaml")
    parser.add_argument("--train-index", help="seg_index.npz (default: generated features)")
    parser.add_argument("--mvn", help="mvn.npz of --train-index")
    parser.add_argument("--steps", type=int, default=400, help="steps per variant")
    parser.add_argument("--utts", type=int, default=2400, help="generated utterances")
    parser.add_argument("--frames", type=int, default=400, help="their mean length")
    parser.add_argument("--only", default="", help="comma-separated variant numbers (1-6)")
    parser.add_argument("--name", default="train_cpu", help="results/<name>.md")
    args = parser.parse_args()
    if bool(args.train_index) != bool(args.mvn):
        parser.error("--train-index and --mvn go together")
    max_steps = yaml.safe_load((ROOT / args.config).read_text())["max_steps"]
    chosen = [VARIANTS[int(i) - 1] for i in args.only.split(",") if i] or VARIANTS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index, mvn = args.train_index, args.mvn
        if not index:
            corpus = make_corpus(Path(tmp) / "data", args.utts, args.frames, 80, seed=0)
            index, mvn = str(Path(tmp) / "index.npz"), str(Path(tmp) / "mvn.npz")
            corpus.save(index)
            compute_mvn(corpus.read_utt(u) for u in range(min(corpus.num_utts, 200))).save(mvn)
        for n, variant in enumerate(chosen, 1):
            threads, capability, rate = run_variant(variant, args, index, mvn,
                                                    Path(tmp) / f"exp{n}")
            print(f"{variant.name}: {rate:.2f} steps/s", file=sys.stderr)
            rows.append([variant.name, threads, capability, "on" if variant.prefetch else "off",
                         f"{rate:.2f}", f"{max_steps / rate / 60:.1f}"])
    write_results(args.name, f"Training steps/s of {args.config} on CPU",
                  ["variant", "threads", "code path", "prefetch", "steps/s",
                   f"min for {max_steps} steps"],
                  rows, torch.device("cpu"), "none", "python " + shlex.join(sys.argv),
                  notes=f"{args.steps} steps per variant, steady rate between the first and "
                        "last logged step (no dev evaluation, no checkpoints: a recipe run "
                        "adds those). 'threads' is torch's intra-op thread count; 'code path' "
                        "is ATen's CPU capability (oneDNN follows the same limit). Features: "
                        + (args.train_index or f"generated ({args.utts} utterances of "
                                                 f"~{args.frames} frames)") + ".")


if __name__ == "__main__":
    main()
