"""How far a long loop is, for people, in every stage: a tqdm bar on a terminal, a few
plain lines in a log file.

Kaldi-style recipes run as `./run.sh > run.log 2>&1` or as cluster jobs with a log file
each. There a bar's carriage-return redraws pile up as hundreds of half-lines, and a bar
switched off (tqdm's disable=None) leaves an hour of work without a word. So when stderr
is not a terminal a loop writes one line as it starts, one each time another tenth is
done (at most one per LINE_INTERVAL seconds) and one as it ends:

    corpus: 1200/2400 utt (50 %), 35 s

A loop of unknown length writes its count every LINE_INTERVAL seconds instead.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")

LINE_INTERVAL = 30.0   # seconds: the least time between two lines of one loop in a log
LINE_SHARE = 0.1       # the least share of the total between two lines of one loop


def terminal_bar(desc: str, total: int | None, initial: int = 0, unit: str = "it",
                 stream: TextIO | None = None) -> tqdm | None:
    """A tqdm bar on `stream` (stderr) when it is a terminal, else None."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return None
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream,
                dynamic_ncols=True)


class ProgressLines:
    """The lines off a terminal: at the start, after each LINE_SHARE of `total` (but
    LINE_INTERVAL seconds apart at the least) and at close()."""

    def __init__(self, desc: str, total: int | None, unit: str, stream: TextIO):
        self.desc, self.total, self.unit, self.stream = desc, total, unit, stream
        self.done = 0
        self.started = time.monotonic()
        self._write(self.started)

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._written_at >= LINE_INTERVAL and self._share_due():
            self._write(now)

    def close(self) -> None:
        self._write(time.monotonic())

    def _share_due(self) -> bool:
        """Whether another LINE_SHARE of the total is done since the last line (always,
        without a total); the line of the last item is close()'s."""
        if not self.total:
            return True
        return self.done < self.total and self.done - self._written >= LINE_SHARE * self.total

    def _write(self, now: float) -> None:
        self._written, self._written_at = self.done, now
        count = f"{self.done} {self.unit}"
        if self.total:
            count = f"{self.done}/{self.total} {self.unit} ({100 * self.done / self.total:.0f} %)"
        print(f"{self.desc}: {count}, {now - self.started:.0f} s", file=self.stream,
              flush=True)


def progress(items: Iterable[Item], desc: str, total: int | None = None, unit: str = "it",
             enabled: bool = True, stream: TextIO | None = None) -> Iterator[Item]:
    """`items`, one by one, telling `stream` (stderr) how many are done: a bar on a
    terminal, ProgressLines elsewhere, nothing unless `enabled`. `total` defaults to
    len(items) where items has a length. A loop left early (an error) writes no end line,
    so an error message stays the last line of the log."""
    stream = sys.stderr if stream is None else stream
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if not enabled:
        yield from items
        return
    bar = terminal_bar(desc, total, unit=unit, stream=stream)
    if bar is not None:
        with bar:
            for item in items:
                yield item
                bar.update()
        return
    lines = ProgressLines(desc, total, unit, stream)
    for item in items:
        yield item
        lines.update()
    lines.close()
