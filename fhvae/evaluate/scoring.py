"""Verification back-ends for utterance embeddings (s-vectors or the FBank-mean baseline).

- `cosine`: cosine similarity after subtracting the training-set mean embedding.
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
        labels = np.asarray(speakers)
        classes, label_idx = np.unique(labels, return_inverse=True)
        if classes.size < 2 or classes.size == train.shape[0]:
            raise FhvaeError(f"LDA/PLDA needs at least 2 training speakers with 2+ utterances "
                             f"(got {classes.size} speakers, {train.shape[0]} utterances)")
        max_dim = min(classes.size - 1, train.shape[1])
        dim = max_dim if self.lda_dim is None else min(self.lda_dim, max_dim)
        self.mean = train.mean(axis=0)
        self.lda = LinearDiscriminantAnalysis(n_components=dim).fit(train - self.mean, labels)
        normalised = self._lda_normalised(train)
        dim = normalised.shape[1]   # fewer when the training vectors do not span every direction
        self.post_mean = normalised.mean(axis=0)
        proj = normalised - self.post_mean
        spk_means = np.stack([proj[label_idx == k].mean(axis=0) for k in range(classes.size)])
        between = np.cov(spk_means, rowvar=False, bias=True).reshape(dim, dim)
        resid = proj - spk_means[label_idx]
        within = resid.T @ resid / (proj.shape[0] - classes.size)
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


def score_trials(backend: CosineBackend | LdaPldaBackend, embeddings: Mapping[str, np.ndarray],
                 trials: Sequence[Trial]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every trial and a boolean array marking the target trials."""
    enroll = np.stack([embeddings[t.enroll] for t in trials]).astype(np.float64)
    test = np.stack([embeddings[t.test] for t in trials]).astype(np.float64)
    return backend.score(enroll, test), np.array([t.is_target for t in trials])
