"""Global mean/variance normalisation of features (stage 2 statistics, applied at training
and extraction time so both see identically scaled inputs)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.atomic import atomic_path
from fhvae.io.npz import read_npz

# Floor on the standard deviation so a constant feature dimension does not divide by zero.
MIN_STD = 1e-5


@dataclass
class MVN:
    """Per-dimension mean and standard deviation, float32 arrays of shape (F,)."""

    mean: np.ndarray
    std: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """(T, F) raw features -> normalised float32 features."""
        return ((feats - self.mean) / self.std).astype(np.float32, copy=False)

    def invert(self, feats: np.ndarray) -> np.ndarray:
        """Normalised (..., F) features (e.g. the decoder's output) back on the raw scale."""
        return (feats * self.std + self.mean).astype(np.float32, copy=False)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, mean=self.mean, std=self.std)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MVN":
        mvn = read_npz(path, "normalisation statistics", "normalisation statistics not found "
                       "(run stage 2)", lambda stats: cls(stats["mean"].astype(np.float32),
                                                          stats["std"].astype(np.float32)))
        if (mvn.mean.ndim != 1 or mvn.mean.shape != mvn.std.shape
                or not np.isfinite(mvn.mean).all() or not (mvn.std > 0).all()):
            raise FhvaeError(f"{path}: mean/std are not finite positive vectors of one size "
                             "(rerun stage 2)")
        return mvn


def utterance_cmvn(feats: np.ndarray) -> np.ndarray:
    """Per-utterance mean and variance normalisation of raw (T, F) features (what Kaldi's
    apply-cmvn --norm-vars=true does with statistics of the utterance itself): it removes a
    fixed channel (a constant offset in log-mel) and level, whatever the recording."""
    return ((feats - feats.mean(axis=0)) / np.maximum(feats.std(axis=0), MIN_STD)).astype(
        np.float32)


def compute_mvn(feature_matrices: Iterable[np.ndarray]) -> MVN:
    """Streaming statistics in float64 over (T, F) matrices: one pass, O(F) memory."""
    count = 0
    total = sq_total = None
    for feats in feature_matrices:
        feats64 = np.asarray(feats, dtype=np.float64)
        if total is None:
            total = np.zeros(feats64.shape[1])
            sq_total = np.zeros(feats64.shape[1])
        count += feats64.shape[0]
        total += feats64.sum(axis=0)
        sq_total += np.square(feats64).sum(axis=0)
    if not count:
        raise FhvaeError("cannot compute normalisation statistics from zero frames")
    mean = total / count
    var = np.maximum(sq_total / count - np.square(mean), 0.0)
    return MVN(mean.astype(np.float32), np.maximum(np.sqrt(var), MIN_STD).astype(np.float32))
