"""Weighted EER and the speaker bootstrap of EER intervals and paired comparisons."""

import numpy as np
import pytest

from fhvae.analysis.significance import percentile_interval
from fhvae.errors import FhvaeError
from fhvae.evaluate.bootstrap import (bootstrap_eers, bootstrap_metrics, compare, correct,
                                      trial_weights)
from fhvae.evaluate.metrics import (compute_eer, compute_min_dcf, eer_from_rates,
                                    rates_from_sorted, threshold_order)


def test_weighted_eer_equals_eer_of_repeated_trials():
    rng = np.random.default_rng(0)
    target, nontarget = rng.normal(1, 1, 40), rng.normal(-1, 1, 60)
    w_t, w_n = rng.integers(0, 4, 40), rng.integers(0, 4, 60)
    want = compute_eer(np.repeat(target, w_t), np.repeat(nontarget, w_n))
    assert compute_eer(target, nontarget, w_t, w_n) == pytest.approx(want, abs=1e-12)
    assert compute_eer(target, nontarget, np.ones(40), np.ones(60)) == \
        pytest.approx(compute_eer(target, nontarget), abs=1e-12)
    with pytest.raises(FhvaeError, match="positive sum"):
        compute_eer(target, nontarget, np.zeros(40), w_n)


def speaker_trials(num_spk: int, seed: int, utts: int = 4):
    """All pairs of `utts` utterances of `num_spk` speakers; scores = per-speaker quality +
    noise, so how hard the trials are depends on which speakers are in the list."""
    rng = np.random.default_rng(seed)
    spk = np.repeat(np.arange(num_spk), utts)
    quality = rng.uniform(0.0, 3.0, num_spk)
    a, b = np.triu_indices(spk.size, k=1)
    is_target = spk[a] == spk[b]
    scores = np.where(is_target, quality[spk[a]], 0.0) + rng.normal(0, 1, a.size)
    return scores, is_target, [f"s{i}" for i in spk[a]], [f"s{i}" for i in spk[b]]


def test_bootstrap_interval_narrows_with_more_speakers_and_covers_the_eer():
    widths = []
    for num_spk in (10, 80):
        scores, is_target, ea, eb = speaker_trials(num_spk, seed=1)
        eers = bootstrap_eers(scores[None], is_target, ea, eb, num_resamples=200, seed=0)
        low, high = percentile_interval(eers[:, 0])
        assert eers.shape == (200, 1)
        assert low < compute_eer(scores[is_target], scores[~is_target]) < high
        widths.append(high - low)
    assert widths[0] > 1.5 * widths[1] > 0


def test_bootstrap_is_seeded_and_separated_scores_stay_at_zero():
    scores, is_target, ea, eb = speaker_trials(12, seed=2)
    perfect = np.where(is_target, 10.0, 0.0) + 0.01 * scores
    both = np.stack([scores, perfect])
    first = bootstrap_eers(both, is_target, ea, eb, 50, seed=3)
    assert np.array_equal(first, bootstrap_eers(both, is_target, ea, eb, 50, seed=3))
    assert not np.array_equal(first, bootstrap_eers(both, is_target, ea, eb, 50, seed=4))
    assert np.all(first[:, 1] == 0.0) and np.all(first[:, 0] > 0.0)
    cmp = compare(["noisy", "perfect"], [compute_eer(scores[is_target], scores[~is_target]), 0.0],
                  first, "perfect", "noisy")
    assert cmp.share_a_lower == 1.0 and cmp.difference < 0 and cmp.interval[1] < 0


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(FhvaeError, match="3 scores, 2 labels"):
        bootstrap_eers(np.zeros((1, 3)), np.array([True, False]), ["a", "b"], ["a", "b"], 5, 0)


def brute_force_resample(scores, is_target, spk_a, spk_b, drawn):
    """Target and nontarget scores of the trial list a resampled speaker set really has:
    every draw of a speaker is a separate copy; copies of one speaker keep its target trials,
    every pair of copies of two different speakers keeps their nontarget trials."""
    target, nontarget = [], []
    for score, tgt, a, b in zip(scores, is_target, spk_a, spk_b):
        if tgt:
            target += [score] * drawn[a]                       # one per copy of a
        else:
            nontarget += [score] * (drawn[a] * drawn[b])       # one per pair of copies
    return np.array(target), np.array(nontarget)


