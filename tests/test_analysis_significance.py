"""Holm's step-down, percentile intervals and the paired bootstrap p-value that the EER and
WER tables share (fhvae/analysis/significance.py)."""

import numpy as np
import pytest

from fhvae.analysis.significance import (family_corrections, holm, paired_p_value,
                                         percentile_interval)


def test_holm_matches_the_textbook_step_down():
    # sorted: 0.005 x4 = 0.02; 0.01 x3 = 0.03; 0.03 x2 = 0.06; 0.04 x1 = 0.04 -> kept at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])          # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])                  # one test: unchanged


def test_percentile_interval_is_the_central_95_percent():
    values = np.random.default_rng(0).permutation(np.arange(1001.0))   # 0, 1, ..., 1000
    assert percentile_interval(values) == pytest.approx((25.0, 975.0))  # 2.5% and 97.5%
    assert percentile_interval(values, 0.9) == pytest.approx((50.0, 950.0))
    assert percentile_interval(values, 1 - 0.05 / 10) == pytest.approx((2.5, 997.5))
    normal = np.random.default_rng(1).normal(size=999)
    assert percentile_interval(normal) == pytest.approx(np.percentile(normal, [2.5, 97.5]))


def test_paired_p_value_counts_the_far_side_with_ties_split():
    # 2 of 9 below 0, 1 tie: far = 2.5, p = 2 * 3.5 / 10
    assert paired_p_value(np.array([-1.0, -2.0, 0.0, 1, 2, 3, 4, 5, 6])) == pytest.approx(0.7)
    assert paired_p_value(np.ones(999)) == pytest.approx(0.002)     # never 0
    assert paired_p_value(np.zeros(9)) == 1.0                        # capped at 1


def test_family_corrections_widen_every_interval_to_level_one_minus_alpha_over_m():
    diffs = [np.arange(1001.0), np.arange(1001.0) - 500]
    p_holm, intervals = family_corrections([0.01, 0.04], diffs)
    assert p_holm == holm([0.01, 0.04])
    assert intervals == [percentile_interval(d, 1 - 0.05 / 2) for d in diffs]
