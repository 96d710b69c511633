"""Swap test: how many nats of reconstruction each latent is responsible for.

On non-overlapping seg_len-frame segments x of the evaluated utterances (posterior means
throughout, inputs normalised with the model's MVN as in training), the decoder's Gaussian
log-likelihood log p(x | z1, z2), summed over frames and bins, is computed with
  own:                 the segment's own z1 and z2;
  z1 swapped:          z1 of a random segment of another utterance;
  z2 utterance mean:   z2 replaced by the mean z2 of the segment's own utterance;
  z2 other utterance:  z2 replaced by the utterance-mean z2 of another utterance.
A swap's cost is log p(own) - log p(swapped). If z2 were purely sequence-level, replacing it
by its utterance mean would cost almost nothing while swapping z1 (the content) costs much,
so cost(z2 utterance mean) / cost(z1 swapped) measures entanglement (0 is ideal).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.model import FHVAE
from fhvae.objective import log_normal

log = logging.getLogger(__name__)

BATCH = 1024      # segments per encoder/decoder call: bounds memory, keeps the calls large


@dataclass
class Segments:
    """Non-overlapping segments of several utterances, normalised, in utterance order."""

    x: np.ndarray          # (N, seg_len, F) float32
    utt: np.ndarray        # (N,) index into `utts`
    start: np.ndarray      # (N,) first frame of each segment in its utterance
    utts: list[str]


def cut_segments(feats: Mapping[str, np.ndarray], mvn: MVN, seg_len: int) -> Segments:
    """Frames 0..seg_len-1, seg_len..2*seg_len-1, ... of each utterance (the remainder and
    utterances shorter than seg_len are not used), normalised with `mvn`."""
    utts = sorted(feats)
    xs, utt_index, starts = [], [], []
    for i, utt in enumerate(utts):
        count = feats[utt].shape[0] // seg_len
        if count:
            norm = mvn.apply(feats[utt][:count * seg_len])
            xs.append(norm.reshape(count, seg_len, -1))
            utt_index.append(np.full(count, i))
            starts.append(np.arange(count) * seg_len)
    if not xs:
        raise FhvaeError(f"no utterance has a whole {seg_len}-frame segment")
    return Segments(np.concatenate(xs), np.concatenate(utt_index), np.concatenate(starts), utts)


def _device(model: FHVAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_means(model: FHVAE, x: np.ndarray,
                 z2: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means (z1, z2) of normalised segments (N, L, F); z1 is encoded given z2
    (the segment's own posterior mean unless `z2` is given)."""
    model.eval()
    device = _device(model)
    z1_out, z2_out = [], []
    for lo in range(0, x.shape[0], BATCH):
        xb = torch.from_numpy(x[lo:lo + BATCH]).to(device)
        z2b = (model.encode_z2(xb)[0] if z2 is None
               else torch.from_numpy(z2[lo:lo + BATCH]).to(device))
        z1_out.append(model.encode_z1(xb, z2b)[0].float().cpu().numpy())
        z2_out.append(z2b.float().cpu().numpy())
    return np.concatenate(z1_out), np.concatenate(z2_out)


@torch.no_grad()
def encode_z2_means(model: FHVAE, x: np.ndarray) -> np.ndarray:
    """Posterior means of z2 only (N, z2_dim)."""
    model.eval()
    device = _device(model)
    return np.concatenate([model.encode_z2(torch.from_numpy(x[lo:lo + BATCH]).to(device))[0]
                           .float().cpu().numpy() for lo in range(0, x.shape[0], BATCH)])


@torch.no_grad()
def decode_means(model: FHVAE, z1: np.ndarray, z2: np.ndarray, num_frames: int,
                 x: np.ndarray | None = None) -> np.ndarray:
    """Decoder means (N, num_frames, F) for rows of z1/z2, or, when the normalised segments
    `x` are given, log p(x | z1, z2) per segment (N,) in nats."""
    model.eval()
    device = _device(model)
    out = []
    for lo in range(0, z1.shape[0], BATCH):
        mu, logvar = model.decode(torch.from_numpy(z1[lo:lo + BATCH]).to(device),
                                  torch.from_numpy(z2[lo:lo + BATCH]).to(device), num_frames)
        if x is None:
            out.append(mu.float().cpu().numpy())
        else:
            xb = torch.from_numpy(x[lo:lo + BATCH]).to(device)
            out.append(log_normal(xb, mu, logvar).double().cpu().numpy())
    return np.concatenate(out)


