"""Verification back-ends for utterance embeddings (s-vectors or the FBank-mean baseline).

- `cosine`: cosine similarity after subtracting the training-set mean embedding.
- `lda-wccn`: training-set centring, LDA, then within-class covariance normalisation
  (whitening of the pooled within-speaker covariance) and cosine: a within-speaker-
  compensated cosine that needs no generative model.
- `lda-plda`: training-set centring, LDA (scikit-learn) on speaker labels, length
  normalisation, then a two-covariance PLDA model (between-speaker covariance B,
  within-speaker covariance W, both estimated by moments) scored with the exact
  same-vs-different-speaker log-likelihood ratio for one enrolment utterance.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from fhvae.errors import FhvaeError
from fhvae.evaluate.trials import Trial

# Added to both PLDA covariances so that a rank-deficient estimate stays invertible.
COV_FLOOR = 1e-6


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (zero vectors score 0)."""
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("nd,nd->n", a, b) / np.maximum(norms, 1e-12)


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
        dim = normalised.shape[1]   # fewer when the training vectors do not span every direction
        self.post_mean = normalised.mean(axis=0)
        spk_means, within = within_class_scatter(normalised - self.post_mean, label_idx)
        between = between_speaker_covariance(spk_means, within, np.bincount(label_idx))
        eye = np.eye(dim) * COV_FLOOR
        total = between + within + eye
        joint = np.block([[total, between], [between, total]])
        self.total_inv = np.linalg.inv(total)
        self.joint_inv = np.linalg.inv(joint)
        self.offset = np.linalg.slogdet(total)[1] - 0.5 * np.linalg.slogdet(joint)[1]
        return self

    def score(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """log p(e, t | same speaker) - log p(e | .) - log p(t | .), per row pair."""
        e, t = self._project(np.asarray(enroll, np.float64)), self._project(np.asarray(test, np.float64))
        both = np.concatenate([e, t], axis=1)
        quad_joint = np.einsum("nd,de,ne->n", both, self.joint_inv, both)
        quad_e = np.einsum("nd,de,ne->n", e, self.total_inv, e)
        quad_t = np.einsum("nd,de,ne->n", t, self.total_inv, t)
        return 0.5 * (quad_e + quad_t - quad_joint) + self.offset


Backend = CosineBackend | LdaWccnBackend | LdaPldaBackend


def score_trials(backend: Backend, embeddings: Mapping[str, np.ndarray],
                 trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every trial and a boolean array marking the target trials."""
    enroll = np.stack([embeddings[t.enroll] for t in trials]).astype(np.float64)
    test = np.stack([embeddings[t.test] for t in trials]).astype(np.float64)
    return backend.score(enroll, test), np.array([t.is_target for t in trials])
