"""Weighted EER and the speaker bootstrap of EER intervals and paired comparisons."""

import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.evaluate.bootstrap import bootstrap_eers, compare, percentile_interval
from fhvae.evaluate.metrics import compute_eer


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
