"""Diagonal-covariance UBM: training by EM and pruned frame posteriors.

Kaldi's sid recipes train a diagonal GMM on subsampled frames (train_diag_ubm.sh
--subsample 5), then align every frame with Gaussian selection (gmm-gselect --n 20) and
posteriors pruned at --min-post 0.025 and renormalised. We keep the diagonal model for the
alignment *and* the extractor's covariances (no full-covariance UBM step): on our
utterance counts a full-covariance UBM is mostly noise and several times slower.

Our own EM instead of sklearn's GaussianMixture because the variance floor here is per
dimension (a fraction of that dimension's data variance, HTK's `-v` style, scale-free, so the
same setting works for FBank, MFCC and their deltas); sklearn only adds one absolute
constant to every variance. Means start at k-means++ seeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp

from fhvae.errors import FhvaeError

log = logging.getLogger(__name__)

_CHUNK = 20000       # frames per block of the (frames x Gaussians) matrices


@dataclass
class DiagUbm:
    """weights (C,), means (C, D), variances (C, D)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def log_likelihoods(self, x: np.ndarray) -> np.ndarray:
        """(N, C) log(w_c N(x_n; m_c, diag v_c)), by two matrix products."""
        x = np.asarray(x, dtype=np.float64)
        inv = 1.0 / self.variances
        const = (np.log(self.weights) - 0.5 * (self.dim * np.log(2 * np.pi)
                                               + np.log(self.variances).sum(1)
                                               + (self.means ** 2 * inv).sum(1)))
        return const + x @ (self.means * inv).T - 0.5 * (x ** 2) @ inv.T

    def posteriors(self, x: np.ndarray, min_post: float = 0.025,
                   num_gselect: int = 20) -> np.ndarray:
        """(N, C) dense frame posteriors, Kaldi's pruning: among the num_gselect best
        Gaussians (0: all), drop posteriors below min_post (always keeping the best one)
        and renormalise each frame to 1."""
        out = np.empty((x.shape[0], self.num_gauss))
        for lo in range(0, x.shape[0], _CHUNK):
            out[lo:lo + _CHUNK] = prune_posteriors(self.log_likelihoods(x[lo:lo + _CHUNK]),
                                                   min_post, num_gselect)
        return out


def prune_posteriors(loglik: np.ndarray, min_post: float, num_gselect: int) -> np.ndarray:
    """Posteriors of one block of (N, C) weighted log-likelihoods, pruned as above."""
    loglik = np.array(loglik, dtype=np.float64)
    num_gauss = loglik.shape[1]
    if 0 < num_gselect < num_gauss:
        drop = np.argpartition(-loglik, num_gselect - 1, axis=1)[:, num_gselect:]
        np.put_along_axis(loglik, drop, -np.inf, axis=1)
    post = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    best = post.argmax(axis=1)
    keep = post >= min_post
    keep[np.arange(len(best)), best] = True
    post = np.where(keep, post, 0.0)
    return post / post.sum(axis=1, keepdims=True)


def em_step(ubm: DiagUbm, frames: np.ndarray, floor: np.ndarray
            ) -> tuple[DiagUbm, float]:
    """One EM iteration over `frames`; returns the new model and the average frame
    log-likelihood under the old one (EM makes it non-decreasing)."""
    dim = frames.shape[1]
    count = np.zeros(ubm.num_gauss)
    first = np.zeros((ubm.num_gauss, dim))
    second = np.zeros((ubm.num_gauss, dim))
    total = 0.0
    for lo in range(0, frames.shape[0], _CHUNK):
        x = frames[lo:lo + _CHUNK]
        loglik = ubm.log_likelihoods(x)
        norm = logsumexp(loglik, axis=1, keepdims=True)
        total += float(norm.sum())
        post = np.exp(loglik - norm)
        count += post.sum(0)
        first += post.T @ x
        second += post.T @ (x ** 2)
    safe = np.maximum(count, 1e-10)[:, None]
    means = first / safe
    variances = np.maximum(second / safe - means ** 2, floor)
    return DiagUbm(count / count.sum(), means, variances), total / frames.shape[0]


def reseed_small(ubm: DiagUbm, min_weight: float, rng: np.random.Generator) -> int:
    """Give each Gaussian below min_weight half of the heaviest one (means pushed apart by
    0.2 standard deviations), keeping the model size; returns how many were reseeded."""
    small = np.flatnonzero(ubm.weights < min_weight)
    for c in small:
        big = int(ubm.weights.argmax())
        step = 0.2 * np.sqrt(ubm.variances[big]) * rng.choice([-1.0, 1.0], ubm.dim)
        ubm.means[c], ubm.means[big] = ubm.means[big] + step, ubm.means[big] - step
        ubm.variances[c] = ubm.variances[big]
        ubm.weights[c] = ubm.weights[big] = ubm.weights[big] / 2
    return len(small)


def train_ubm(frames: np.ndarray, num_gauss: int, num_iters: int = 10, seed: int = 777,
              var_floor: float = 0.01, min_weight: float = 1e-4, init_frames: int = 20000,
              progress: Callable[[int, float], None] | None = None) -> DiagUbm:
    """Diagonal UBM of (N, D) frames: k-means++ means, global variances, uniform weights,
    then `num_iters` EM passes; variances floored at var_floor x the data variance."""
    # imported here: the accumulation and update jobs (processes started every EM
    # iteration) load this module but not sklearn, ~0.8 s each
    from sklearn.cluster import kmeans_plusplus
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[0] < num_gauss:
        raise FhvaeError(f"UBM training: {frames.shape[0]} frames for {num_gauss} Gaussians; "
                         f"need at least as many frames as Gaussians")
    rng = np.random.default_rng(seed)
    global_var = frames.var(axis=0)
    floor = var_floor * np.maximum(global_var, 1e-10)
    pick = rng.choice(frames.shape[0], min(init_frames, frames.shape[0]), replace=False)
    means, _ = kmeans_plusplus(frames[np.sort(pick)], num_gauss,
                               random_state=int(rng.integers(2**31)))
    ubm = DiagUbm(np.full(num_gauss, 1.0 / num_gauss), means,
                  np.tile(np.maximum(global_var, floor), (num_gauss, 1)))
    for it in range(num_iters):
        ubm, avg_loglik = em_step(ubm, frames, floor)
        reseeded = reseed_small(ubm, min_weight, rng)
        log.info("UBM iteration %d: average frame log-likelihood %.4f over %d frames%s", it,
                 avg_loglik, frames.shape[0], f" ({reseeded} Gaussians reseeded)"
                 if reseeded else "")
        if progress is not None:
            progress(it, avg_loglik)
    return ubm
