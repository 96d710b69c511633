"""Where an augmented copy's z2 goes: the target domain, estimated from unlabelled speech.

Two moves, both computed from s-vectors (the MAP mu2 of each utterance, the number stage 4
writes):
  shift   every frame's z2 plus (mean target s-vector - mean source s-vector): the source
          utterance keeps its speaker and its own variation and moves by the average
          difference of the two conditions (Hsu, Zhang & Glass, ASRU 2017).
  target  every frame's z2 replaced by the s-vector of one target utterance, chosen per
          source utterance from a hash of the seed and its id (so jobs agree): a real
          target condition, but also that utterance's speaker.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import ExtractOptions, extract_latents
from fhvae.io.datadir import DataDir
from fhvae.model import FHVAE

METHODS = ("shift", "target")


def svectors(model: FHVAE, mvn: MVN, data_dir: str | os.PathLike,
             batch_size: int = 4096) -> dict[str, np.ndarray]:
    """The s-vector of every utterance of a data dir (non-overlapping windows only)."""
    opts = ExtractOptions(svector_only=True, batch_size=batch_size)
    data = DataDir(data_dir)
    feats = data.read_feats(data.feats_entries(), f"s-vectors {data.path.name}")
    return {key: lat.svector
            for key, lat in extract_latents(model, mvn, feats, None, opts, str(data.feats_scp))}


class Z2Move(Protocol):
    """The z2 rows (T, D) an augmented copy of utterance `utt` is decoded with."""

    def __call__(self, utt: str, z2: np.ndarray) -> np.ndarray: ...


@dataclass
class ShiftZ2:
    """z2 + offset: the difference of the target's and the source's mean s-vectors."""

    offset: np.ndarray

    def __call__(self, utt: str, z2: np.ndarray) -> np.ndarray:
        return z2 + self.offset.astype(z2.dtype)


@dataclass
class TargetZ2:
    """Every row replaced by the s-vector of the target utterance picked for `utt`."""

    target_svectors: np.ndarray      # (N, D), in the target's feats.scp order
    seed: int = 0

    def pick(self, utt: str) -> int:
        """Index of the target utterance of `utt`: a hash of the seed and the id."""
        return zlib.crc32(f"{self.seed}:{utt}".encode()) % self.target_svectors.shape[0]

    def __call__(self, utt: str, z2: np.ndarray) -> np.ndarray:
        row = self.target_svectors[self.pick(utt)].astype(z2.dtype)
        return np.broadcast_to(row, z2.shape).copy()


def make_move(method: str, source: dict[str, np.ndarray], target: dict[str, np.ndarray],
              seed: int = 0) -> Z2Move:
    """The move of `method` (METHODS) from the s-vectors of the source and target dirs."""
    if not source or not target:
        raise FhvaeError("z2 move: the source and the target need at least one s-vector each")
    if method == "shift":
        return ShiftZ2(np.mean(list(target.values()), axis=0)
                       - np.mean(list(source.values()), axis=0))
    if method == "target":
        return TargetZ2(np.stack([target[k] for k in target]), seed)
    raise FhvaeError(f"unknown z2 method '{method}' (one of {', '.join(METHODS)})")
