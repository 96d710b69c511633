"""A data dir's utterances through the i-vector front end, one at a time: what every pass
of training (the UBM's, each EM iteration's) and of extraction reads, so that none of them
holds more than one utterance's features."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.datadir import DataDir
from fhvae.ivector.features import FrontEndConfig, compute_features


def feats_utts(data: DataDir) -> list[str]:
    """The utterances of feats.scp, sorted; an error naming the file when it has none."""
    if not data.feats_scp.is_file():
        raise FhvaeError(f"{data.feats_scp}: no such file")
    utts = data.feats_utts()
    if not utts:
        raise FhvaeError(f"{data.feats_scp}: no utterances")
    return utts


def input_dim(data: DataDir, utt: str) -> int:
    """The raw feature dimension, from utterance `utt` (every other must match it)."""
    return next(raw_feats(data, [utt], None))[1].shape[1]


def raw_feats(data: DataDir, utts: Sequence[str] | None, dim: int | None
              ) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, (T, dim) raw FBank) of `utts` (all if None), T > 0; errors name feats.scp and
    the utterance."""
    for utt, mat in data.feats(utts, dim):
        if mat.shape[0] == 0:
            raise FhvaeError(f"{data.feats_scp}: utterance '{utt}' has no frames")
        yield utt, mat


def processed_feats(data: DataDir, utts: Sequence[str] | None, front_end: FrontEndConfig,
                    dim: int, dtype: type = np.float64) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, front-end features as `dtype`) of `utts` (all if None), in order."""
    for utt, mat in raw_feats(data, utts, dim):
        yield utt, compute_features(mat, front_end, utt).astype(dtype, copy=False)
