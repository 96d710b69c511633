"""Batched, gradient-free calls of a trained FHVAE: encode, decode, score, pool s-vectors.

Every call runs `batch_size` windows at a time on the model's device (numpy arrays and
tensors elsewhere are moved batch by batch) and returns tensors on that device. The
model's train/eval mode is left as it is: the FHVAE has no dropout or batch norm, so both
compute the same, and training calls these in train mode. Batch boundaries can change the
last bits of an LSTM's output, so a caller that must reproduce earlier outputs keeps its
batch size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from fhvae.device import resolve_device
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference.windows import WindowSource
from fhvae.model import FHVAE
from fhvae.objective import log_normal, map_mu2
from fhvae.training.checkpoint import load_model

BATCH = 1024        # windows per call unless the caller says otherwise (evaluation)

Rows = Tensor | np.ndarray    # (N, ...) rows of latents, on any device


@dataclass
class Gaussian:
    """A diagonal Gaussian per row: means and log-variances, each (N, D)."""

    mean: Tensor
    logvar: Tensor

    def draw(self, eps: Tensor) -> Tensor:
        """The draw mean + eps * std for the standard-normal noise `eps`."""
        return self.mean + eps * torch.exp(0.5 * self.logvar)


@dataclass
class Encoded:
    """The posteriors of N windows; q(z1 | x, z2) is conditioned on `z2`."""

    z2_post: Gaussian
    z1_post: Gaussian
    z2: Tensor          # z2's mean, or a draw from its posterior
    z1: Tensor          # z1's mean, or a draw from its posterior


def load(path: str | os.PathLike, device: str = "auto") -> tuple[FHVAE, MVN, dict]:
    """The trained model of a checkpoint in eval mode on `device` (auto, cpu, cuda or
    cuda:N), the MVN statistics its inputs are normalised with, and the checkpoint dict."""
    return load_model(path, resolve_device(device))


def _device(model: FHVAE) -> torch.device:
    return model.mu2.device


def _rows(source: WindowSource | Rows, lo: int, hi: int, device: torch.device) -> Tensor:
    """Rows lo..hi-1 of a tensor, array or window source, on `device` (copied to a GPU
    asynchronously; a copy to the CPU must wait for its data)."""
    return torch.as_tensor(source[lo:hi]).to(device, non_blocking=device.type == "cuda")


def _spans(count: int, batch_size: int) -> Iterator[tuple[int, int]]:
    return ((lo, min(lo + batch_size, count)) for lo in range(0, count, batch_size))


def _cat(posts: list[Gaussian]) -> Gaussian:
    return Gaussian(torch.cat([p.mean for p in posts]), torch.cat([p.logvar for p in posts]))


@torch.no_grad()
def encode_z2(model: FHVAE, windows: WindowSource, batch_size: int = BATCH) -> Gaussian:
    """q(z2 | x) of every window: (N, z2_dim) means and log-variances."""
    device = _device(model)
    return _cat([Gaussian(*model.encode_z2(_rows(windows, lo, hi, device)))
                 for lo, hi in _spans(windows.shape[0], batch_size)])


@torch.no_grad()
def encode_z1(model: FHVAE, windows: WindowSource, z2: Rows,
              batch_size: int = BATCH) -> Gaussian:
    """q(z1 | x, z2) of every window given the rows of `z2` (N, z2_dim)."""
    device = _device(model)
    return _cat([Gaussian(*model.encode_z1(_rows(windows, lo, hi, device),
                                           _rows(z2, lo, hi, device)))
                 for lo, hi in _spans(windows.shape[0], batch_size)])


@torch.no_grad()
def encode(model: FHVAE, windows: WindowSource, batch_size: int = BATCH,
           noise: tuple[Tensor, Tensor] | None = None) -> Encoded:
    """q(z2 | x), then q(z1 | x, z2) given z2's mean; with `noise` = standard-normal draws
    (eps2 (N, z2_dim), eps1 (N, z1_dim)) on the model's device, z1 is encoded given the z2
    draw and both draws are returned as z2 and z1."""
    device = _device(model)
    parts = []
    for lo, hi in _spans(windows.shape[0], batch_size):
        x = _rows(windows, lo, hi, device)
        z2_post = Gaussian(*model.encode_z2(x))
        z2 = z2_post.mean if noise is None else z2_post.draw(noise[0][lo:hi])
        z1_post = Gaussian(*model.encode_z1(x, z2))
        z1 = z1_post.mean if noise is None else z1_post.draw(noise[1][lo:hi])
        parts.append(Encoded(z2_post, z1_post, z2, z1))
    return Encoded(_cat([p.z2_post for p in parts]), _cat([p.z1_post for p in parts]),
                   torch.cat([p.z2 for p in parts]), torch.cat([p.z1 for p in parts]))


@torch.no_grad()
def decode_means(model: FHVAE, z1: Rows, z2: Rows, num_frames: int,
                 batch_size: int = BATCH) -> Tensor:
    """Means of p(x | z1, z2), (N, num_frames, F), for the rows of z1 and z2 (normalised
    feature scale: undo the MVN to compare with raw features)."""
    device = _device(model)
    return torch.cat([model.decode(_rows(z1, lo, hi, device), _rows(z2, lo, hi, device),
                                   num_frames)[0]
                      for lo, hi in _spans(z1.shape[0], batch_size)])


@torch.no_grad()
def decode_log_likelihood(model: FHVAE, windows: WindowSource, z1: Rows, z2: Rows,
                          batch_size: int = BATCH) -> Tensor:
    """log p(x | z1, z2) in nats of each normalised window x, summed over its frames and
    bins: (N,) float64."""
    device = _device(model)
    out = []
    for lo, hi in _spans(windows.shape[0], batch_size):
        x = _rows(windows, lo, hi, device)
        mu, logvar = model.decode(_rows(z1, lo, hi, device), _rows(z2, lo, hi, device),
                                  x.shape[1])
        out.append(log_normal(x, mu, logvar).double())
    return torch.cat(out)


def pool_mu2(z2_means: Tensor, seq: Tensor, num_seqs: int, sigma2: float) -> Tensor:
    """MAP mu2 (num_seqs, D) of sequences from the z2 means of their windows, `seq` (N,)
    naming each row's sequence in [0, num_seqs): sum / (count + sigma2), the s-vector and
    table-reset formula; a sequence without windows gets the prior mean 0."""
    seq = seq.to(device=z2_means.device, dtype=torch.long)
    sums = torch.zeros(num_seqs, z2_means.shape[1], device=z2_means.device)
    sums.index_add_(0, seq, z2_means.float())
    counts = torch.bincount(seq, minlength=num_seqs)[:num_seqs]
    return map_mu2(sums, counts, sigma2)


def sequence_mu2(model: FHVAE, windows: WindowSource, seq: Tensor, num_seqs: int,
                 batch_size: int = BATCH) -> Tensor:
    """MAP mu2 (num_seqs, D) of sequences from all their windows, on the model's device:
    the training table's reset and the dev bound's mu2 (`seq`: each window's sequence)."""
    if windows.shape[0] != seq.shape[0]:
        raise FhvaeError(f"sequence_mu2: {windows.shape[0]} segments but "
                         f"{seq.shape[0]} sequence ids")
    return pool_mu2(encode_z2(model, windows, batch_size).mean, seq, num_seqs,
                    model.cfg.sigma2_z2)
