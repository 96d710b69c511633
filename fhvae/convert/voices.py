"""Frame-aligned voice conversion of whole utterances: the source's z1, a target's z2.

Every frame t of the source has z1_t (posterior mean of the window centred on t,
inference.window_index, as stage 4 writes it). The target is a group of utterances (a
speaker, or a noise or channel condition) represented by the mean of their s-vectors (the
MAP mu2 of each utterance). The z2 the decoder gets at frame t is either

  replace   the target's mean s-vector, the same at every frame, or
  shift     the source's own z2_t moved by (target mean s-vector - source s-vector), which
            keeps the frame-to-frame variation of z2 within the utterance.

The decoder turns window t's (z1_t, z2_t) into seg_len frames; frame t of the output is

  centre    the decoded window's middle frame (the frame that window is centred on), or
  average   the mean of every decoded frame that lands on frame t (up to seg_len windows
            overlap there; edge copies count where the encoder saw them),

so T frames in give exactly T frames out, aligned with the source's Kaldi frames and its
phone alignment. The output is de-normalised with the model's MVN (raw log-mel FBank).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import ExtractOptions, Latents, decode_frames, extract_latents
from fhvae.io.datadir import FEATS_SCP
from fhvae.model import FHVAE

Z2_MODES = ("replace", "shift")


def encode_utterances(model: FHVAE, mvn: MVN, feats: Mapping[str, np.ndarray],
                      utts: Iterable[str], svector_only: bool = False,
                      source: str = FEATS_SCP) -> dict[str, Latents]:
    """z1/z2 per frame and the s-vector of each of `utts` (only s-vectors with
    `svector_only`: the targets need no frames)."""
    opts = ExtractOptions(svector_only=svector_only)
    return dict(extract_latents(model, mvn, ((u, feats[u]) for u in utts), opts=opts,
                                source=source))


def group_means(svectors: Mapping[str, np.ndarray],
                utt2group: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Mean s-vector of each group over the utterances of `svectors`."""
    members: dict[str, list[np.ndarray]] = {}
    for utt, vec in svectors.items():
        members.setdefault(utt2group[utt], []).append(vec)
    return {g: np.mean(vecs, axis=0) for g, vecs in members.items()}


def conversion_z2(latents: Latents, target: np.ndarray, z2_mode: str) -> np.ndarray:
    """(T, z2_dim) z2 rows the decoder gets for the source frames (see the module doc)."""
    if z2_mode == "replace":
        return np.broadcast_to(target, latents.z2.shape).astype(np.float32)
    if z2_mode == "shift":
        return (latents.z2 + (target - latents.svector)).astype(np.float32)
    raise FhvaeError(f"unknown z2 mode '{z2_mode}' ({' or '.join(Z2_MODES)})")


def decode_utterance(model: FHVAE, mvn: MVN, latents: Latents, z2: np.ndarray,
                     frame_mode: str) -> np.ndarray:
    """Raw (T, F) FBank decoded from the source's z1 rows with the given z2 rows."""
    return mvn.invert(decode_frames(model, latents.z1, z2, frame_mode))


def convert_utterance(model: FHVAE, mvn: MVN, latents: Latents, target: np.ndarray,
                      z2_mode: str, frame_mode: str) -> np.ndarray:
    """The source utterance of `latents` in the voice (or condition) of the target whose
    mean s-vector is `target`: raw (T, F) FBank, T = the source's frame count."""
    return decode_utterance(model, mvn, latents, conversion_z2(latents, target, z2_mode),
                            frame_mode)
