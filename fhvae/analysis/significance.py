"""How far a bootstrapped difference can be trusted: intervals, p-values and the correction
for a table of many comparisons, shared by the EER (stage 5) and WER (ASR) bootstraps so
that both tables decide "excludes 0" by the same rules.

A table that makes m comparisons at once needs a correction, or about one in twenty of them
"excludes 0" by chance: `holm` adjusts the bootstrap p-values (Holm's step-down, which
controls the family-wise error rate without assuming independence) and
`family_corrections` also gives each comparison an interval at level 1 - alpha/m
(Bonferroni), the simultaneous interval whose exclusion of 0 agrees with the Bonferroni
test.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    tail = 100.0 * (1.0 - level) / 2.0
    return float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))


def paired_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap test of a zero difference: twice the share of resampled
    differences on the far side of 0 (ties split), with the +1 of a resampling test so that
    it is never 0."""
    far = min(np.sum(differences < 0), np.sum(differences > 0)) + 0.5 * np.sum(differences == 0)
    return min(1.0, 2.0 * (far + 1.0) / (differences.size + 1.0))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (reject where adjusted < alpha), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="mergesort")
    m = p.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order]) if m else p
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def family_corrections(p_values: Sequence[float], differences: Sequence[np.ndarray],
                   alpha: float = 0.05) -> tuple[list[float], list[tuple[float, float]]]:
    """Holm-adjusted p-values and intervals at level 1 - alpha/m of a family of m
    comparisons; `differences[k]` holds comparison k's resampled differences."""
    level = 1.0 - alpha / max(len(p_values), 1)
    return holm(p_values), [percentile_interval(d, level) for d in differences]
