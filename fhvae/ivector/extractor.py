"""Total-variability model (the i-vector extractor) with Kaldi's semantics, diagonal Σ.

Model: the frames aligned to Gaussian c are x ~ N(m_c + T_c w, Σ_c), w ~ N(0, I), one w per
utterance. Given Baum-Welch statistics (N_c, F_c centred on m_c) the posterior of w is
Gaussian with

  precision L = I + sum_c N_c T_c' Σ_c^{-1} T_c,   mean  L^{-1} sum_c T_c' Σ_c^{-1} F_c.

The i-vector we return is that posterior mean, under a zero-mean prior. Kaldi instead keeps
the means inside its projection (first column = mean / prior_offset, prior mean
[prior_offset, 0, ...]) and `ivector-extract` subtracts prior_offset from dimension 0 of the
posterior mean, which gives the same kind of vector: zero-mean prior, unit covariance. Our
`update_means` re-estimates m_c with T_c, as Kaldi's M-step re-estimates that column.

Training (EM, Kaldi's ivector-extractor-acc-stats / -est) is in fhvae/ivector/em.py.

`log_likelihood` is the exact log p(statistics) with w integrated out, the objective EM
cannot decrease (floors and min-count aside).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from fhvae.ivector.stats import BLOCK_UTTS, BaumWelchStats

LOG_2PI = np.log(2 * np.pi)


class IvectorExtractor:
    """means (C, D), projection T (C, D, R), diagonal variances (C, D)."""

    def __init__(self, means: np.ndarray, projection: np.ndarray, variances: np.ndarray):
        self.means = np.asarray(means, dtype=np.float64)
        self.projection = np.asarray(projection, dtype=np.float64)
        self.variances = np.asarray(variances, dtype=np.float64)
        # Derived once per model: Σ^{-1}T flattened over (c, d), and U_c = T_c'Σ_c^{-1}T_c.
        self._sigma_inv_t = (self.projection / self.variances[..., None]).reshape(
            -1, self.ivector_dim)
        self._u = np.einsum("cdr,cds->crs", self.projection,
                            self.projection / self.variances[..., None]).reshape(
            self.num_gauss, -1)

    @property
    def num_gauss(self) -> int:
        return self.projection.shape[0]

    @property
    def feat_dim(self) -> int:
        return self.projection.shape[1]

    @property
    def ivector_dim(self) -> int:
        return self.projection.shape[2]

    @classmethod
    def random_init(cls, means: np.ndarray, variances: np.ndarray, ivector_dim: int,
                    seed: int) -> "IvectorExtractor":
        """Kaldi's ivector-extractor-init: random Gaussian projection (scaled here by the
        standard deviations, so the start does not depend on the feature scale)."""
        rng = np.random.default_rng(seed)
        proj = rng.standard_normal(means.shape + (ivector_dim,)) * np.sqrt(variances)[..., None]
        return cls(means.copy(), proj, variances.copy())

    def posterior_terms(self, counts: np.ndarray, first: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
        """(precisions L (B, R, R), linear terms b (B, R)) of a block of utterances, from
        counts (B, C) and first order (B, C, D) centred on self.means."""
        dim = self.ivector_dim
        precision = (counts @ self._u).reshape(-1, dim, dim) + np.eye(dim)
        precision = 0.5 * (precision + precision.transpose(0, 2, 1))
        return precision, first.reshape(first.shape[0], -1) @ self._sigma_inv_t

    def posterior(self, counts: np.ndarray, first: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(posterior means (B, R), precisions (B, R, R)) of a block of utterances."""
        precision, linear = self.posterior_terms(counts, first)
        return np.linalg.solve(precision, linear[..., None])[..., 0], precision

    def blocks(self, stats: BaumWelchStats) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        """(rows, counts, first centred on self.means) in blocks of utterances."""
        for lo in range(0, len(stats.utts), BLOCK_UTTS):
            rows = slice(lo, lo + BLOCK_UTTS)
            yield rows, stats.counts[rows], stats.first_centred_on(self.means, rows)

    def moments(self, counts: np.ndarray, first: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, float]:
        """(E[w] (B, R), E[ww'] (B, R, R), the block's latent log-likelihood terms
        sum 1/2 b'L^{-1}b - 1/2 log|L|)."""
        precision, linear = self.posterior_terms(counts, first)
        covariance = np.linalg.inv(precision)
        mean = np.einsum("brs,bs->br", covariance, linear)
        logdet = 2 * np.log(np.diagonal(np.linalg.cholesky(precision), axis1=1, axis2=2)).sum()
        latent = 0.5 * np.einsum("br,br->", linear, mean) - 0.5 * logdet
        return mean, covariance + mean[:, :, None] * mean[:, None, :], float(latent)

    def extract(self, stats: BaumWelchStats) -> np.ndarray:
        """(U, R) i-vectors (posterior means) of every utterance of `stats`."""
        out = np.zeros((len(stats.utts), self.ivector_dim))
        for rows, counts, first in self.blocks(stats):
            out[rows] = self.posterior(counts, first)[0]
        return out

    def frame_terms(self, counts: np.ndarray, scatter: np.ndarray) -> float:
        """The part of log p(stats) that does not involve w, from the total counts N_c (C,)
        and the total diagonal second order S_c around self.means (C, D): Gaussian
        constants and scatter, -1/2 sum_c [N_c (D log 2pi + log|Σ_c|) + tr(Σ_c^{-1} S_c)]."""
        logdet = np.log(self.variances).sum(axis=1)
        weighted = (scatter / self.variances).sum(axis=1)
        return float(-0.5 * (counts @ (self.feat_dim * LOG_2PI + logdet) + weighted.sum()))

    def log_likelihood(self, stats: BaumWelchStats) -> float:
        """Total log p(stats | model), w integrated out (needs second-order stats)."""
        total = self.frame_terms(stats.counts.sum(axis=0), stats.second_centred_on(self.means))
        for _, counts, first in self.blocks(stats):
            total += self.moments(counts, first)[2]
        return total
