"""Which frames the encoders see: the windows of an utterance, and windows cut lazily.

Frame alignment. Row t of an utterance's z1/z2 encodes the seg_len-frame window centred on
frame t (frames t - seg_len//2 .. t + seg_len - 1 - seg_len//2), indices outside 0..T-1
replaced by the first or last frame (edge padding): any T >= 1 yields exactly T rows,
aligned with Kaldi's frames. The s-vector pools the non-overlapping segments, which are the
windows of rows seg_len//2, seg_len//2 + seg_len, ... (see svector_rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol

import numpy as np
import torch

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN


class WindowSource(Protocol):
    """N windows of seg_len frames that can be sliced batch by batch: a (N, L, F) tensor or
    array, a data.loader.SegmentBuffer, or IndexedWindows."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, which: slice) -> torch.Tensor | np.ndarray: ...


@dataclass
class IndexedWindows:
    """Windows given as rows `index` (N, L) of `frames` (T, F): a batch is gathered when it
    is asked for, so overlapping windows never take seg_len times the frames' memory."""

    frames: torch.Tensor
    index: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.index.shape, self.frames.shape[1])

    def __getitem__(self, which: slice) -> torch.Tensor:
        return self.frames[self.index[which]]


def window_index(num_frames: int, seg_len: int) -> np.ndarray:
    """(T, seg_len) frame indices of the edge-padded window centred on every frame."""
    offsets = np.arange(seg_len) - seg_len // 2
    return np.clip(np.arange(num_frames)[:, None] + offsets[None, :], 0, num_frames - 1)


def svector_rows(num_frames: int, seg_len: int) -> np.ndarray:
    """Rows whose windows are the non-overlapping segments used for the s-vector (the
    middle row's padded window when the utterance is shorter than one segment)."""
    if num_frames < seg_len:
        return np.array([num_frames // 2])
    return np.arange(num_frames // seg_len) * seg_len + seg_len // 2


def speech_rows(num_frames: int, seg_len: int, voiced: np.ndarray) -> np.ndarray:
    """The s-vector rows whose windows are mostly voiced (empty when none is)."""
    rows = svector_rows(num_frames, seg_len)
    votes = (voiced[window_index(num_frames, seg_len)[rows]] > 0.5).sum(axis=1)
    return rows[2 * votes > seg_len]


@dataclass
class Segments:
    """Non-overlapping segments of several utterances, normalised, in utterance order."""

    x: np.ndarray          # (N, seg_len, F) float32
    utt: np.ndarray        # (N,) index into `utts`
    start: np.ndarray      # (N,) first frame of each segment in its utterance
    utts: list[str]


def cut_segments(feats: Mapping[str, np.ndarray], mvn: MVN, seg_len: int) -> Segments:
    """Frames 0..seg_len-1, seg_len..2*seg_len-1, ... of each utterance (the remainder and
    utterances shorter than seg_len are not used), normalised with `mvn`."""
    utts = sorted(feats)
    xs, utt_index, starts = [], [], []
    for i, utt in enumerate(utts):
        count = feats[utt].shape[0] // seg_len
        if count:
            norm = mvn.apply(feats[utt][:count * seg_len])
            xs.append(norm.reshape(count, seg_len, -1))
            utt_index.append(np.full(count, i))
            starts.append(np.arange(count) * seg_len)
    if not xs:
        raise FhvaeError(f"no utterance has a whole {seg_len}-frame segment")
    return Segments(np.concatenate(xs), np.concatenate(utt_index), np.concatenate(starts), utts)
