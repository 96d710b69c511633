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

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference import cut_segments, decode_log_likelihood, encode_z1, encode_z2
from fhvae.model import FHVAE

log = logging.getLogger(__name__)


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
    z2_all = encode_z2(model, segs.x).mean.cpu().numpy()
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
    z2 = z2_all[pick]
    z1 = encode_z1(model, x, z2).mean.cpu().numpy()
    partner = draw_other(rng, utt, utt)
    other_utt = np.flatnonzero(counts)[draw_other(rng, utt, np.flatnonzero(counts))]

    def log_px(z1_rows: np.ndarray, z2_rows: np.ndarray) -> np.ndarray:
        return decode_log_likelihood(model, x, z1_rows, z2_rows).cpu().numpy()

    own = log_px(z1, z2)
    result = SwapResult(
        num_segments=len(pick), num_utts=int(np.unique(utt).size), seg_len=seg_len,
        log_px_own=float(own.mean()),
        z1_swap=_cost("z1 of a random segment of another utterance", own,
                      log_px(z1[partner], z2)),
        z2_utt_mean=_cost("z2 replaced by its own utterance's mean z2", own,
                          log_px(z1, utt_mean[utt])),
        z2_other_utt=_cost("z2 replaced by another utterance's mean z2", own,
                           log_px(z1, utt_mean[other_utt])))
    log.info("swap test on %d segments: z1 swap %.1f, z2 own-utterance mean %.1f, z2 other "
             "utterance %.1f nats per segment (ratio %.3f)", result.num_segments,
             result.z1_swap.mean, result.z2_utt_mean.mean, result.z2_other_utt.mean,
             result.ratio)
    return result
