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


def condition_matched_trials(utt2spk: Mapping[str, str], utt2cond: Mapping[str, str],
                             seed: int, max_nontarget: int = 20000) -> list[Trial]:
    """Pairs of utterances recorded in the same condition (e.g. noise and channel): every
    such target pair, and every such nontarget pair or, when there are more than
    `max_nontarget`, a seeded sample of that many.

    Taking all pairs lets the rare same-condition target pairs be counted; on a corpus whose
    condition changes with every utterance they say how well an embedding separates speakers
    once the condition cannot help or hurt.
    """
    groups: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        groups.setdefault(utt2cond[utt], []).append(utt)
    pairs: set[tuple[str, str]] = set()
    num_nontarget = 0
    for members in groups.values():
        by_spk: dict[str, list[str]] = {}
        for utt in members:
            by_spk.setdefault(utt2spk[utt], []).append(utt)
        pairs |= {(a, b) for same in by_spk.values() for i, a in enumerate(same)
                  for b in same[i + 1:]}
        num_nontarget += (len(members) ** 2 - sum(len(v) ** 2 for v in by_spk.values())) // 2
    if num_nontarget <= max_nontarget:
        pairs |= {(a, b) for members in groups.values() for i, a in enumerate(members)
                  for b in members[i + 1:] if utt2spk[a] != utt2spk[b]}
    else:
        pairs |= _sample_nontarget_pairs(groups, utt2spk, max_nontarget, seed)
    trials = [Trial(a, b, utt2spk[a] == utt2spk[b]) for a, b in sorted(pairs)]
    if not any(t.is_target for t in trials) or all(t.is_target for t in trials):
        raise FhvaeError("cannot make condition-matched trials: no two utterances of one "
                         "speaker (or of two speakers) share a condition")
    return trials


def _sample_nontarget_pairs(groups: Mapping[str, list[str]], utt2spk: Mapping[str, str],
                            count: int, seed: int) -> set[tuple[str, str]]:
    """`count` distinct different-speaker pairs drawn uniformly from the same-condition pairs
    (a condition is chosen in proportion to its number of pairs), without listing them all."""
    members = [groups[c] for c in sorted(groups) if len(groups[c]) > 1]
    sizes = np.array([len(m) * (len(m) - 1) / 2 for m in members])
    rng = np.random.default_rng(seed)
    chosen: set[tuple[str, str]] = set()
    while len(chosen) < count:
        group = members[rng.choice(len(members), p=sizes / sizes.sum())]
        i, j = rng.choice(len(group), 2, replace=False)
        a, b = sorted((group[i], group[j]))
        if utt2spk[a] != utt2spk[b]:
            chosen.add((a, b))
    return chosen


def restrict_to_matched(trials: list[Trial], utt2cond: Mapping[str, str]) -> list[Trial]:
    """The trials of a given list whose two sides share a condition."""
    return [t for t in trials if utt2cond[t.enroll] == utt2cond[t.test]]


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
