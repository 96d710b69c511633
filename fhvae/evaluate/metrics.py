"""Detection metrics for speaker verification: EER and Kaldi-normalised minDCF.

Both are computed from one pass over the scores sorted in decreasing order, with tied
scores treated as one threshold (so the result never depends on the order of ties).
"""

from __future__ import annotations

import numpy as np

from fhvae.errors import FhvaeError


def error_rates(target: np.ndarray, nontarget: np.ndarray,
                target_weight: np.ndarray | None = None,
                nontarget_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Miss and false-alarm rates at every distinct threshold ("accept if score >= t").

    Returns (p_miss, p_fa), both starting at the threshold above every score
    (p_miss = 1, p_fa = 0) and ending below every score (p_miss = 0, p_fa = 1). Optional
    non-negative weights count a trial that many times (the speaker bootstrap uses them
    instead of materialising repeated trials).
    """
    target = np.asarray(target, dtype=np.float64).ravel()
    nontarget = np.asarray(nontarget, dtype=np.float64).ravel()
    if target.size == 0 or nontarget.size == 0:
        raise FhvaeError(f"need target and nontarget scores (got {target.size} target, "
                         f"{nontarget.size} nontarget)")
    scores = np.concatenate([target, nontarget])
    if not np.isfinite(scores).all():
        raise FhvaeError("non-finite verification score")
    w_target = np.ones(target.size) if target_weight is None else np.asarray(target_weight, float)
    w_non = np.ones(nontarget.size) if nontarget_weight is None else np.asarray(nontarget_weight,
                                                                                float)
    if w_target.sum() <= 0 or w_non.sum() <= 0:
        raise FhvaeError("target and nontarget weights must each have a positive sum")
    hit_weight = np.concatenate([w_target, np.zeros(nontarget.size)])
    fa_weight = np.concatenate([np.zeros(target.size), w_non])
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    hits = np.cumsum(hit_weight[order])
    false_alarms = np.cumsum(fa_weight[order])
    # Keep only the last position of every run of equal scores: one point per threshold.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    hits = np.r_[0.0, hits[last_of_tie]]
    false_alarms = np.r_[0.0, false_alarms[last_of_tie]]
    return 1.0 - hits / w_target.sum(), false_alarms / w_non.sum()


def compute_eer(target: np.ndarray, nontarget: np.ndarray,
                target_weight: np.ndarray | None = None,
                nontarget_weight: np.ndarray | None = None) -> float:
    """Equal error rate in percent, linearly interpolated where miss and false alarm cross."""
    p_miss, p_fa = error_rates(target, nontarget, target_weight, nontarget_weight)
    diff = p_miss - p_fa                      # non-increasing from +1 to -1
    idx = int(np.argmax(diff <= 0))
    if diff[idx] == 0:
        return 100.0 * float(p_miss[idx])
    frac = diff[idx - 1] / (diff[idx - 1] - diff[idx])
    return 100.0 * float(p_miss[idx - 1] + frac * (p_miss[idx] - p_miss[idx - 1]))


def compute_min_dcf(target: np.ndarray, nontarget: np.ndarray, p_target: float = 0.01,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Minimum detection cost, divided by the cost of the best trivial system (as Kaldi does)."""
    if not 0.0 < p_target < 1.0:
        raise FhvaeError(f"p_target must be in (0, 1), got {p_target}")
    p_miss, p_fa = error_rates(target, nontarget)
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return float(cost.min() / min(c_miss * p_target, c_fa * (1.0 - p_target)))
