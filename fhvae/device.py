"""One reading of a `--device` name for training, extraction and evaluation.

Accepted: auto (the first GPU when torch sees one, else the CPU), cpu, cuda (the current
GPU) and cuda:N. Anything else, or a GPU that torch does not see, is one FhvaeError that
names the value, so a typo fails before any work instead of deep inside torch.
"""

from __future__ import annotations

import re

import torch

from fhvae.errors import FhvaeError

_NAME = re.compile(r"auto|cpu|cuda(?::(\d+))?")


def resolve_device(name: str) -> torch.device:
    """The torch device of `name` (auto, cpu, cuda or cuda:N), checked against this machine."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise FhvaeError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FhvaeError(f"device '{name}' requested but torch sees no CUDA device")
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise FhvaeError(f"device '{name}' requested but torch sees {count} CUDA device(s) "
                         f"(cuda:0 to cuda:{count - 1})")
    return torch.device(name)
