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
    order, last_of_tie = threshold_order(scores)
    is_target = np.r_[np.ones(target.size, bool), np.zeros(nontarget.size, bool)][order]
    weight = np.concatenate([w_target, w_non])[order]
    return rates_from_sorted(is_target, weight, last_of_tie)


def threshold_order(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decreasing-score order and, in that order, the last position of every run of equal
    scores (one operating point per distinct threshold)."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    return order, np.r_[sorted_scores[1:] != sorted_scores[:-1], True]


def rates_from_sorted(is_target: np.ndarray, weight: np.ndarray,
                      last_of_tie: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Miss and false-alarm rates from trials already in decreasing-score order.

    `weight` may be (N,) or (R, N): R weightings of the same sorted trials at once (the
    speaker bootstrap scores a thousand resamples this way with one sort).
    """
    hits = np.cumsum(np.where(is_target, weight, 0.0), axis=-1)[..., last_of_tie]
    false_alarms = np.cumsum(np.where(is_target, 0.0, weight), axis=-1)[..., last_of_tie]
    zero = np.zeros(hits.shape[:-1] + (1,))
    hits = np.concatenate([zero, hits], axis=-1)
    false_alarms = np.concatenate([zero, false_alarms], axis=-1)
    return 1.0 - hits / hits[..., -1:], false_alarms / false_alarms[..., -1:]


def eer_from_rates(p_miss: np.ndarray, p_fa: np.ndarray) -> np.ndarray:
    """EER in percent, linearly interpolated where miss and false alarm cross; works on
    (P,) rates or (R, P) stacks of them."""
    diff = p_miss - p_fa                      # non-increasing from +1 to -1 along the last axis
    idx = np.argmax(diff <= 0, axis=-1)[..., None]
    d_before = np.take_along_axis(diff, idx - 1, -1)
    d_at = np.take_along_axis(diff, idx, -1)
    m_before = np.take_along_axis(p_miss, idx - 1, -1)
    m_at = np.take_along_axis(p_miss, idx, -1)
    frac = d_before / (d_before - d_at)       # d_before > 0 >= d_at; frac = 1 when d_at = 0
    return 100.0 * (m_before + frac * (m_at - m_before))[..., 0]


def compute_eer(target: np.ndarray, nontarget: np.ndarray,
                target_weight: np.ndarray | None = None,
                nontarget_weight: np.ndarray | None = None) -> float:
    """Equal error rate in percent, linearly interpolated where miss and false alarm cross."""
    return float(eer_from_rates(*error_rates(target, nontarget, target_weight,
                                             nontarget_weight)))


def min_dcf_from_rates(p_miss: np.ndarray, p_fa: np.ndarray, p_target: float,
                       c_miss: float = 1.0, c_fa: float = 1.0) -> np.ndarray:
    """Minimum detection cost divided by the cost of the best trivial system (as Kaldi does),
    from (P,) rates or (R, P) stacks of them."""
    if not 0.0 < p_target < 1.0:
        raise FhvaeError(f"p_target must be in (0, 1), got {p_target}")
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return cost.min(axis=-1) / min(c_miss * p_target, c_fa * (1.0 - p_target))


def compute_min_dcf(target: np.ndarray, nontarget: np.ndarray, p_target: float = 0.01,
                    c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    """Minimum detection cost, divided by the cost of the best trivial system (as Kaldi does)."""
    return float(min_dcf_from_rates(*error_rates(target, nontarget), p_target, c_miss, c_fa))
