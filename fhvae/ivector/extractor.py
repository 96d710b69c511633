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

Training is EM (Kaldi's ivector-extractor-acc-stats / -est): the E-step gives E[w] and
E[ww'] of every utterance; the M-step solves T_c (with m_c: regressors [1, w]) from
sum_u N_uc E[rr'] and sum_u F_uc E[r]', optionally Σ_c (floored at var_floor_factor x the
count-weighted average Σ, as Kaldi's --variance-floor-factor); the optional minimum-divergence
step re-estimates the prior N(mu, C) from the posteriors and folds it back into (m, T) so the
prior stays N(0, I) (Kaldi does this every iteration). Gaussians with a total count below
`min_count` keep their parameters (Kaldi's --gaussian-min-count).

`log_likelihood` is the exact log p(statistics) with w integrated out, the objective EM
cannot decrease (floors and min-count aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from fhvae.ivector.stats import BaumWelchStats

_BATCH = 128          # utterances per E-step block
LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class EmOptions:
    """What one EM iteration re-estimates (Kaldi ivector-extractor-est's options)."""

    update_means: bool = True
    update_variances: bool = True
    min_divergence: bool = True
    var_floor_factor: float = 0.1
    min_count: float = 100.0


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
        for lo in range(0, len(stats.utts), _BATCH):
            rows = slice(lo, lo + _BATCH)
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

    def frame_terms(self, stats: BaumWelchStats) -> float:
        """The part of log p(stats) that does not involve w: Gaussian constants and the
        centred second order, -1/2 sum_c [N_c (D log 2pi + log|Σ_c|) + tr(Σ_c^{-1} S_c)]."""
        counts = stats.counts.sum(axis=0)
        logdet = np.log(self.variances).sum(axis=1)
        scatter = (stats.second_centred_on(self.means) / self.variances).sum(axis=1)
        return float(-0.5 * (counts @ (self.feat_dim * LOG_2PI + logdet) + scatter.sum()))

    def log_likelihood(self, stats: BaumWelchStats) -> float:
        """Total log p(stats | model), w integrated out (needs second-order stats)."""
        total = self.frame_terms(stats)
        for _, counts, first in self.blocks(stats):
            total += self.moments(counts, first)[2]
        return total


@dataclass
class _Accumulators:
    """Sums over utterances that the M-step needs (regressors r = [1, w] or w)."""

    rr: np.ndarray        # (C, P*P): sum_u N_uc E[r r']
    fr: np.ndarray        # (C*D, P): sum_u F_uc E[r]'
    w_sum: np.ndarray     # (R,): sum_u E[w]
    ww_sum: np.ndarray    # (R, R): sum_u E[w w']
    latent: float = 0.0   # sum_u latent terms of the log-likelihood


def accumulate(model: IvectorExtractor, stats: BaumWelchStats, with_ones: bool
               ) -> _Accumulators:
    """E-step over every utterance."""
    dim = model.ivector_dim
    size = dim + int(with_ones)
    acc = _Accumulators(np.zeros((model.num_gauss, size * size)),
                        np.zeros((model.num_gauss * model.feat_dim, size)), np.zeros(dim),
                        np.zeros((dim, dim)))
    for _, counts, first in model.blocks(stats):
        mean, second, latent = model.moments(counts, first)
        acc.latent += latent
        acc.w_sum += mean.sum(axis=0)
        acc.ww_sum += second.sum(axis=0)
        if with_ones:
            ones = np.ones((mean.shape[0], 1))
            top = np.concatenate([ones, mean], axis=1)[:, None, :]
            second = np.concatenate([top, np.concatenate([mean[:, :, None], second], 2)], 1)
            mean = np.concatenate([ones, mean], axis=1)
        acc.rr += counts.T @ second.reshape(len(mean), -1)
        acc.fr += first.reshape(len(mean), -1).T @ mean
    return acc


def em_iteration(model: IvectorExtractor, stats: BaumWelchStats, opts: EmOptions
                 ) -> tuple[IvectorExtractor, float]:
    """One EM iteration; returns the new model and log p(stats) under the *old* one
    (nan when the statistics carry no second order)."""
    acc = accumulate(model, stats, opts.update_means)
    loglik = (model.frame_terms(stats) + acc.latent if stats.second is not None
              else float("nan"))
    num_gauss, feat_dim, dim = model.num_gauss, model.feat_dim, model.ivector_dim
    size = dim + int(opts.update_means)
    rr = acc.rr.reshape(num_gauss, size, size)
    fr = acc.fr.reshape(num_gauss, feat_dim, size)
    solved = np.linalg.solve(rr, fr.transpose(0, 2, 1)).transpose(0, 2, 1)   # (C, D, P)
    update = stats.counts.sum(axis=0) >= opts.min_count
    means, proj, variances = model.means.copy(), model.projection.copy(), model.variances
    if opts.update_variances:
        variances = update_variances(model, stats, fr, solved, update, opts.var_floor_factor)
    if opts.update_means:
        means[update] += solved[update, :, 0]
    proj[update] = solved[update, :, int(opts.update_means):]
    if opts.min_divergence:
        num_utts = len(stats.utts)
        prior_mean = acc.w_sum / num_utts
        prior_cov = acc.ww_sum / num_utts - np.outer(prior_mean, prior_mean)
        means = means + proj @ prior_mean
        proj = proj @ np.linalg.cholesky(0.5 * (prior_cov + prior_cov.T))
    return IvectorExtractor(means, proj, variances), loglik


def update_variances(model: IvectorExtractor, stats: BaumWelchStats, fr: np.ndarray,
                     solved: np.ndarray, update: np.ndarray, floor_factor: float
                     ) -> np.ndarray:
    """Σ_c = diag(S_c - M_c Y_c') / N_c around the old means, with M_c the solved
    regression (means column included) and Y_c = fr; floored at floor_factor x the
    count-weighted average variance."""
    counts = stats.counts.sum(axis=0)
    explained = np.einsum("cdp,cdp->cd", solved, fr)
    raw = (stats.second_centred_on(model.means) - explained) / np.maximum(counts, 1e-10)[:, None]
    average = (counts[update] @ raw[update]) / max(counts[update].sum(), 1e-10)
    variances = model.variances.copy()
    variances[update] = np.maximum(raw[update], floor_factor * average)
    return variances
