"""Training progress for people: one log line per logged step, a bar only on a terminal.

A log file (exp/fhvae/log/train.log) gets plain `logging` lines, one per log_every steps,
that tail, grep and diff can read; tqdm's carriage-return redraws would fill it with
half-lines, so the bar (fhvae.progress.terminal_bar) is drawn only when stderr is a
terminal, with the log lines routed around it. In a file the log lines are the progress
report, in place of the shared helper's count lines. train_metrics.tsv stays the
machine-readable record.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Mapping

from tqdm.contrib.logging import logging_redirect_tqdm

from fhvae.progress import terminal_bar

logger = logging.getLogger(__name__)


class Progress(contextlib.ExitStack):
    """Steps done out of `total`; `enabled` False (ranks other than 0) says nothing."""

    def __init__(self, total: int, initial: int, enabled: bool = True):
        super().__init__()
        self.total, self.enabled = total, enabled
        self.bar = terminal_bar("train", total, initial) if enabled else None
        if self.bar is not None:
            self.enter_context(self.bar)
            self.enter_context(logging_redirect_tqdm())
        self._last = (initial, time.monotonic())

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def line(self, step: int, means: Mapping[str, float] | None,
             dev: tuple[float, float, int] | None, lr: float | None = None) -> None:
        """Log step `step`: steps/s since the previous line, the mean loss, lb and acc of
        the steps since then (`means`; None when every one was skipped), the lr of step
        `step` and, when it was computed, the dev bound as (value, best value, best step)."""
        if not self.enabled:
            return
        now = time.monotonic()
        rate = (step - self._last[0]) / max(now - self._last[1], 1e-9)
        self._last = (step, now)
        parts = [f"{rate:.2f} steps/s"]
        if means is not None:
            parts += [f"loss {means['loss']:.2f}", f"lb {means['lb']:.2f}",
                      f"acc {means['acc']:.3f}"]
        if lr is not None:
            parts.append(f"lr {lr:.3g}")
        if dev is not None:
            parts.append(f"dev lb {dev[0]:.3f} (best {dev[1]:.3f} at step {dev[2]})")
        logger.info("step %d/%d: %s", step, self.total, ", ".join(parts))
        if self.bar is not None and means is not None:
            self.bar.set_postfix({k: f"{means[k]:.2f}" for k in ("loss", "lb", "acc")})
