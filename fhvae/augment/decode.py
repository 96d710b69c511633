"""Exactly T frames of FBank from an utterance's T (z1, z2) rows, on the source's scale.

The decoder turns one (z1, z2) pair into a seg_len-frame window. Row t of stage 4's
latents encodes the edge-padded window centred on frame t (inference.window_index), so
decoding every row gives seg_len predictions of most frames. Two ways to form frame t:
  centre   the centre frame of row t's own window (the frame whose context z1 encodes
           symmetrically; one prediction per frame)
  average  the mean of every window's prediction of frame t (edge copies count for the
           first and last frame, as they are in the encoded windows)
Either way the output has T rows aligned with the source, so alignments carry over.

The decoder's means are smoother than speech: they miss detail z1 and z2 do not hold. The
residual (source - decoded with the source's own z2) puts it back (RESIDUALS):
  none     the decoded frames alone
  add      decoded + residual: the source itself, moved by what the model predicts
  scaled   decoded + residual x (per-bin std over time of the moved decoding / of the
           source's decoding): the detail compressed or stretched as the model predicts
           the target condition compresses or stretches each bin's range (noise fills the
           valleys between speech frames, so the source's full-range detail would not fit)
"""

from __future__ import annotations

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MIN_STD, MVN
from fhvae.inference import BATCH, decode_means, window_index
from fhvae.model import FHVAE

FRAMES = ("centre", "average")
RESIDUALS = ("none", "add", "scaled")


def aligned_frames(windows: np.ndarray, how: str = "centre") -> np.ndarray:
    """(T, F) frames from (T, seg_len, F) decoded windows, row t centred on frame t."""
    num_frames, seg_len, dim = windows.shape
    if how == "centre":
        return windows[:, seg_len // 2]
    if how != "average":
        raise FhvaeError(f"unknown frame formation '{how}' (one of {', '.join(FRAMES)})")
    frame_of = window_index(num_frames, seg_len).ravel()
    sums = np.zeros((num_frames, dim), dtype=np.float64)
    np.add.at(sums, frame_of, windows.reshape(-1, dim))
    counts = np.bincount(frame_of, minlength=num_frames)
    return (sums / counts[:, None]).astype(np.float32)


def decode_utterance(model: FHVAE, z1: np.ndarray, z2: np.ndarray, how: str = "centre",
                     batch_size: int = BATCH) -> np.ndarray:
    """Normalised (T, F) features decoded from T rows of z1 and z2 (means of p(x | z))."""
    if z1.shape[0] != z2.shape[0]:
        raise FhvaeError(f"decode: {z1.shape[0]} rows of z1 but {z2.shape[0]} of z2")
    windows = decode_means(model, z1, z2, model.cfg.seg_len, batch_size)
    return aligned_frames(windows.float().cpu().numpy(), how)


def denormalise(mvn: MVN, feats: np.ndarray) -> np.ndarray:
    """The inverse of mvn.apply: normalised features back on the raw FBank scale."""
    return (feats * mvn.std + mvn.mean).astype(np.float32)


def with_residual(source: np.ndarray, own: np.ndarray, moved: np.ndarray,
                  how: str = "none") -> np.ndarray:
    """Normalised (T, F) output from the normalised source, its decoding with its own z2
    (`own`) and the decoding with z2 moved (`moved`), by the rule `how` (RESIDUALS)."""
    if how == "none":
        return moved
    if how == "add":
        return moved + (source - own)
    if how == "scaled":
        scale = moved.std(axis=0) / np.maximum(own.std(axis=0), MIN_STD)
        return moved + (source - own) * scale
    raise FhvaeError(f"unknown residual rule '{how}' (one of {', '.join(RESIDUALS)})")
