"""The learning-rate schedule: an optional linear warm-up, then a constant, cosine or linear
decay to `lr_floor` x lr at the end of the run's budget.

Pure functions of the config and the run's position, so a resumed run recomputes the lr of
every step from what last.pt holds (the step and the time used) and never depends on the
lr that Adam's param_groups carried into the checkpoint.

    warm(n)     = min(1, n / warmup_steps)                  (1 without warm-up)
    progress(n) = max((n - warmup_steps) / (max_steps - warmup_steps),
                      elapsed / (60 max_minutes)),           clipped to [0, 1]
    decay(p)    = 1                                          constant
                = floor + (1 - floor) (1 + cos(pi p)) / 2    cosine
                = 1 - (1 - floor) p                          linear
    lr(n)       = lr x min(warm(n), decay(progress(n)))

for training step n = 1, 2, ...: the lr rises to its peak at step warmup_steps and reaches
floor x lr at step max_steps, or when max_minutes of training time are used if that comes
first (the time term is 0 without max_minutes). The `min` keeps the lr continuous when a
time budget has already started the decay during the warm-up.
"""

from __future__ import annotations

import math
from typing import Protocol

from fhvae.errors import FhvaeError

SCHEDULES = ("constant", "cosine", "linear")


class ScheduleConfig(Protocol):
    """The TrainConfig fields the schedule reads."""

    lr: float
    lr_schedule: str
    warmup_steps: int
    lr_floor: float
    max_steps: int
    max_minutes: float


def check_schedule(cfg: ScheduleConfig, where: str = "config") -> None:
    """A one-line FhvaeError naming the first bad schedule option, before any training."""
    if cfg.lr_schedule not in SCHEDULES:
        raise FhvaeError(f"{where}: lr_schedule must be constant, cosine or linear, got "
                         f"'{cfg.lr_schedule}'")
    warmup = cfg.warmup_steps
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise FhvaeError(f"{where}: warmup_steps must be an integer >= 0, got {warmup!r}")
    if warmup and warmup >= cfg.max_steps:
        raise FhvaeError(f"{where}: warmup_steps ({warmup}) must be below max_steps "
                         f"({cfg.max_steps})")
    floor = cfg.lr_floor
    if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
        raise FhvaeError(f"{where}: lr_floor must be a fraction of lr in [0, 1], got "
                         f"{floor!r}")


def decay_progress(cfg: ScheduleConfig, step: int, elapsed: float = 0.0) -> float:
    """How far the decay is at training step `step` (1-based), in [0, 1]: the larger of the
    steps since the warm-up over the steps after it and the share of max_minutes used
    (`elapsed` seconds of training; ignored when max_minutes is 0)."""
    by_steps = (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)
    by_time = elapsed / (60.0 * cfg.max_minutes) if cfg.max_minutes > 0 else 0.0
    return min(max(by_steps, by_time, 0.0), 1.0)


def lr_at(cfg: ScheduleConfig, step: int, progress: float) -> float:
    """The lr of training step `step` (1-based) when the decay is at `progress`
    (decay_progress). Constant without warm-up is exactly cfg.lr, so the default run's
    updates are bit for bit those of a fixed-lr Adam."""
    warm = min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    p = min(max(progress, 0.0), 1.0)
    floor = cfg.lr_floor
    if cfg.lr_schedule == "constant":
        decay = 1.0
    elif cfg.lr_schedule == "cosine":
        decay = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    elif cfg.lr_schedule == "linear":
        decay = 1.0 - (1.0 - floor) * p
    else:
        raise FhvaeError(f"lr_schedule must be constant, cosine or linear, got "
                         f"'{cfg.lr_schedule}'")
    return cfg.lr * min(warm, decay)
