"""EM training of the total-variability model, split the way Kaldi splits it so that no
process holds a corpus: each job streams its utterances into fixed-size accumulators
(ivector-extractor-acc-stats), the jobs' accumulators are summed (-sum-accs) and one
M-step updates the model (-est).

E-step: E[w] and E[ww'] of every utterance under the current model. M-step: T_c (with m_c:
regressors r = [1, w]) solved from sum_u N_uc E[rr'] and sum_u F_uc E[r]', optionally Σ_c
(floored at var_floor_factor x the count-weighted average Σ, as Kaldi's
--variance-floor-factor); the optional minimum-divergence step re-estimates the prior
N(mu, C) from the posteriors and folds it back into (m, T) so the prior stays N(0, I)
(Kaldi does this every iteration). Gaussians with a total count below `min_count` keep
their parameters (Kaldi's --gaussian-min-count).

Everything the M-step reads is a sum over utterances, centred on the model's means before
it is added, so the accumulators' size depends on the model alone and summing them over
jobs gives the single-job sums up to float summation order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Iterable

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import atomic_path
from fhvae.io.npz import read_npz
from fhvae.ivector.extractor import IvectorExtractor
from fhvae.ivector.stats import BaumWelchStats

ACC_FORMAT = "fhvae-ivector-acc-1"


@dataclass(frozen=True)
class EmOptions:
    """What one EM iteration re-estimates (Kaldi ivector-extractor-est's options)."""

    update_means: bool = True
    update_variances: bool = True
    min_divergence: bool = True
    var_floor_factor: float = 0.1
    min_count: float = 100.0


@dataclass
class EmAccumulators:
    """Sums over utterances that the M-step needs, of a size fixed by the model."""

    rr: np.ndarray        # (C, P*P): sum_u N_uc E[r r'] (P = R, or R + 1 with the means)
    fr: np.ndarray        # (C*D, P): sum_u F_uc E[r]', F centred on the model's means
    w_sum: np.ndarray     # (R,): sum_u E[w]
    ww_sum: np.ndarray    # (R, R): sum_u E[w w']
    counts: np.ndarray    # (C,): sum_u N_uc
    second: np.ndarray    # (C, D): sum_u S_uc, the diagonal second order around the means
    num_utts: int = 0
    latent: float = 0.0   # sum_u of the latent terms of the log-likelihood
    seconds: float = 0.0  # time spent accumulating (summed over jobs)

    @classmethod
    def zeros(cls, model: IvectorExtractor, with_ones: bool) -> "EmAccumulators":
        dim, size = model.ivector_dim, model.ivector_dim + int(with_ones)
        return cls(np.zeros((model.num_gauss, size * size)),
                   np.zeros((model.num_gauss * model.feat_dim, size)), np.zeros(dim),
                   np.zeros((dim, dim)), np.zeros(model.num_gauss), np.zeros_like(model.means))

    @property
    def with_ones(self) -> bool:
        return self.fr.shape[1] != self.w_sum.shape[0]

    def add(self, model: IvectorExtractor, stats: BaumWelchStats) -> None:
        """E-step of a block of utterances (statistics with second order)."""
        self.counts += stats.counts.sum(axis=0)
        self.second += stats.second_centred_on(model.means)
        self.num_utts += len(stats.utts)
        for _, counts, first in model.blocks(stats):
            mean, second, latent = model.moments(counts, first)
            self.latent += latent
            self.w_sum += mean.sum(axis=0)
            self.ww_sum += second.sum(axis=0)
            if self.with_ones:
                ones = np.ones((mean.shape[0], 1))
                top = np.concatenate([ones, mean], axis=1)[:, None, :]
                second = np.concatenate([top, np.concatenate([mean[:, :, None], second], 2)],
                                        1)
                mean = np.concatenate([ones, mean], axis=1)
            self.rr += counts.T @ second.reshape(len(mean), -1)
            self.fr += first.reshape(len(mean), -1).T @ mean

    def __iadd__(self, other: "EmAccumulators") -> "EmAccumulators":
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if np.shape(mine) != np.shape(theirs):
                raise FhvaeError(f"accumulators of different models: {f.name} has shape "
                                 f"{np.shape(theirs)}, expected {np.shape(mine)}")
            setattr(self, f.name, mine + theirs)
        return self

    def save(self, path: str | os.PathLike) -> None:
        """One .npz, written atomically (a killed job leaves no accumulator file)."""
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, format=np.array(ACC_FORMAT),
                     **{f.name: np.asarray(getattr(self, f.name)) for f in fields(self)})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EmAccumulators":
        def read(npz) -> dict[str, np.ndarray]:
            if str(npz["format"]) != ACC_FORMAT:
                raise ValueError(f"format '{npz['format']}', expected '{ACC_FORMAT}'")
            return {f.name: npz[f.name] for f in fields(cls)}

        values = read_npz(path, "an i-vector accumulator file", "no such accumulator file", read)
        return cls(**{name: (value.item() if value.ndim == 0 else value)
                      for name, value in values.items()})


