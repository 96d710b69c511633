"""What a training process needs from its machine: its rank and device, whether the CPU
runs bf16, and the optimizer."""

from __future__ import annotations

import functools
import logging
import os

import torch
import torch.distributed as dist

from fhvae.device import resolve_device
from fhvae.errors import FhvaeError

logger = logging.getLogger(__name__)


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


def native_bf16() -> str | None:
    """"AMX" or "AVX512_BF16" where the CPU multiplies bf16 in hardware, else None (an
    AVX2 or plain AVX-512 CPU would convert to float32 and gain nothing)."""
    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512_BF16"
    return None


def runnable_amp(amp: str, device: torch.device) -> str:
    """The autocast a run uses for the config's `amp`.

    auto: bf16 on a CPU with native bf16 whose oneDNN runs the model in it, float32
    elsewhere (GPUs included: bf16 there is chosen explicitly). bf16 on a CPU without bf16
    kernels is float32 with a warning: a config written for a GPU node must not crash a
    CPU node, it runs the same training in float32."""
    if amp == "auto":
        fits = device.type == "cpu" and native_bf16() and not cpu_bf16_error()
        return "bf16" if fits else "none"
    if amp == "bf16" and device.type == "cpu" and (why := cpu_bf16_error()):
        logger.warning("amp bf16: this CPU (%s) cannot run the model in bfloat16 (%s); "
                       "training in float32", torch.backends.cpu.get_cpu_capability(), why)
        return "none"
    return amp


def compute_path(amp: str, runs: str, device: torch.device) -> str:
    """One log line: where this run's arithmetic happens and in what precision, `amp`
    being the config's value and `runs` what runnable_amp made of it (the paths train
    different models, as two seeds do: docs/training.md)."""
    precision = {"none": "float32", "bf16": "bf16 autocast", "fp16": "fp16 autocast"}[runs]
    if device.type == "cpu":
        where = (f"cpu ({torch.backends.cpu.get_cpu_capability()} kernels, "
                 f"{torch.get_num_threads()} threads)")
        if runs == "bf16":
            precision += f" ({native_bf16() or 'emulated: no native bf16'})"
        elif runs == "fp16":
            precision = "float32 (fp16 autocast is GPU only)"
    else:
        where = f"{device} ({torch.cuda.get_device_name(device)})"
    return f"compute: {where}, {precision} (amp: {amp})"


def autocast(amp: str, device: torch.device):
    """bf16 autocasts on any device (CPU autocast supports it); fp16 needs the CUDA
    gradient scaler, so on CPU it runs in float32."""
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if amp == "fp16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, enabled=False)


def make_adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel: the same update, one kernel over all tensors instead of
    ~10 ops per tensor (4 vs 20 ms per step for the paper model on 2 CPU cores)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
