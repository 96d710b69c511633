"""Whole utterances decoded frame for frame: the T windows stage 4 encodes (one centred on
each frame) decoded and turned back into exactly T frames, so that decoded features line up
with the source's alignments (augmentation) and its audio's length (voice conversion)."""

from __future__ import annotations

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.inference.calls import BATCH, decode_means
from fhvae.inference.windows import window_index
from fhvae.model import FHVAE

# centre: the middle frame of row t's own window (the frame whose context z1_t encodes);
# average: every decoded window that covers frame t, averaged (smoother, less local)
FRAME_MODES = ("centre", "average")


def aligned_frames(windows: np.ndarray, how: str = "centre") -> np.ndarray:
    """(T, F) frames from (T, seg_len, F) decoded windows, row t centred on frame t."""
    num_frames, seg_len, dim = windows.shape
    if how == "centre":
        return windows[:, seg_len // 2]
    if how != "average":
        raise FhvaeError(f"unknown frame mode '{how}' (one of {', '.join(FRAME_MODES)})")
    frame_of = window_index(num_frames, seg_len).ravel()
    sums = np.zeros((num_frames, dim), dtype=np.float64)
    np.add.at(sums, frame_of, windows.reshape(-1, dim))
    counts = np.bincount(frame_of, minlength=num_frames)
    return (sums / counts[:, None]).astype(np.float32)


def decode_frames(model: FHVAE, z1: np.ndarray, z2: np.ndarray, how: str = "centre",
                  batch_size: int = BATCH) -> np.ndarray:
    """Normalised (T, F) features decoded from T rows of z1 and z2 (means of p(x | z))."""
    if z1.shape[0] != z2.shape[0]:
        raise FhvaeError(f"decode: {z1.shape[0]} rows of z1 but {z2.shape[0]} of z2")
    windows = decode_means(model, z1, z2, model.cfg.seg_len, batch_size)
    return aligned_frames(windows.float().cpu().numpy(), how)