def draw_other(rng: np.random.Generator, own: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """For each label in `own`, a uniformly drawn index into `pool` whose label differs.

    `pool` must hold at least two distinct labels."""
    idx = rng.integers(len(pool), size=len(own))
    clash = pool[idx] == own
    while clash.any():
        idx[clash] = rng.integers(len(pool), size=int(clash.sum()))
        clash = pool[idx] == own
    return idx


@dataclass
class SwapCost:
    label: str
    mean: float        # nats per segment, log p(own) - log p(swapped)
    stderr: float      # standard error of that mean over the segments


@dataclass
class SwapResult:
    num_segments: int
    num_utts: int
    seg_len: int
    log_px_own: float              # mean log p(x | own z1, z2), nats per segment
    z1_swap: SwapCost
    z2_utt_mean: SwapCost
    z2_other_utt: SwapCost

    @property
    def ratio(self) -> float:
        """cost(z2 -> own utterance mean) / cost(z1 swapped): 0 when z2 is purely sequence-level."""
        return self.z2_utt_mean.mean / self.z1_swap.mean


def _cost(label: str, own: np.ndarray, swapped: np.ndarray) -> SwapCost:
    diff = own - swapped
    stderr = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
    return SwapCost(label, float(diff.mean()), stderr)


def run_swap_test(model: FHVAE, mvn: MVN, feats: Mapping[str, np.ndarray], seed: int,
                  max_segments: int = 4000) -> SwapResult:
    """Swap costs on up to `max_segments` seeded segments of the raw features `feats`.

    Utterance means of z2 use every segment of the utterance, sampled or not."""
    seg_len = model.cfg.seg_len
    segs = cut_segments(feats, mvn, seg_len)
    if np.unique(segs.utt).size < 2:
        raise FhvaeError(f"swap test needs two utterances of at least {seg_len} frames")
    z2_all = encode_z2_means(model, segs.x)
    counts = np.bincount(segs.utt, minlength=len(segs.utts))
    sums = np.zeros((len(segs.utts), z2_all.shape[1]))
    np.add.at(sums, segs.utt, z2_all)
    utt_mean = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(segs.utt), min(len(segs.utt), max_segments), replace=False))
    x, utt = segs.x[pick], segs.utt[pick]
    if np.unique(utt).size < 2:
        raise FhvaeError(f"swap test: the {len(pick)} sampled segments come from one utterance; "
                         "sample more segments")
    z1, z2 = encode_means(model, x, z2_all[pick])
    partner = draw_other(rng, utt, utt)
    other_utt = np.flatnonzero(counts)[draw_other(rng, utt, np.flatnonzero(counts))]

    own = decode_means(model, z1, z2, seg_len, x)
    result = SwapResult(
        num_segments=len(pick), num_utts=int(np.unique(utt).size), seg_len=seg_len,
        log_px_own=float(own.mean()),
        z1_swap=_cost("z1 of a random segment of another utterance", own,
                      decode_means(model, z1[partner], z2, seg_len, x)),
        z2_utt_mean=_cost("z2 replaced by its own utterance's mean z2", own,
                          decode_means(model, z1, utt_mean[utt], seg_len, x)),
        z2_other_utt=_cost("z2 replaced by another utterance's mean z2", own,
                           decode_means(model, z1, utt_mean[other_utt], seg_len, x)))
    log.info("swap test on %d segments: z1 swap %.1f, z2 own-utterance mean %.1f, z2 other "
             "utterance %.1f nats per segment (ratio %.3f)", result.num_segments,
             result.z1_swap.mean, result.z2_utt_mean.mean, result.z2_other_utt.mean,
             result.ratio)
    return result