def test_bootstrap_weights_equal_a_brute_force_resampled_trial_list():
    scores, is_target, ea, eb = speaker_trials(9, seed=5, utts=3)
    codes = {s: i for i, s in enumerate(sorted(set(ea) | set(eb)))}
    spk_a = np.array([codes[s] for s in ea])
    spk_b = np.array([codes[s] for s in eb])
    eers, dcfs = bootstrap_metrics(scores[None], is_target, ea, eb, num_resamples=20, seed=11,
                                   p_target=0.05)
    assert np.array_equal(eers, bootstrap_eers(scores[None], is_target, ea, eb, 20, seed=11))
    rng = np.random.default_rng(11)               # the same draws bootstrap_eers makes
    for r in range(20):
        drawn = np.bincount(rng.integers(0, 9, 9), minlength=9)
        target, nontarget = brute_force_resample(scores, is_target, spk_a, spk_b, drawn)
        assert eers[r, 0] == pytest.approx(compute_eer(target, nontarget), abs=1e-9)
        assert dcfs[r, 0] == pytest.approx(compute_min_dcf(target, nontarget, 0.05), abs=1e-9)
        # A target trial counts once per copy of its speaker, not once per pair of copies.
        assert np.array_equal(trial_weights(drawn.astype(float), spk_a, spk_b, is_target),
                              np.where(is_target, drawn[spk_a], drawn[spk_a] * drawn[spk_b]))


def test_vectorised_eer_equals_eer_of_each_weighting():
    rng = np.random.default_rng(3)
    target, nontarget = rng.normal(1, 1, 30).round(1), rng.normal(-1, 1, 50).round(1)  # ties
    scores = np.r_[target, nontarget]
    is_target = np.r_[np.ones(30, bool), np.zeros(50, bool)]
    weights = rng.integers(0, 3, (7, 80)).astype(float)
    weights[:, 0] = weights[:, 30] = 1.0
    order, last = threshold_order(scores)
    got = eer_from_rates(*rates_from_sorted(is_target[order], weights[:, order], last))
    want = [compute_eer(target, nontarget, w[:30], w[30:]) for w in weights]
    assert got == pytest.approx(want, abs=1e-12)


def test_comparison_p_value_and_correction_decide_the_verdict():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (999, 2))
    strong = noise + [5.0, 0.0]            # a worse in every resample: p = 2 * 1/1000
    c = compare(["a", "b"], [5.0, 0.0], strong, "a", "b")
    assert np.all(strong[:, 0] > strong[:, 1]) and c.p_value == pytest.approx(0.002)
    assert c.verdict == "b better"
    weak = noise + [3.2, 0.0]              # a worse in most resamples, not all
    w = compare(["a", "b"], [3.2, 0.0], weak, "a", "b")
    far = np.sum(weak[:, 0] < weak[:, 1])
    assert 0 < far and w.p_value == pytest.approx(2 * (far + 1) / 1000) and w.p_value < 0.05
    null = compare(["a", "b"], [0.1, 0.0], noise, "a", "b")
    assert null.p_value > 0.2 and null.verdict == "no difference shown"
    # in a family of 20 (19 null comparisons), the strong one survives Holm (0.002 x 20 =
    # 0.04), the weak one alone does not; corrected intervals are wider than the 95% ones
    for extra, diff, survives in ((c, strong[:, 0] - strong[:, 1], True),
                                  (w, weak[:, 0] - weak[:, 1], False)):
        family = [extra] + [compare(["a", "b"], [0.1, 0.0], noise, "a", "b") for _ in range(19)]
        correct(family, [diff] + [noise[:, 0] - noise[:, 1]] * 19)
        assert family[0].p_holm == pytest.approx(min(1.0, 20 * extra.p_value))
        assert (family[0].verdict == "b better") is survives
        low, high = family[0].corrected_interval
        assert low < family[0].interval[0] and high > family[0].interval[1]
        assert (low, high) == pytest.approx(percentile_interval(diff, 1 - 0.05 / 20))


# ----------------------------------------------------------------- the 95% level
def _population_eer(max_quality: float = 3.0) -> float:
    """EER (%) of the infinite speaker population of `speaker_trials`: target scores
    N(q, 1) with q ~ U(0, max_quality) per speaker, nontarget scores N(0, 1); the threshold
    where P(miss) = P(false alarm), by bisection on the exact mixture CDF (midpoint rule)."""
    from scipy.stats import norm
    q = (np.arange(20_000) + 0.5) / 20_000 * max_quality
    low, high = -5.0, 5.0
    for _ in range(60):
        mid = (low + high) / 2
        if norm.cdf(mid - q).mean() < norm.sf(mid):
            low = mid
        else:
            high = mid
    return 100.0 * float(norm.sf(low))


def test_bootstrap_95_percent_interval_covers_a_known_eer_95_percent_of_the_time():
    """100 independent test panels of 20 speakers from a population whose EER is known:
    the speaker-bootstrap 95% interval of each panel's EER holds the population EER in
    about 95 of them (binomial sd ~2). Intervals that ignore how trials cluster by speaker
    would be far too narrow; target weights c_a^2 (instead of c_a) too wide."""
    true = _population_eer()
    assert true == pytest.approx(26.33, abs=0.01)
    hits = 0
    for panel in range(100):
        scores, is_target, ea, eb = speaker_trials(20, seed=1000 + panel)
        eers = bootstrap_eers(scores[None], is_target, ea, eb, num_resamples=200, seed=panel)
        low, high = percentile_interval(eers[:, 0])
        hits += low <= true <= high
    assert 90 <= hits <= 98, hits
