"""What a training process needs from its machine: its rank and device, RNG states for
checkpoints, whether the CPU runs bf16, and the optimizer."""

from __future__ import annotations

import functools
import os
import random

import numpy as np
import torch
import torch.distributed as dist

from fhvae.device import resolve_device
from fhvae.errors import FhvaeError


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """(rank, world, device); joins the torchrun process group when WORLD_SIZE is set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if dev.index is None:       # cuda or auto: under torchrun, the rank's own GPU
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        elif world > 1:
            raise FhvaeError(f"device '{device}' names one GPU for {world} processes; under "
                             "torchrun use cuda or auto (each takes its LOCAL_RANK's GPU)")
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


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


@functools.cache
def cpu_bf16_error() -> str | None:
    """None if this CPU runs the model's layers in bfloat16 under autocast, else why not.

    oneDNN's bf16 LSTM needs AVX-512 (bf16 or core) or AMX; on an AVX2-only CPU it fails
    with "could not create a primitive descriptor". Found by trying a tiny LSTM forward and
    backward once per process, not by CPU model."""
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        lstm = torch.nn.LSTM(2, 2, batch_first=True)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out, _ = lstm(torch.ones(1, 2, 2))
            out.float().sum().backward()
        except RuntimeError as err:
            return str(err).split(". ", 1)[0].strip()
    return None


def make_adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel: the same update, one kernel over all tensors instead of
    ~10 ops per tensor (4 vs 20 ms per step for the paper model on 2 CPU cores)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
