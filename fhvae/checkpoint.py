"""Checkpoint files: plain dicts of tensors and primitives, written atomically, read with
`weights_only=True` so that loading a file can never execute code from it.

Layout of every checkpoint (last.pt, best.pt, final.pt):
  model_config: dict (ModelConfig fields)     model: state_dict
  mvn_mean, mvn_std: float32 tensors (F,)     train_config: dict of primitives
  step: int        plus, in training checkpoints, optimizer/RNG/sampler state.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.io.atomic import atomic_path
from fhvae.model import FHVAE, ModelConfig


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """torch.save to a temporary name, fsync, rename: a crash leaves the old file intact.

    The bytes are serialised in memory first and written by Python, so a full disk is an
    OSError naming the file (torch's own writer reports it as an opaque RuntimeError).
    Temporaries of this file left by a killed process are removed first.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.tmp*"):
        stale.unlink(missing_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict safely; a missing or corrupt file is a one-line FhvaeError."""
    path = Path(path)
    if not path.is_file():
        raise FhvaeError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        detail = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else ""
        raise FhvaeError(f"{path}: not a readable checkpoint, truncated, corrupt or not "
                         f"written by fhvae ({type(err).__name__}: {detail})") from None
    for key in ("model_config", "model", "mvn_mean", "mvn_std"):
        if key not in payload:
            raise FhvaeError(f"{path}: checkpoint lacks '{key}'")
    return payload


def load_model(path: str | os.PathLike,
               device: str | torch.device = "cpu") -> tuple[FHVAE, MVN, dict]:
    """Rebuild the trained model (eval mode), its MVN statistics and the full payload."""
    payload = load_checkpoint(path, map_location=device)
    try:
        cfg = ModelConfig(**payload["model_config"])
    except TypeError as err:
        raise FhvaeError(f"{path}: incompatible model_config ({err})") from None
    model = FHVAE(cfg).to(device)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise FhvaeError(f"{path}: weights do not match its model_config "
                         f"({str(err).splitlines()[0]})") from None
    model.eval()
    mvn = MVN(payload["mvn_mean"].cpu().numpy(), payload["mvn_std"].cpu().numpy())
    return model, mvn, payload
