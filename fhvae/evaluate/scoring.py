"""Verification back-ends for utterance embeddings (s-vectors or the FBank-mean baseline).

- `cosine`: cosine similarity after subtracting the training-set mean embedding.
- `lda-wccn`: training-set centring, LDA, then within-class covariance normalisation
  (whitening of the pooled within-speaker covariance) and cosine: a within-speaker-
  compensated cosine that needs no generative model.
- `lda-plda`: training-set centring, LDA (scikit-learn) on speaker labels, length
  normalisation, then a two-covariance PLDA model (between-speaker covariance B,
  within-speaker covariance W, both estimated by moments) scored with the exact
  same-vs-different-speaker log-likelihood ratio for one enrolment utterance.

Domain adaptation with unlabelled data (`adapt_backend`), Kaldi's answer to a domain
shift: every back-end centres with the adaptation set's global mean instead of the
training mean (`ivector-subtract-global-mean` with the in-domain mean.vec), and the PLDA
model can in addition be adapted as `ivector-adapt-plda` does (`adapt_plda_covariances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import scipy.linalg
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from fhvae.errors import FhvaeError
from fhvae.evaluate.trials import Trial

# Added to both PLDA covariances so that a rank-deficient estimate stays invertible.
COV_FLOOR = 1e-6


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (zero vectors score 0)."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("nd,nd->n", a, b) / np.maximum(norms, 1e-12)


def quadratic_form(x: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """x_n^T M x_n for every row n, through one BLAS product (einsum's three-operand loop
    is ~20x slower on 10^5 trials)."""
    return np.sum((x @ matrix) * x, axis=1)


def length_normalise(x: np.ndarray) -> np.ndarray:
    """Scale every row to norm sqrt(D), the usual pre-processing before a Gaussian PLDA."""
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x * (np.sqrt(x.shape[1]) / norms)


class CosineBackend:
    """Cosine scoring of mean-subtracted embeddings; `fit` only learns the mean."""

    name = "cosine"

    def fit(self, train: np.ndarray, speakers: Sequence[str]) -> "CosineBackend":
        self.mean = np.asarray(train, dtype=np.float64).mean(axis=0)
        return self

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return cosine(enroll - self.mean, test - self.mean)


def fit_lda(train: np.ndarray, speakers: Sequence[str], lda_dim: int | None,
            ) -> tuple[np.ndarray, LinearDiscriminantAnalysis, np.ndarray]:
    """Training mean, fitted LDA (at most #speakers - 1 output dims) and speaker indices."""
    labels = np.asarray(speakers)
    classes, label_idx = np.unique(labels, return_inverse=True)
    if classes.size < 2 or classes.size == train.shape[0]:
        raise FhvaeError(f"LDA needs at least 2 training speakers with 2+ utterances "
                         f"(got {classes.size} speakers, {train.shape[0]} utterances)")
    max_dim = min(classes.size - 1, train.shape[1])
    dim = max_dim if lda_dim is None else min(lda_dim, max_dim)
    mean = train.mean(axis=0)
    return mean, LinearDiscriminantAnalysis(n_components=dim).fit(train - mean, labels), label_idx


def within_class_scatter(x: np.ndarray, label_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-speaker means (S, D) and the pooled within-speaker covariance (D, D)."""
    num_spk = int(label_idx.max()) + 1
    spk_means = np.stack([x[label_idx == k].mean(axis=0) for k in range(num_spk)])
    resid = x - spk_means[label_idx]
    return spk_means, resid.T @ resid / (x.shape[0] - num_spk)


def between_speaker_covariance(spk_means: np.ndarray, within: np.ndarray,
                               counts: np.ndarray) -> np.ndarray:
    """Moment estimate of the between-speaker covariance B of a two-covariance model.

    A speaker's mean of n utterances scatters with B + W/n around the global mean, so the
    covariance of the means overestimates B by the average W/n (11% with 4 utterances per
    speaker); that term is removed and the result projected back onto the positive
    semi-definite matrices.
    """
    dim = within.shape[0]
    scatter = np.cov(spk_means, rowvar=False, bias=True).reshape(dim, dim)
    between = scatter - within * np.mean(1.0 / counts)
    values, vectors = np.linalg.eigh((between + between.T) / 2)
    return (vectors * np.maximum(values, 0.0)) @ vectors.T


class LdaWccnBackend:
    """LDA, within-class covariance normalisation, cosine (see the module docstring)."""

    name = "lda-wccn"

    def __init__(self, lda_dim: int | None = None):
        self.lda_dim = lda_dim

    def fit(self, train: np.ndarray, speakers: Sequence[str]) -> "LdaWccnBackend":
        train = np.asarray(train, dtype=np.float64)
        self.mean, self.lda, label_idx = fit_lda(train, speakers, self.lda_dim)
        projected = self.lda.transform(train - self.mean)
        _, within = within_class_scatter(projected, label_idx)
        # x -> L^T x with L L^T = W^-1 makes the within-speaker covariance the identity.
        within += np.eye(within.shape[0]) * COV_FLOOR
        self.wccn = np.linalg.cholesky(np.linalg.inv(within))
        return self

    def _project(self, x: np.ndarray) -> np.ndarray:
        return self.lda.transform(x - self.mean) @ self.wccn

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return cosine(self._project(enroll), self._project(test))


class LdaPldaBackend:
    """LDA + length normalisation + two-covariance PLDA (see the module docstring)."""

    name = "lda-plda"

    def __init__(self, lda_dim: int | None = None):
        self.lda_dim = lda_dim

    def _project(self, x: np.ndarray) -> np.ndarray:
        """Centre, LDA, length-normalise, re-centre: the space the PLDA model lives in."""
        return self._lda_normalised(x) - self.post_mean

    def _lda_normalised(self, x: np.ndarray) -> np.ndarray:
        return length_normalise(self.lda.transform(x - self.mean))

    def fit(self, train: np.ndarray, speakers: Sequence[str]) -> "LdaPldaBackend":
        train = np.asarray(train, dtype=np.float64)
        self.mean, self.lda, label_idx = fit_lda(train, speakers, self.lda_dim)
        normalised = self._lda_normalised(train)
        self.post_mean = normalised.mean(axis=0)
        spk_means, within = within_class_scatter(normalised - self.post_mean, label_idx)
        between = between_speaker_covariance(spk_means, within, np.bincount(label_idx))
        self._set_covariances(within, between)
        return self

    def _set_covariances(self, within: np.ndarray, between: np.ndarray) -> None:
        """Keep W and B, and the inverses and log-determinants that scoring needs (the
        total covariance floored, so that a rank-deficient estimate stays invertible)."""
        self.within, self.between = within, between
        total = within + between + np.eye(within.shape[0]) * COV_FLOOR
        joint = np.block([[total, between], [between, total]])
        self.total_inv = np.linalg.inv(total)
        self.joint_inv = np.linalg.inv(joint)
        self.offset = np.linalg.slogdet(total)[1] - 0.5 * np.linalg.slogdet(joint)[1]

    def adapt_plda(self, adapt: np.ndarray, config: "PldaAdaptConfig") -> None:
        """Unsupervised PLDA adaptation to `adapt` (raw embeddings, already centred with
        their own mean by `adapt_backend`), in the space the PLDA model lives in."""
        normalised = self._lda_normalised(np.asarray(adapt, dtype=np.float64))
        self.post_mean, within, between = adapt_plda_covariances(
            self.post_mean, self.within, self.between, normalised, config)
        self._set_covariances(within, between)

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """log p(e, t | same speaker) - log p(e | .) - log p(t | .), per row pair."""
        e, t = self._project(np.asarray(enroll, np.float64)), self._project(np.asarray(test, np.float64))
        both = np.concatenate([e, t], axis=1)
        return 0.5 * (quadratic_form(e, self.total_inv) + quadratic_form(t, self.total_inv)
                      - quadratic_form(both, self.joint_inv)) + self.offset


Backend = CosineBackend | LdaWccnBackend | LdaPldaBackend


@dataclass(frozen=True)
class PldaAdaptConfig:
    """Kaldi's `ivector-adapt-plda` options, at the values its sre16/v2 recipe passes (the
    binary's own defaults are 0.3 and 0.7: more of the excess variance to B)."""

    within_covar_scale: float = 0.75
    between_covar_scale: float = 0.25
    mean_diff_scale: float = 1.0


def adapt_plda_covariances(mean: np.ndarray, within: np.ndarray, between: np.ndarray,
                           adapt: np.ndarray, config: PldaAdaptConfig
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, W, B) of a two-covariance PLDA model adapted to unlabelled vectors `adapt`,
    as Kaldi's PldaUnsupervisedAdaptor does.

    Why: a shifted domain spreads the vectors more than the training data did, in directions
    the model calls improbable. The adaptation data's covariance (plus mean_diff_scale times
    the outer product of its mean's shift) is compared with the model's total covariance
    T = W + B: in every direction v where it is s > 1 times larger (generalised eigenvectors,
    v^T T v = 1), the excess s - 1 is shared out, within_covar_scale of it to W and
    between_covar_scale to B. Directions with less variance stay as they were. The mean
    becomes the adaptation data's mean.
    """
    if min(config.mean_diff_scale, config.within_covar_scale, config.between_covar_scale) < 0:
        raise FhvaeError("PLDA adaptation: the covariance and mean-difference scales must be "
                         ">= 0")
    adapt = np.asarray(adapt, dtype=np.float64)
    adapt_mean = adapt.mean(axis=0)
    shift = adapt_mean - mean
    variance = (np.cov(adapt, rowvar=False, bias=True).reshape(within.shape)
                + config.mean_diff_scale * np.outer(shift, shift))
    total = within + between
    excess, vectors = scipy.linalg.eigh(variance, total)   # V^T T V = I, V^T S V = diag(s)
    back = total @ vectors                                  # V^-T: back to the input space
    gain = np.maximum(excess - 1.0, 0.0)

    def grow(covariance: np.ndarray, scale: float) -> np.ndarray:
        return covariance + (back * (scale * gain)) @ back.T

    return (adapt_mean, grow(within, config.within_covar_scale),
            grow(between, config.between_covar_scale))


# The back-ends adapted by default: on dev_unseen, mean + PLDA adaptation lowered the LDA +
# PLDA EERs on all and on condition-matched trials, while the mean alone raised the cosine
# and LDA + WCCN EERs on all trials (local/tuning/adaptation_dev.md).
DEFAULT_ADAPTED = ("lda-plda",)


@dataclass(frozen=True)
class Adaptation:
    """Back-end adaptation to an unlabelled set `name` (a data dir, for the reports): in
    each back-end of `backends`, its mean replaces the training mean; with `plda`, the PLDA
    model is adapted too. The other back-ends stay as fitted."""

    name: str
    plda: bool = True
    config: PldaAdaptConfig = PldaAdaptConfig()
    backends: tuple[str, ...] = DEFAULT_ADAPTED

    def describe(self, backend: str) -> str | None:
        """What was adapted for one back-end, for result tables (None: not adapted)."""
        if backend not in self.backends:
            return None
        what = "mean + PLDA" if self.plda and backend == LdaPldaBackend.name else "mean"
        return f"adapted to {self.name} ({what})"


def adapt_backend(backend: Backend, adapt: np.ndarray, adaptation: Adaptation) -> Backend:
    """Centre with the adaptation set's mean and, when asked, adapt the PLDA model
    (speaker labels of the adaptation set are never used)."""
    adapt = np.asarray(adapt, dtype=np.float64)
    if adapt.ndim != 2 or adapt.shape[0] == 0:
        raise FhvaeError(f"{adaptation.name}: the adaptation set is empty")
    if backend.name not in adaptation.backends:
        return backend
    backend.mean = adapt.mean(axis=0)
    if adaptation.plda and isinstance(backend, LdaPldaBackend):
        backend.adapt_plda(adapt, adaptation.config)
    return backend


def score_trials(backend: Backend, embeddings: Mapping[str, np.ndarray],
                 trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every trial and a boolean array marking the target trials."""
    enroll = np.stack([embeddings[t.enroll] for t in trials]).astype(np.float64)
    test = np.stack([embeddings[t.test] for t in trials]).astype(np.float64)
    return backend.score(enroll, test), np.array([t.is_target for t in trials])
