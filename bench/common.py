"""Helpers shared by the benchmarks: device/AMP selection, timing, and result tables.

Results are written as markdown to bench/results/<name>.md together with a description of
the machine, because a number without its hardware is meaningless.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, ContextManager, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:          # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from fhvae.device import resolve_device  # noqa: E402
from fhvae.io.atomic import write_text_atomic  # noqa: E402
from fhvae.objective import fhvae_loss  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark shares."""
    parser.add_argument("--device", default="auto",
                        help="auto (cuda when available) | cpu | cuda | cuda:N")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none",
                        help="bf16 autocast for the networks (the objective stays float32)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch default)")
    parser.add_argument("--seed", type=int, default=0)


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads/--seed and return the device."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return resolve_device(args.device)


def amp_context(device: torch.device, amp: str) -> ContextManager:
    """bf16 autocast on the device, or nothing."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock time covers the work (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def optimisation_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                      seq_idx: torch.Tensor, num_segs: torch.Tensor, device: torch.device,
                      amp: str, alpha: float = 10.0) -> Callable[[], None]:
    """A closure running one training step on a fixed batch: fhvae_loss, backward, Adam."""
    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp_context(device, amp):
            loss, _ = fhvae_loss(model, x, seq_idx, num_segs, alpha)
        loss.backward()
        opt.step()
    return step


def steady_rate(tsv: Path, batch: int) -> tuple[float, float]:
    """(ms/step, segments/s) of a training run between its first and last logged steps."""
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:]]
    (s0, t0), (s1, t1) = [(int(r[0]), float(r[-1])) for r in (rows[0], rows[-1])]
    sec_per_step = (t1 - t0) / max(s1 - s0, 1)
    return sec_per_step * 1e3, batch / sec_per_step


def time_steps_ms(step: Callable[[], object], device: torch.device, warmup: int,
                  steps: int) -> list[float]:
    """Run `step` warmup times untimed, then `steps` times; per-step wall-clock ms."""
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_description(device: torch.device, amp: str) -> str:
    """One markdown list naming CPU, cores, torch, and the accelerator used."""
    lines = [
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores visible, "
        f"torch threads {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}",
        f"- device: {device.type}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        f"- autocast: {amp}",
        "- load average (1/5/15 min) when written: "
        + " / ".join(f"{v:.1f}" for v in os.getloadavg()),
    ]
    return "\n".join(lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    fmt.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(fmt)


def write_results(name: str, title: str, headers: Sequence[str],
                  rows: Sequence[Sequence[object]], device: torch.device, amp: str,
                  command: str, notes: str = "") -> Path:
    """Print the table and write it, with the machine and command line, to results/<name>.md."""
    table = markdown_table(headers, rows)
    print(table)
    text = (f"# {title}\n\n{machine_description(device, amp)}\n- command: `{command}`\n"
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}\n\n{table}\n")
    if notes:
        text += f"\n{notes.strip()}\n"
    path = RESULTS_DIR / f"{name}.md"
    write_text_atomic(path, text)
    return path
