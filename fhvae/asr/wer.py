"""Word error rates per recording condition, and how far a difference of two can be trusted.

Kaldi's compute-wer gives one WER per decode; a robustness claim ("z1 wins in babble noise")
needs it per noise x channel condition, and an interval. Utterances of one speaker are not
independent, so the bootstrap draws speakers with replacement, as Kaldi's
compute-wer-bootci draws utterances, and every system sees the same draws (paired).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from fhvae.analysis.significance import family_corrections, paired_p_value, percentile_interval
from fhvae.errors import FhvaeError


@dataclass(frozen=True)
class Errors:
    """Word errors of one utterance (or a sum): substitutions, deletions, insertions and the
    number of reference words."""

    sub: int = 0
    dele: int = 0
    ins: int = 0
    words: int = 0

    @property
    def total(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def wer(self) -> float:
        """In percent, as Kaldi prints it (0 reference words: 0 if no insertions, else inf)."""
        if self.words == 0:
            return 0.0 if self.total == 0 else float("inf")
        return 100.0 * self.total / self.words

    def __add__(self, other: "Errors") -> "Errors":
        return Errors(self.sub + other.sub, self.dele + other.dele, self.ins + other.ins,
                      self.words + other.words)


def align_errors(ref: Sequence[str], hyp: Sequence[str]) -> Errors:
    """Minimum edit distance between word sequences, split into S, D and I.

    Ties between equally short alignments are broken towards substitutions, then deletions:
    the totals never depend on it, the split only marginally (as in Kaldi's compute-wer)."""
    n, m = len(ref), len(hyp)
    # cost[i][j] = (total, sub, del, ins) of aligning ref[:i] with hyp[:j]
    cost = [[(j, 0, 0, j) for j in range(m + 1)]]
    for i in range(1, n + 1):
        row = [(i, 0, i, 0)]
        for j in range(1, m + 1):
            diag = cost[i - 1][j - 1]
            match = ref[i - 1] == hyp[j - 1]
            options = [
                (diag[0] + (0 if match else 1), diag[1] + (0 if match else 1), diag[2], diag[3]),
                (cost[i - 1][j][0] + 1, cost[i - 1][j][1], cost[i - 1][j][2] + 1, cost[i - 1][j][3]),
                (row[j - 1][0] + 1, row[j - 1][1], row[j - 1][2], row[j - 1][3] + 1),
            ]
            row.append(min(options, key=lambda c: c[0]))
        cost.append(row)
    total, sub, dele, ins = cost[n][m]
    return Errors(sub, dele, ins, n)


def utterance_errors(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]],
                     where: str = "hypotheses") -> dict[str, Errors]:
    """Errors of every reference utterance; one missing from `hyps` counts as all deleted
    (as compute-wer --mode=present does not), and a hypothesis without reference is an error."""
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise FhvaeError(f"{where}: utterance '{extra[0]}' has no reference "
                         f"({len(extra)} such)")
    return {utt: align_errors(ref, hyps.get(utt, ())) for utt, ref in refs.items()}


def sum_by(errors: Mapping[str, Errors], label_of: Mapping[str, str]) -> dict[str, Errors]:
    """Errors summed per label (e.g. a condition 'babble/far'), labels in sorted order."""
    out: dict[str, Errors] = {}
    for utt, e in errors.items():
        if utt not in label_of:
            raise FhvaeError(f"no condition label for utterance '{utt}'")
        label = label_of[utt]
        out[label] = out.get(label, Errors()) + e
    return dict(sorted(out.items()))


@dataclass
class WerDifference:
    """WER(a) - WER(b) in points on one group of utterances, with its speaker bootstrap."""

    group: str
    wer_a: float
    wer_b: float
    interval: tuple[float, float]            # 95 % percentile interval
    p_value: float                           # two-sided bootstrap p-value of "no difference"
    p_holm: float = 1.0                      # adjusted over the family of its table
    corrected_interval: tuple[float, float] | None = None   # at level 1 - 0.05/m
    resampled: np.ndarray | None = field(default=None, repr=False)   # the differences drawn

    @property
    def difference(self) -> float:
        return self.wer_a - self.wer_b

    @property
    def relative(self) -> float:
        """(a - b) / b, in percent of b's WER."""
        return 100.0 * self.difference / self.wer_b if self.wer_b else float("nan")


def speaker_bootstrap(errors_a: Mapping[str, Errors], errors_b: Mapping[str, Errors],
                      spk_of: Mapping[str, str], groups: Mapping[str, str],
                      num_resamples: int, seed: int) -> list[WerDifference]:
    """Paired WER differences a - b per group, speakers drawn with replacement.

    Each resample draws the speakers of the whole set (so a group keeps the speakers that have
    utterances in it, with their draw counts) and recomputes every group's WER from the drawn
    speakers' error and word counts. The same draws serve every group and, with the same
    `seed`, every pair of systems."""
    if set(errors_a) != set(errors_b):
        raise FhvaeError("bootstrap: the two systems were scored on different utterances")
    utts = sorted(errors_a)
    speakers = sorted({spk_of[u] for u in utts})
    spk_index = {s: k for k, s in enumerate(speakers)}
    names = sorted({groups[u] for u in utts})
    # per (group, speaker): errors of a, errors of b, reference words
    counts = np.zeros((3, len(names), len(speakers)))
    for u in utts:
        g, s = names.index(groups[u]), spk_index[spk_of[u]]
        counts[:, g, s] += (errors_a[u].total, errors_b[u].total, errors_a[u].words)
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(len(speakers), np.full(len(speakers), 1.0 / len(speakers)),
                            size=num_resamples).astype(np.float64)   # (R, S)
    sums = np.einsum("kgs,rs->krg", counts, drawn)                     # (3, R, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = 100.0 * (sums[0] - sums[1]) / sums[2]                   # (R, G)
    out = []
    for g, name in enumerate(names):
        e_a, e_b, words = counts[:, g].sum(axis=1)
        d = diff[:, g][np.isfinite(diff[:, g])]   # resamples that drew none of its speakers out
        if d.size == 0:
            raise FhvaeError(f"bootstrap: group '{name}' has no reference words")
        out.append(WerDifference(name, 100.0 * e_a / words, 100.0 * e_b / words,
                                 percentile_interval(d), paired_p_value(d), resampled=d))
    return out


def correct_family(differences: Sequence[WerDifference], alpha: float = 0.05) -> None:
    """Holm-adjusted p-values and Bonferroni-level intervals for every difference of a table
    (m comparisons at once: one in twenty would exclude 0 by chance otherwise)."""
    unsampled = next((d for d in differences if d.resampled is None), None)
    if unsampled is not None:
        raise FhvaeError(f"correct_family: '{unsampled.group}' has no resampled differences")
    p_holm, intervals = family_corrections([d.p_value for d in differences],
                                           [d.resampled for d in differences], alpha)
    for d, p, interval in zip(differences, p_holm, intervals):
        d.p_holm, d.corrected_interval = p, interval
