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
a CPU without AVX-512 runs; then `amp: bf16` at the default threads and at 1. bf16 is not
run with the AVX2 limit: oneDNN has no bf16 LSTM below AVX-512 ("could not create a primitive
descriptor"), so the trainer would fall back to float32 and repeat "default, AVX2 only". On a
CPU without bf16 kernels the bf16 row says so (amp column) and runs float32 the same way.

The physical limit: FLOP/step is counted once by torch's FlopCounterMode over one real
training step of the configuration's model at its batch size (bench/flops.py: forward,
loss, backward; Adam and the table reset are elementwise/amortised and reported beside it,
not in it); autocast changes dtypes, not the products, so it is the same for the bf16 rows.
GFLOP/s = FLOP/step x steps/s, against the peak of the cores the variant's threads use
(bench/cpu_peak.py: cores x clock x FMA units x vector bits / 32 x 2; --peak-gflops
overrides). Under the table: the peak formulas with this CPU's numbers and, when a variant
reaches less than 30 % of its peak, where the time goes: torch.profiler over --profile-steps
in-process steps of the default variant (fp32, and bf16 when a bf16 row is under 30 %).
Time only on an otherwise idle machine (load < 0.5).
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
from cpu_peak import Peak, add_peak_args, machine_peak
from fhvae.features.mvn import compute_mvn
from flops import StepFlops, StepProfile, count_training_step, profile_steps

AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
LOW_FRACTION = 0.30       # a variant under this fraction of its peak gets 'where it goes'


@dataclass(frozen=True)
class Variant:
    name: str
    threads: int          # 0: torch's default
    prefetch: bool
    avx2_only: bool
    amp: str = "none"


VARIANTS = [Variant(f"{base}{suffix}", threads, prefetch, avx2)
            for avx2, suffix in ((False, ""), (True, ", AVX2 only"))
            for base, threads, prefetch in (("default", 0, True), ("1 thread", 1, True),
                                            ("prefetch off", 0, False))]
VARIANTS += [Variant("default, bf16", 0, True, False, "bf16"),
             Variant("1 thread, bf16", 1, True, False, "bf16")]


def probe(env: dict[str, str]) -> tuple[int, str, bool]:
    """(torch's default intra-op threads, ATen's CPU capability, whether the trainer's own
    check finds bf16 kernels, i.e. whether `amp: bf16` runs in bf16) under `env`."""
    code = ("import torch\nfrom fhvae.training.runtime import cpu_bf16_error\n"
            "print(torch.get_num_threads(), torch.backends.cpu.get_cpu_capability(), "
            "int(cpu_bf16_error() is None))")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), out[1], out[2] == "1"


