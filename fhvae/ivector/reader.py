"""A data dir's utterances through the i-vector front end, one at a time: what every pass
of training (the UBM's, each EM iteration's) and of extraction reads, so that none of them
holds more than one utterance's features (or the list of utterances)."""

from __future__ import annotations

from typing import AbstractSet, Iterator

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.datadir import DataDir
from fhvae.ivector.features import FrontEndConfig, compute_features


def processed_feats(data: DataDir, front_end: FrontEndConfig, dim: int,
                    dtype: type = np.float64, rows: AbstractSet[int] | None = None
                    ) -> Iterator[tuple[str, np.ndarray]]:
    """(utt, front-end features as `dtype`) of the (T > 0, dim) raw FBank of every
    utterance of feats.scp, or of its 0-based lines `rows`, in file order; errors name
    feats.scp and the utterance."""
    for utt, mat in data.stream_feats(dim, rows):
        if mat.shape[0] == 0:
            raise FhvaeError(f"{data.feats_scp}: utterance '{utt}' has no frames")
        yield utt, compute_features(mat, front_end, utt).astype(dtype, copy=False)