def accumulate(model: IvectorExtractor, blocks: Iterable[BaumWelchStats], with_ones: bool
               ) -> EmAccumulators:
    """E-step over blocks of statistics (a stream: one block is held at a time)."""
    acc = EmAccumulators.zeros(model, with_ones)
    for stats in blocks:
        acc.add(model, stats)
    return acc


def em_update(model: IvectorExtractor, acc: EmAccumulators, opts: EmOptions
              ) -> tuple[IvectorExtractor, float]:
    """The M-step from summed accumulators; returns the new model and log p(stats) under
    the *old* one."""
    if acc.with_ones != opts.update_means or acc.num_utts == 0:
        raise FhvaeError(f"accumulators of {acc.num_utts} utterances, made "
                         f"{'with' if acc.with_ones else 'without'} the means column: "
                         f"cannot update with update_means={opts.update_means}")
    loglik = model.frame_terms(acc.counts, acc.second) + acc.latent
    num_gauss, feat_dim = model.num_gauss, model.feat_dim
    size = model.ivector_dim + int(opts.update_means)
    rr = acc.rr.reshape(num_gauss, size, size)
    fr = acc.fr.reshape(num_gauss, feat_dim, size)
    solved = np.linalg.solve(rr, fr.transpose(0, 2, 1)).transpose(0, 2, 1)   # (C, D, P)
    update = acc.counts >= opts.min_count
    means, proj, variances = model.means.copy(), model.projection.copy(), model.variances
    if opts.update_variances:
        variances = update_variances(model, acc, fr, solved, update, opts.var_floor_factor)
    if opts.update_means:
        means[update] += solved[update, :, 0]
    proj[update] = solved[update, :, int(opts.update_means):]
    if opts.min_divergence:
        prior_mean = acc.w_sum / acc.num_utts
        prior_cov = acc.ww_sum / acc.num_utts - np.outer(prior_mean, prior_mean)
        means = means + proj @ prior_mean
        proj = proj @ np.linalg.cholesky(0.5 * (prior_cov + prior_cov.T))
    return IvectorExtractor(means, proj, variances), loglik


def em_iteration(model: IvectorExtractor, blocks: Iterable[BaumWelchStats], opts: EmOptions
                 ) -> tuple[IvectorExtractor, float]:
    """One EM iteration over blocks of statistics: E-step, then M-step."""
    return em_update(model, accumulate(model, blocks, opts.update_means), opts)


def update_variances(model: IvectorExtractor, acc: EmAccumulators, fr: np.ndarray,
                     solved: np.ndarray, update: np.ndarray, floor_factor: float
                     ) -> np.ndarray:
    """Σ_c = diag(S_c - M_c Y_c') / N_c around the old means, with M_c the solved
    regression (means column included) and Y_c = fr; floored at floor_factor x the
    count-weighted average variance."""
    counts = acc.counts
    explained = np.einsum("cdp,cdp->cd", solved, fr)
    raw = (acc.second - explained) / np.maximum(counts, 1e-10)[:, None]
    average = (counts[update] @ raw[update]) / max(counts[update].sum(), 1e-10)
    variances = model.variances.copy()
    variances[update] = np.maximum(raw[update], floor_factor * average)
    return variances
