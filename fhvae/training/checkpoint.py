"""Checkpoint files: plain dicts of tensors and primitives, written atomically, read with
`weights_only=True` so that loading a file can never execute code from it.

Every checkpoint (final.pt, best.pt, last.pt) begins with the keys of a model file,
MODEL_FILE_KEYS; best.pt adds DEV_LB, and last.pt what resuming needs (NET_OPT, SCALER,
RANK_STATES, WORLD and the RunState fields). The keys are named here once, for the writer
(the training loop) and every reader (load_model, the resume check); they are the keys of
every final.pt written before, which therefore still load.
"""

from __future__ import annotations

import io
import math
import os
import random
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.io.atomic import atomic_path
from fhvae.model import FHVAE, ModelConfig


# The keys of a model file, in the order they are written.
MODEL_CONFIG = "model_config"   # dict of ModelConfig fields
WEIGHTS = "model"               # the FHVAE's state_dict
MVN_MEAN = "mvn_mean"           # float32 tensors (F,): the inputs' normalisation
MVN_STD = "mvn_std"
TRAIN_CONFIG = "train_config"   # TrainConfig.to_dict()
STEP = "step"                   # the training step of these weights
MODEL_KEYS = (MODEL_CONFIG, WEIGHTS, MVN_MEAN, MVN_STD)   # what load_model needs
MODEL_FILE_KEYS = (*MODEL_KEYS, TRAIN_CONFIG, STEP)
DEV_LB = "dev_lb"               # best.pt: the dev lower bound of its weights
# last.pt: the network's Adam state, the gradient scaler's, each rank's table, table Adam
# state and RNG states, and the number of processes that wrote it.
NET_OPT, SCALER, RANK_STATES, WORLD = "net_opt", "scaler", "rank_states", "world"

# Settings that fix the sampler's streams: resuming with other values would not continue
# the same run, so they must match the checkpoint.
RESUME_KEYS = ("mode", "seed", "batch_size", "seg_shift", "num_seg_batches", "random_offsets")


@dataclass
class RunState:
    """Where a training run stands, saved in last.pt and put back on resume as one unit
    (as top-level keys of the payload, the layout older checkpoints have). The next step
    is segment batch `inner` of sequence batch `seq_batch`."""

    step: int = 0
    seq_batch: int = 0
    inner: int = 0
    skipped: int = 0              # batches skipped for a non-finite loss
    best_dev: float = -math.inf   # best dev lower bound so far, and its step
    best_step: int = 0
    elapsed: float = 0.0          # seconds of training, over every resume
    stopped: bool = False         # early-stopped: a resume trains no further
    budget_elapsed: float = 0.0   # `elapsed` at the last max_minutes check, the largest over
                                  # ranks: the time the lr schedule decays by (all ranks and
                                  # a resumed run see the same value)

    def to_payload(self) -> dict:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict) -> "RunState":
        """The saved fields; one a checkpoint predates keeps its default."""
        return cls(**{f.name: payload[f.name] for f in fields(cls) if f.name in payload})


def model_file(model: FHVAE, mvn: MVN, train_config: dict, step: int) -> dict:
    """A model file's dict: what load_model rebuilds the model from, and the run's metadata."""
    return {MODEL_CONFIG: model.cfg.to_dict(), WEIGHTS: model.state_dict(),
            MVN_MEAN: torch.from_numpy(mvn.mean), MVN_STD: torch.from_numpy(mvn.std),
            TRAIN_CONFIG: train_config, STEP: step}


def check_resumable(path: Path, ckpt: dict, model_config: dict, train_config: dict,
                    world: int) -> None:
    """A one-line FhvaeError unless last.pt `ckpt` continues the requested run: the same
    model, the same sampler settings (RESUME_KEYS) and the same number of processes."""
    saved = ckpt[MODEL_CONFIG]
    if saved != model_config:
        diff = ", ".join(f"{k}: {saved.get(k)} -> {v}"
                         for k, v in model_config.items() if saved.get(k) != v)
        raise FhvaeError(f"{path}: model config differs from the requested one "
                         f"({diff}); use a new experiment directory")
    old = ckpt[TRAIN_CONFIG]
    for key in RESUME_KEYS:
        if old.get(key) != train_config[key]:
            raise FhvaeError(f"{path}: {key} was {old.get(key)}, now "
                             f"{train_config[key]}; cannot resume the same run")
    if ckpt[WORLD] != world:
        raise FhvaeError(f"{path}: written by {ckpt[WORLD]} process(es), resuming with "
                         f"{world}")


def rng_state() -> dict:
    """All RNG states in checkpoint-safe types (tensors, ints, lists)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                       *np_state[2:]],
             "python": [list(t) if isinstance(t, tuple) else t for t in random.getstate()]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    """Put back the RNG states rng_state() saved."""
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(tuple(tuple(t) if isinstance(t, list) else t for t in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def to_cpu(obj):
    """Tensors of a nested dict/list moved to CPU (for gathering per-rank state)."""
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


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
    for key in MODEL_KEYS:
        if key not in payload:
            raise FhvaeError(f"{path}: checkpoint lacks '{key}'")
    return payload


def load_model(path: str | os.PathLike,
               device: str | torch.device = "cpu") -> tuple[FHVAE, MVN, dict]:
    """Rebuild the trained model (eval mode), its MVN statistics and the full payload."""
    payload = load_checkpoint(path, map_location=device)
    try:
        cfg = ModelConfig(**payload[MODEL_CONFIG])
    except TypeError as err:
        raise FhvaeError(f"{path}: incompatible model_config ({err})") from None
    model = FHVAE(cfg).to(device)
    try:
        model.load_state_dict(payload[WEIGHTS])
    except RuntimeError as err:
        raise FhvaeError(f"{path}: weights do not match its model_config "
                         f"({str(err).splitlines()[0]})") from None
    model.eval()
    mvn = MVN(payload[MVN_MEAN].cpu().numpy(), payload[MVN_STD].cpu().numpy())
    return model, mvn, payload
