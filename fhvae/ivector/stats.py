"""Baum-Welch statistics of utterances under a UBM: what the total-variability model sees.

Per utterance u and Gaussian c, with frame posteriors g_tc from the UBM alignment:
  counts[u, c]   = sum_t g_tc                        (zeroth order, N_c)
  first[u, c]    = sum_t g_tc (x_t - centre_c)       (first order, centred; F_c)
and, summed over all utterances (only the covariance update needs it):
  second[c]      = sum_u sum_t g_tc (x_t - centre_c)^2   (diagonal second order)
The centre is the UBM means; a model whose means moved re-centres with `centred_on`.
Statistics are made and used a block of utterances at a time (`stats_blocks`), so training
and extraction stream a data dir instead of holding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from fhvae.ivector.ubm import DiagUbm

BLOCK_UTTS = 128      # utterances per block of statistics (the E-step's batch)


@dataclass
class BaumWelchStats:
    """Statistics of `utts` (in order): counts (U, C), first (U, C, D) centred on
    `centre` (C, D), and the optional total diagonal second order (C, D)."""

    utts: list[str]
    counts: np.ndarray
    first: np.ndarray
    centre: np.ndarray
    second: np.ndarray | None = None

    def first_centred_on(self, means: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        """First-order statistics of utterances `rows` centred on other means."""
        shift = means - self.centre
        return self.first[rows] - self.counts[rows, :, None] * shift

    def second_centred_on(self, means: np.ndarray) -> np.ndarray:
        """Total diagonal second order around `means` (C, D)."""
        if self.second is None:
            raise ValueError("these statistics were accumulated without second order")
        shift = means - self.centre
        total_first = self.first.sum(axis=0)
        total_count = self.counts.sum(axis=0)[:, None]
        return self.second - 2 * shift * total_first + total_count * shift ** 2


def utterance_stats(post: np.ndarray, feats: np.ndarray, centre: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts (C,), first (C, D), diagonal second (C, D)) of one utterance, from its
    (T, C) frame posteriors and (T, D) features."""
    counts = post.sum(axis=0)
    weighted = post.T @ feats
    first = weighted - counts[:, None] * centre
    second = post.T @ feats ** 2 - 2 * centre * weighted + counts[:, None] * centre ** 2
    return counts, first, second


def stats_blocks(ubm: DiagUbm, feats: Iterable[tuple[str, np.ndarray]],
                 min_post: float = 0.025, num_gselect: int = 20, second_order: bool = False,
                 block_size: int = BLOCK_UTTS) -> Iterator[BaumWelchStats]:
    """Statistics of (utt, (T, D) features) pairs aligned with the UBM's pruned posteriors
    (the UBM means are the centre), `block_size` utterances at a time: however many
    utterances stream through, one block is held (the E-step works on blocks)."""
    utts: list[str] = []
    counts: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    second = np.zeros_like(ubm.means) if second_order else None
    for utt, x in feats:
        x = np.asarray(x, dtype=np.float64)
        n, f, s = utterance_stats(ubm.posteriors(x, min_post, num_gselect), x, ubm.means)
        utts.append(utt)
        counts.append(n)
        firsts.append(f)
        if second is not None:
            second += s
        if len(utts) == block_size:
            yield BaumWelchStats(utts, np.array(counts), np.array(firsts), ubm.means, second)
            utts, counts, firsts = [], [], []
            second = None if second is None else np.zeros_like(second)
    if utts:
        yield BaumWelchStats(utts, np.array(counts), np.array(firsts), ubm.means, second)
