"""fhvae.progress: a bar on a terminal; in a log file a few whole lines, never a '\\r'."""

from __future__ import annotations

import io
import sys

import pytest

import fhvae.progress
from fhvae.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_a_start_and_an_end_line_and_no_carriage_return():
    log = io.StringIO()
    assert list(progress(range(1000), "corpus", unit="utt", stream=log)) == list(range(1000))
    text = log.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and 2 <= len(lines) <= 12, text
    assert lines[0] == "corpus: 0/1000 utt (0 %), 0 s"
    assert lines[-1].startswith("corpus: 1000/1000 utt (100 %), ") and lines[-1].endswith(" s")


def test_lines_come_every_tenth_when_the_time_allows(monkeypatch):
    monkeypatch.setattr(fhvae.progress, "LINE_INTERVAL", 0.0)
    log = io.StringIO()
    list(progress(range(1000), "mvn", unit="utt", stream=log))
    counts = [line.split()[1] for line in log.getvalue().splitlines()]
    assert counts == [f"{n}/1000" for n in range(0, 1001, 100)]


def test_a_loop_of_unknown_length_counts_without_a_total():
    log = io.StringIO()
    list(progress((i for i in range(7)), "vad", unit="utt", stream=log))
    assert [line.rsplit(",", 1)[0] for line in log.getvalue().splitlines()] == [
        "vad: 0 utt", "vad: 7 utt"]


def test_an_error_stays_the_last_line_and_disabled_says_nothing():
    log = io.StringIO()
    with pytest.raises(ValueError):
        for item in progress(range(10), "fbank", stream=log):
            if item == 3:
                raise ValueError(item)
    assert log.getvalue().splitlines() == ["fbank: 0/10 it (0 %), 0 s"]
    quiet = io.StringIO()
    assert list(progress(range(3), "corpus", enabled=False, stream=quiet)) == [0, 1, 2]
    assert quiet.getvalue() == ""


def test_a_terminal_gets_a_bar():
    term = Terminal()
    assert list(progress(range(50), "convert", stream=term)) == list(range(50))
    assert "\r" in term.getvalue() and "convert: 100%" in term.getvalue()


@pytest.mark.parametrize("stream, bar", [(Terminal(), True), (io.StringIO(), False)])
def test_training_draws_its_bar_only_on_a_terminal(monkeypatch, stream, bar):
    from fhvae.training.progress import Progress
    monkeypatch.setattr(sys, "stderr", stream)
    with Progress(4, 0) as steps:
        for _ in range(4):
            steps.step()
    assert ("\r" in stream.getvalue()) == bar and ("train: 100%" in stream.getvalue()) == bar
