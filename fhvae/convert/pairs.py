"""Which utterances are converted into which target, and which ones the targets and the
judging classifiers are built from.

The evaluated speakers (or conditions) exist nowhere else, so each group's utterances are
split: one seeded utterance of every group with at least two is held out as a conversion
source; the rest ("enrolment") give the target's mean s-vector and train the classifiers.
No classifier has seen a source utterance, and a target is never built from the source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from fhvae.errors import FhvaeError


@dataclass(frozen=True)
class Pair:
    """Convert utterance `source` (of group `source_group`) into group `target`."""

    source: str
    source_group: str
    target: str

    @property
    def name(self) -> str:
        """A file-name stem that says what was converted into what."""
        return f"{self.source}_to_{self.target}"


def hold_out(utt2group: Mapping[str, str], seed: int) -> tuple[list[str], list[str]]:
    """(enrolment utterances, held-out sources): one seeded source per group that has two
    or more utterances; both lists sorted."""
    groups: dict[str, list[str]] = {}
    for utt in sorted(utt2group):
        groups.setdefault(utt2group[utt], []).append(utt)
    rng = np.random.default_rng(seed)
    held = sorted(utts[rng.integers(len(utts))] for _, utts in sorted(groups.items())
                  if len(utts) > 1)
    chosen = set(held)
    return sorted(u for u in utt2group if u not in chosen), held


def choose_pairs(sources: list[str], utt2group: Mapping[str, str], targets: list[str],
                 seed: int) -> list[Pair]:
    """Each source with a seeded target group other than its own."""
    rng = np.random.default_rng(seed)
    pairs = []
    for utt in sources:
        others = [g for g in targets if g != utt2group[utt]]
        if not others:
            raise FhvaeError(f"conversion needs a second target group besides "
                             f"'{utt2group[utt]}' with enrolment utterances")
        pairs.append(Pair(utt, utt2group[utt], others[rng.integers(len(others))]))
    return pairs
