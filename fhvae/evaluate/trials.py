"""Speaker-verification trial lists in Kaldi's format: `<enroll-utt> <test-utt> target|nontarget`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import write_text_atomic

LABELS = ("target", "nontarget")


@dataclass(frozen=True)
class Trial:
    enroll: str
    test: str
    is_target: bool


def make_trials(utt2spk: Mapping[str, str], seed: int, max_targets_per_utt: int = 10) -> list[Trial]:
    """A balanced, seeded trial list with no self-trials and no repeated (unordered) pair.

    Every utterance, taken in sorted order as the test side, gets up to `max_targets_per_utt`
    same-speaker enrolment utterances not yet paired with it, and exactly as many
    different-speaker ones, so target and nontarget counts are equal.
    """
    utts = sorted(utt2spk)
    spk_of = np.array([utt2spk[u] for u in utts])
    rng = np.random.default_rng(seed)
    used: set[tuple[int, int]] = set()
    trials: list[Trial] = []
    for i, utt in enumerate(utts):
        same = np.flatnonzero(spk_of == spk_of[i])
        same = [j for j in same if j != i and (min(i, j), max(i, j)) not in used]
        count = min(max_targets_per_utt, len(same))
        if count == 0:
            continue
        other = [j for j in np.flatnonzero(spk_of != spk_of[i]) if (min(i, j), max(i, j)) not in used]
        count = min(count, len(other))
        for candidates, is_target in ((same, True), (other, False)):
            for j in rng.choice(candidates, count, replace=False):
                used.add((min(i, j), max(i, j)))
                trials.append(Trial(utts[j], utt, is_target))
    if not trials:
        raise FhvaeError("cannot make verification trials: no speaker has two utterances")
    return trials


def write_trials(path: str | os.PathLike, trials: list[Trial]) -> None:
    write_text_atomic(path, "".join(f"{t.enroll} {t.test} {LABELS[not t.is_target]}\n"
                                    for t in trials))


def read_trials(path: str | os.PathLike, known_utts: Collection[str]) -> list[Trial]:
    """Read a trials file; an unknown utterance or a bad line is an error naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: no such file")
    trials: list[Trial] = []
    with open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if len(fields) != 3 or fields[2] not in LABELS:
                raise FhvaeError(f"{path}:{lineno}: expected '<enroll-utt> <test-utt> "
                                 f"target|nontarget'")
            for utt in fields[:2]:
                if utt not in known_utts:
                    raise FhvaeError(f"{path}:{lineno}: unknown utterance '{utt}'")
            trials.append(Trial(fields[0], fields[1], fields[2] == "target"))
    if not any(t.is_target for t in trials) or all(t.is_target for t in trials):
        raise FhvaeError(f"{path}: needs both target and nontarget trials")
    return trials