def run_variant(variant: Variant, args: argparse.Namespace, index: str, mvn: str,
                exp: Path) -> tuple[int, str, str, float]:
    """(threads used, code path, amp run, steady steps/s) of one training process."""
    env = {**os.environ, **(AVX2_ENV if variant.avx2_only else {}), "PYTHONPATH": str(ROOT)}
    default_threads, capability, bf16_ok = probe(env)
    amp = variant.amp if variant.amp != "bf16" or bf16_ok else "none"
    cmd = [sys.executable, "-m", "fhvae.bin.train", "--config", args.config,
           "--train-index", index, "--mvn", mvn, "--max-steps", str(args.steps),
           "--num-threads", str(variant.threads), "--set", f"log_every={args.steps // 8}",
           "--set", "dev_every=1000000000", "--set", "ckpt_every=1000000000",
           # the lr does not change the speed; a warm-up longer than --steps would be refused
           "--set", "warmup_steps=0",
           "--set", f"prefetch={str(variant.prefetch).lower()}",
           "--set", f"amp={variant.amp}", str(exp)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{variant.name}: training failed: {proc.stderr.strip().splitlines()[-1]}")
    ms, _ = steady_rate(exp / "train_metrics.tsv", 1)
    return variant.threads or default_threads, capability, amp, 1e3 / ms


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def fraction(gflops: float, peak: float | None) -> float | None:
    return gflops / peak if peak else None


def flop_notes(flops: StepFlops, peak: Peak, avx2_rows: bool) -> str:
    """What FLOP/step holds, and the peak formulas with this CPU's numbers."""
    top = ", ".join(f"{name} {n / 1e9:.2f} G ({100 * share:.1f} %)"
                    for name, n, share in flops.top(5))
    lines = [
        f"FLOP/step: {flops.total / 1e9:.3f} GFLOP (torch FlopCounterMode over one training "
        "step at the configuration's batch size: forward + fhvae_loss + backward; a "
        "multiply-add = 2 FLOPs; bench/flops.py). By module: " + top + ". By op: "
        + ", ".join(f"{op} {n / 1e9:.2f} G" for op, n in sorted(flops.by_op.items(),
                                                                 key=lambda kv: -kv[1]))
        + f". Not in it: {sum(flops.elementwise.values()) / 1e6:.1f} M elementwise "
        f"element-ops of the step (gates, loss terms); Adam's update, "
        f"{flops.adam_elementwise / 1e6:.2f} M element-ops over {flops.params:,} parameters; "
        f"the table reset, {flops.reset_per_step / 1e9:.3f} GFLOP a step amortised "
        f"({100 * flops.reset_per_step / flops.total:.1f} % of FLOP/step, left out of "
        "GFLOP/s).",
        "Peak (bench/cpu_peak.py): " + peak.describe(),
        "\n".join(f"- {line}" for line in peak.formulas()),
        "GFLOP/s = FLOP/step × steps/s; % of peak is of the peak of the cores the variant's "
        "threads use (min(threads, cores)); % bf16 peak only for rows run in bf16.",
    ]
    avx2 = peak.fp32_gflops(vector_bits=256)
    if avx2_rows and avx2 is not None and peak.fp32_gflops():
        lines.append(f"The AVX2-only rows use 256-bit vectors: at most {avx2:.1f} GFLOP/s "
                     f"({100 * avx2 / peak.fp32_gflops():.0f} % of the fp32 peak) on "
                     f"{peak.datapath_bits}-bit FMA pipes.")
    return "\n\n".join(lines)


def where_it_goes(prof: StepProfile, flops: StepFlops, peak: Peak,
                  trainer_rate: float | None, low: list[str]) -> str:
    """A short paragraph: the top ops of a profile and what they imply."""
    top = ", ".join(f"{name} {100 * share:.0f} %" for name, share in prof.top(6))
    names = ", ".join(f"'{name}'" for name in low)
    text = (f"Where it goes ({names} under {100 * LOW_FRACTION:.0f} % of peak): "
            f"torch.profiler over {prof.steps} in-process steps of the default variant "
            f"({'bf16' if prof.amp == 'bf16' else 'fp32'}, {prof.threads} threads; "
            f"fhvae_loss + backward + fused Adam, no data loading or table reset), share of "
            f"self CPU time: {top}.")
    rnn = prof.share(lambda name: "rnn" in name or "lstm" in name.lower())
    lstm_flops = flops.of_type("LSTM")
    limit = (peak.bf16_gflops(prof.threads) if prof.amp == "bf16"
             else peak.fp32_gflops(prof.threads))
    if rnn > 0 and lstm_flops:
        rate = lstm_flops / (rnn * prof.plain_ms * 1e-3) / 1e9
        text += (f" The LSTM ops (oneDNN: the gates' GEMMs and elementwise work in one op; "
                 f"the recurrence is one small GEMM per time step) hold "
                 f"{100 * lstm_flops / flops.total:.0f} % of FLOP/step and take "
                 f"{100 * rnn:.0f} % of the time: ≈ {rate:.1f} GFLOP/s"
                 + (f", {100 * rate / limit:.0f} % of the {prof.threads}-thread peak"
                    if limit else "")
                 + f"; the other {100 * (1 - rnn):.0f} % of the time (elementwise ops, "
                 "copies, Adam, the heads) does "
                 f"{100 * (1 - lstm_flops / flops.total):.0f} % of the FLOPs.")
    if trainer_rate:
        trainer_ms = 1e3 / trainer_rate
        outside = 1 - prof.plain_ms / trainer_ms
        text += (f" The in-process step took {prof.plain_ms:.1f} ms, the trainer's "
                 f"{trainer_ms:.1f} ms: " + (
                     f"{100 * outside:.0f} % of the trainer's time is outside the step (data "
                     "loading, table reset, logging)." if outside > 0 else
                     "no time outside the step shows (the two ran at different moments)."))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/fhvae_cpu.yaml")
    parser.add_argument("--train-index", help="seg_index.npz (default: generated features)")
    parser.add_argument("--mvn", help="mvn.npz of --train-index")
    parser.add_argument("--steps", type=int, default=400, help="steps per variant")
    parser.add_argument("--utts", type=int, default=2400, help="generated utterances")
    parser.add_argument("--frames", type=int, default=400, help="their mean length")
    parser.add_argument("--only", default="",
                        help=f"comma-separated variant numbers (1-{len(VARIANTS)})")
    parser.add_argument("--name", default="train_cpu", help="results/<name>.md")
    parser.add_argument("--profile-steps", type=int, default=20,
                        help="in-process steps profiled when a variant is under 30 %% of "
                             "peak (0: no profile)")
    add_peak_args(parser)
    args = parser.parse_args()
    if bool(args.train_index) != bool(args.mvn):
        parser.error("--train-index and --mvn go together")
    max_steps = yaml.safe_load((ROOT / args.config).read_text())["max_steps"]
    chosen = [VARIANTS[int(i) - 1] for i in args.only.split(",") if i] or VARIANTS
    peak = machine_peak(args.clock_mhz, args.peak_gflops, args.peak_bf16_gflops)
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        index, mvn = args.train_index, args.mvn
        if not index:
            corpus = make_corpus(Path(tmp) / "data", args.utts, args.frames, 80, seed=0)
            index, mvn = str(Path(tmp) / "index.npz"), str(Path(tmp) / "mvn.npz")
            corpus.save(index)
            compute_mvn(corpus.read_utt(u) for u in range(min(corpus.num_utts, 200))).save(mvn)
        for n, variant in enumerate(chosen, 1):
            threads, capability, amp, rate = run_variant(variant, args, index, mvn,
                                                         Path(tmp) / f"exp{n}")
            print(f"{variant.name}: {rate:.2f} steps/s", file=sys.stderr)
            runs.append((variant, threads, capability, amp, rate))
        print("counting FLOPs of one step", file=sys.stderr)
        flops = count_training_step(args.config, index)
        gflop = flops.total / 1e9
        low: dict[str, list[str]] = {"none": [], "bf16": []}
        reference: dict[str, float] = {}     # amp -> steps/s of its default-threads row
        for variant, threads, capability, amp, rate in runs:
            achieved = gflop * rate
            fp32 = fraction(achieved, peak.fp32_gflops(threads))
            bf16 = fraction(achieved, peak.bf16_gflops(threads)) if amp == "bf16" else None
            mine = bf16 if amp == "bf16" else fp32
            if mine is not None and mine < LOW_FRACTION:
                low[amp].append(variant.name)
            if (variant.threads, variant.prefetch, variant.avx2_only) == (0, True, False):
                reference.setdefault(amp, rate)
            shown_amp = amp if amp == variant.amp else f"{amp} (no bf16 kernels)"
            rows.append([variant.name, threads, capability, "on" if variant.prefetch else "off",
                         shown_amp, f"{rate:.2f}", f"{max_steps / rate / 60:.1f}",
                         f"{gflop:.2f}", f"{achieved:.1f}", pct(fp32),
                         pct(bf16) if amp == "bf16" else "—"])
        notes = [flop_notes(flops, peak, any(v.avx2_only for v, *_ in runs))]
        for amp, names in low.items():
            if names and args.profile_steps > 0:
                print(f"profiling {args.profile_steps} steps ({amp})", file=sys.stderr)
                prof = profile_steps(args.config, index, args.profile_steps, amp)
                notes.append(where_it_goes(prof, flops, peak, reference.get(amp), names))
    notes.insert(0, f"{args.steps} steps per variant, steady rate between the first and "
                    "last logged step (no dev evaluation, no checkpoints: a recipe run "
                    "adds those). 'threads' is torch's intra-op thread count; 'code path' "
                    "is ATen's CPU capability (oneDNN follows the same limit). Features: "
                    + (args.train_index or f"generated ({args.utts} utterances of "
                                             f"~{args.frames} frames)") + ".")
    write_results(args.name, f"Training steps/s of {args.config} on CPU",
                  ["variant", "threads", "code path", "prefetch", "amp", "steps/s",
                   f"min for {max_steps} steps", "GFLOP/step", "GFLOP/s", "% fp32 peak",
                   "% bf16 peak"],
                  rows, torch.device("cpu"), "per variant (amp column)",
                  "python " + shlex.join(sys.argv), notes="\n\n".join(notes))
    print("\n" + "\n\n".join(notes[1:]))


if __name__ == "__main__":
    main()
