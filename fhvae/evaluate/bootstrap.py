"""Speaker-level bootstrap of EER: how far an EER, or a difference of two, can be trusted.

Trials that share a speaker are not independent, so resampling trials would make the
intervals too narrow. Instead the test speakers are drawn with replacement; a trial between
speakers a and b then counts w_a * w_b times (w = how often each speaker was drawn), which
is what the trial list of the resampled speaker set would contain. All systems see the same
resamples, so their differences are paired.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.evaluate.metrics import compute_eer


@dataclass
class EerComparison:
    """EER(a) - EER(b) over the resamples, in percentage points."""

    system_a: str
    system_b: str
    difference: float                  # on the full trial list
    interval: tuple[float, float]      # 95% percentile interval over resamples
    share_a_lower: float               # fraction of resamples where a has the lower EER


def bootstrap_eers(scores: np.ndarray, is_target: np.ndarray, enroll_spk: Sequence[str],
                   test_spk: Sequence[str], num_resamples: int, seed: int) -> np.ndarray:
    """(R, S) EERs of S systems (rows of `scores`, shape (S, N)) on R speaker resamples.

    Resamples that leave no target or no nontarget trial are drawn again, so R rows always
    come back.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    is_target = np.asarray(is_target, dtype=bool)
    if scores.shape[1] != is_target.size or len(enroll_spk) != is_target.size \
            or len(test_spk) != is_target.size:
        raise FhvaeError(f"bootstrap: {scores.shape[1]} scores, {is_target.size} labels, "
                         f"{len(enroll_spk)}/{len(test_spk)} speakers per trial")
    speakers, codes = np.unique(np.concatenate([enroll_spk, test_spk]), return_inverse=True)
    spk_a, spk_b = codes[:is_target.size], codes[is_target.size:]
    rng = np.random.default_rng(seed)
    eers = np.empty((num_resamples, scores.shape[0]))
    done = 0
    for _ in range(100 * max(num_resamples, 1)):
        if done == num_resamples:
            break
        drawn = np.bincount(rng.integers(0, speakers.size, speakers.size),
                            minlength=speakers.size).astype(np.float64)
        weight = drawn[spk_a] * drawn[spk_b]
        if weight[is_target].sum() == 0 or weight[~is_target].sum() == 0:
            continue
        eers[done] = [compute_eer(row[is_target], row[~is_target], weight[is_target],
                                  weight[~is_target]) for row in scores]
        done += 1
    if done < num_resamples:
        raise FhvaeError("bootstrap: resampled speaker sets keep lacking target or nontarget "
                         "trials (too few speakers)")
    return eers


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = 100.0 * (1.0 - level) / 2.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def compare(names: Sequence[str], full_eers: Sequence[float], resampled: np.ndarray,
            a: str, b: str) -> EerComparison:
    """Paired comparison of systems `a` and `b` (names index the columns of `resampled`)."""
    ia, ib = list(names).index(a), list(names).index(b)
    diff = resampled[:, ia] - resampled[:, ib]
    return EerComparison(a, b, float(full_eers[ia] - full_eers[ib]), percentile_interval(diff),
                         float(np.mean(diff < 0)))
