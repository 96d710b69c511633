"""Speaker-level bootstrap of EER: how far an EER, or a difference of two, can be trusted.

Trials that share a speaker are not independent, so resampling trials would make the
intervals too narrow. Instead the test speakers are drawn with replacement, each draw a
separate copy of that speaker: a target trial of speaker a then appears once in every copy
(c_a times, c = how often each speaker was drawn) and a nontarget trial between a and b
once for every pair of copies (c_a * c_b times), which is what the trial list of the
resampled speaker set would contain. All systems see the same resamples, so their
differences are paired.

A table that makes m comparisons at once needs a correction: `correct` applies Holm's
step-down and Bonferroni-level intervals (fhvae/analysis/significance.py, shared with the
WER tables) to a family of comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fhvae.analysis.significance import family_corrections, paired_p_value, percentile_interval
from fhvae.errors import FhvaeError
from fhvae.evaluate.metrics import (eer_from_rates, min_dcf_from_rates, rates_from_sorted,
                                    threshold_order)

_CHUNK = 25       # resamples weighted at once (memory: a few _CHUNK x trials floats)


@dataclass
class EerComparison:
    """EER(a) - EER(b) over the resamples, in percentage points."""

    system_a: str
    system_b: str
    difference: float                  # on the full trial list
    interval: tuple[float, float]      # 95% percentile interval over resamples
    share_a_lower: float               # fraction of resamples where a has the lower EER
    p_value: float = 1.0               # two-sided bootstrap p-value of "no difference"
    p_holm: float = 1.0                # p_value adjusted over the comparisons of its table
    corrected_interval: tuple[float, float] | None = None   # Bonferroni-level interval

    @property
    def verdict(self) -> str:
        """What the corrected test says at the 5% family-wise level."""
        if self.p_holm >= 0.05:
            return "no difference shown"
        return "a better" if self.difference < 0 else "b better"


def bootstrap_eers(scores: np.ndarray, is_target: np.ndarray, enroll_spk: Sequence[str],
                   test_spk: Sequence[str], num_resamples: int, seed: int) -> np.ndarray:
    """(R, S) EERs of S systems (rows of `scores`, shape (S, N)) on R speaker resamples."""
    return bootstrap_metrics(scores, is_target, enroll_spk, test_spk, num_resamples, seed)[0]


def bootstrap_metrics(scores: np.ndarray, is_target: np.ndarray, enroll_spk: Sequence[str],
                      test_spk: Sequence[str], num_resamples: int, seed: int,
                      p_target: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(R, S) EERs and (R, S) minDCFs (at `p_target`) of S systems (rows of `scores`, shape
    (S, N)) on R speaker resamples; the same resamples for both metrics and every system.

    Resamples that leave no target or no nontarget trial are drawn again, so R rows always
    come back. Only the draws (R x speakers) are kept: the trial weights of _CHUNK resamples
    at a time are made from them, so memory does not grow with R x N.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    is_target = np.asarray(is_target, dtype=bool)
    if scores.shape[1] != is_target.size or len(enroll_spk) != is_target.size \
            or len(test_spk) != is_target.size:
        raise FhvaeError(f"bootstrap: {scores.shape[1]} scores, {is_target.size} labels, "
                         f"{len(enroll_spk)}/{len(test_spk)} speakers per trial")
    speakers, codes = np.unique(np.concatenate([enroll_spk, test_spk]), return_inverse=True)
    spk_a, spk_b = codes[:is_target.size], codes[is_target.size:]
    drawn = draw_speakers(np.random.default_rng(seed), speakers.size, spk_a, spk_b, is_target,
                          num_resamples)
    orders = [threshold_order(row) for row in scores]
    eers = np.empty((num_resamples, scores.shape[0]))
    dcfs = np.empty_like(eers)
    for start in range(0, num_resamples, _CHUNK):
        chunk = slice(start, start + _CHUNK)
        weights = trial_weights(drawn[chunk], spk_a, spk_b, is_target)
        for k, (order, last_of_tie) in enumerate(orders):
            rates = rates_from_sorted(is_target[order], weights[:, order], last_of_tie)
            eers[chunk, k] = eer_from_rates(*rates)
            dcfs[chunk, k] = min_dcf_from_rates(*rates, p_target)
    return eers, dcfs


def draw_speakers(rng: np.random.Generator, num_speakers: int, spk_a: np.ndarray,
                  spk_b: np.ndarray, is_target: np.ndarray, num_resamples: int) -> np.ndarray:
    """(R, speakers) times each speaker is drawn in each of R resamples, drawing again any
    that leaves no target or no nontarget trial."""
    drawn = np.empty((num_resamples, num_speakers))
    done = 0
    for _ in range(100 * max(num_resamples, 1)):
        if done == num_resamples:
            break
        counts = np.bincount(rng.integers(0, num_speakers, num_speakers),
                             minlength=num_speakers).astype(np.float64)
        weight = trial_weights(counts, spk_a, spk_b, is_target)
        if weight[is_target].sum() == 0 or weight[~is_target].sum() == 0:
            continue
        drawn[done] = counts
        done += 1
    if done < num_resamples:
        raise FhvaeError("bootstrap: resampled speaker sets keep lacking target or nontarget "
                         "trials (too few speakers)")
    return drawn


def trial_weights(drawn: np.ndarray, spk_a: np.ndarray, spk_b: np.ndarray,
                  is_target: np.ndarray) -> np.ndarray:
    """How many times each trial appears in a resample that drew speaker s `drawn[s]` times
    ((N,)), or in each of several ((R, speakers) draws: (R, N))."""
    return np.where(is_target, drawn[..., spk_a], drawn[..., spk_a] * drawn[..., spk_b])


def compare(names: Sequence[str], full_eers: Sequence[float], resampled: np.ndarray,
            a: str, b: str) -> EerComparison:
    """Paired comparison of systems `a` and `b` (names index the columns of `resampled`),
    with the bootstrap p-value of a zero difference."""
    ia, ib = list(names).index(a), list(names).index(b)
    diff = resampled[:, ia] - resampled[:, ib]
    p_value = paired_p_value(diff)
    return EerComparison(a, b, float(full_eers[ia] - full_eers[ib]), percentile_interval(diff),
                         float(np.mean(diff < 0)), p_value, p_value)


def correct(comparisons: Sequence[EerComparison], resampled: Sequence[np.ndarray],
            alpha: float = 0.05) -> None:
    """Holm-adjust the p-values of a family of comparisons in place and give each an interval
    at level 1 - alpha/m; `resampled[k]` holds comparison k's resampled differences."""
    p_holm, intervals = family_corrections([c.p_value for c in comparisons], resampled, alpha)
    for c, p, interval in zip(comparisons, p_holm, intervals):
        c.p_holm, c.corrected_interval = p, interval
