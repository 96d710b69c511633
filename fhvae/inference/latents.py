"""Frame-level z1/z2 and utterance s-vectors of raw feature matrices (what stage 4 writes).

An utterance of T frames yields exactly T rows of z1 and of z2, row t encoding the
edge-padded window centred on frame t (windows.window_index). z1 of a window is encoded
given z2 of the same window: the posterior means by default; with `sample=True`, one draw
from each posterior, using a generator seeded per utterance (from the seed and the
utterance id), so the draws do not depend on batching or on how the data is split into jobs.

s-vector. The MAP estimate of mu2 (the formula that resets the training table): the sum of
the z2 posterior means of the utterance's floor(T/seg_len) non-overlapping segments (a
remainder shorter than a segment is not used) divided by (N + sigma2_z2). These segments
are the windows of rows seg_len//2, seg_len//2 + seg_len, ..., so no second encoder pass is
needed. An utterance shorter than seg_len uses one edge-padded segment: the window of its
middle row T//2.

Speech-only pooling (`svector_pool="speech"`). Silent or noise-only windows carry the
channel and noise rather than the speaker, so the s-vector may pool only the segments
whose majority of frames (counted over the window, edge copies included) are voiced in
the data dir's vad.scp (as Kaldi's x-vector recipes drop unvoiced frames). An utterance
without a voiced segment keeps all of them (counted as `no_voiced`). z1/z2 are the same in
both modes.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

import numpy as np
import torch

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.inference.calls import encode, encode_z2, pool_mu2
from fhvae.inference.windows import IndexedWindows, speech_rows, svector_rows, window_index
from fhvae.model import FHVAE

logger = logging.getLogger(__name__)

TABLES = ("z1", "z2", "svector")
SVECTOR_POOLS = ("all", "speech")


@dataclass
class ExtractOptions:
    """How latents are computed; `batch_size` is the number of windows per encoder call."""

    sample: bool = False
    seed: int = 0
    batch_size: int = 4096
    svector_only: bool = False     # only the non-overlapping windows: ~seg_len times cheaper
    compress: bool = False         # z1/z2 as Kaldi compressed matrices (s-vectors never)
    svector_pool: str = "all"      # all segments, or "speech": those voiced in vad.scp

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables a job writes: s-vectors only, or z1/z2 as well."""
        return ("svector",) if self.svector_only else TABLES


@dataclass
class Latents:
    """One utterance's outputs: z1 (T, z1_dim), z2 (T, z2_dim), svector (z2_dim,);
    z1/z2 are None when only s-vectors were asked for."""

    z1: np.ndarray | None
    z2: np.ndarray | None
    svector: np.ndarray
    no_voiced: bool = False        # speech pooling found no voiced segment: used them all


@dataclass
class VoicedFrames:
    """Per-utterance 0/1 voicing decisions (a vad.scp) for speech-only s-vector pooling."""

    source: str                    # the vad.scp, named in errors
    frames: Mapping[str, np.ndarray]   # e.g. read from the vad.scp when asked for

    def of(self, key: str, num_frames: int) -> np.ndarray:
        """The decisions of one utterance, which must have one per feature frame."""
        voiced = self.frames.get(key)
        if voiced is None:
            raise FhvaeError(f"{self.source}: no entry for utterance '{key}'")
        if voiced.ndim != 1 or voiced.shape[0] != num_frames:
            raise FhvaeError(f"{self.source}: utterance '{key}' has {voiced.size} VAD values "
                             f"but {num_frames} feature frames")
        return voiced


def _utterance_noise(key: str, num_frames: int, model: FHVAE,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal draws for z2 and z1 of one utterance, reproducible from (seed, key)."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{key}".encode()))
    eps2 = torch.randn(num_frames, model.cfg.z2_dim, generator=gen)
    eps1 = torch.randn(num_frames, model.cfg.z1_dim, generator=gen)
    return eps2, eps1


def _check_features(key: str, feats: np.ndarray, feat_dim: int, source: str) -> None:
    if feats.ndim != 2 or feats.shape[1] != feat_dim:
        dim = feats.shape[1] if feats.ndim == 2 else f"shape {feats.shape}"
        raise FhvaeError(f"{source}: utterance '{key}' has feature dim {dim} "
                         f"but the model expects feat_dim {feat_dim}")
    if not np.isfinite(feats).all():
        raise FhvaeError(f"{source}: utterance '{key}' contains NaN or infinite features")


def _groups(utts: Iterable[tuple[str, np.ndarray]], model: FHVAE, source: str,
            min_frames: int) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Validated utterances gathered into groups of at least `min_frames` frames."""
    group: list[tuple[str, np.ndarray]] = []
    frames = 0
    for key, feats in utts:
        if feats.shape[0] == 0:
            logger.warning("%s: utterance '%s' has no frames; skipped", source, key)
            continue
        _check_features(key, feats, model.cfg.feat_dim, source)
        group.append((key, feats))
        frames += feats.shape[0]
        if frames >= min_frames:
            yield group
            group, frames = [], 0
    if group:
        yield group


def _pooled_rows(group: list[tuple[str, np.ndarray]], seg_len: int,
                 vad: VoicedFrames | None) -> tuple[list[np.ndarray], list[bool]]:
    """Per utterance, the rows pooled into its s-vector, and whether speech pooling found
    no voiced segment (then all segments are pooled)."""
    rows = [svector_rows(feats.shape[0], seg_len) for _, feats in group]
    no_voiced = [False] * len(group)
    if vad is not None:
        for i, (key, feats) in enumerate(group):
            voiced_rows = speech_rows(feats.shape[0], seg_len, vad.of(key, feats.shape[0]))
            no_voiced[i] = voiced_rows.size == 0
            if not no_voiced[i]:
                rows[i] = voiced_rows
    return rows, no_voiced


def _encode_group(model: FHVAE, mvn: MVN, group: list[tuple[str, np.ndarray]],
                  device: torch.device, opts: ExtractOptions,
                  vad: VoicedFrames | None) -> list[tuple[str, Latents]]:
    """Encode every window of a group of utterances, `opts.batch_size` windows at a time."""
    seg_len = model.cfg.seg_len
    lengths = [feats.shape[0] for _, feats in group]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    frames = torch.from_numpy(np.concatenate([mvn.apply(f) for _, f in group])).to(device)
    windows = np.concatenate([window_index(n, seg_len) + s for n, s in zip(lengths, starts)])
    seg_rows, no_voiced = _pooled_rows(group, seg_len, vad)
    seg_utt = torch.from_numpy(np.repeat(np.arange(len(group)), [len(r) for r in seg_rows]))
    seg_rows_all = np.concatenate([rows + s for rows, s in zip(seg_rows, starts)])
    if opts.svector_only:   # encode just the s-vector windows (z2 only)
        z2_means = encode_z2(model, IndexedWindows(
            frames, torch.from_numpy(windows[seg_rows_all]).to(device)), opts.batch_size).mean
        svectors = pool_mu2(z2_means, seg_utt, len(group), model.cfg.sigma2_z2).cpu().numpy()
        return [(key, Latents(None, None, svectors[i], no_voiced[i]))
                for i, (key, _) in enumerate(group)]
    noise = None
    if opts.sample:
        draws = [_utterance_noise(key, n, model, opts.seed) for (key, _), n in zip(group, lengths)]
        noise = (torch.cat([e2 for e2, _ in draws]).to(device),
                 torch.cat([e1 for _, e1 in draws]).to(device))
    out = encode(model, IndexedWindows(frames, torch.from_numpy(windows).to(device)),
                 opts.batch_size, noise)
    pooled = out.z2_post.mean[torch.from_numpy(seg_rows_all).to(device)]
    svectors = pool_mu2(pooled, seg_utt, len(group), model.cfg.sigma2_z2).cpu().numpy()
    z1_all, z2_all = out.z1.float().cpu().numpy(), out.z2.float().cpu().numpy()
    return [(key, Latents(z1_all[s:e], z2_all[s:e], svectors[i], no_voiced[i]))
            for i, ((key, _), s, e) in enumerate(zip(group, starts[:-1], starts[1:]))]


def extract_latents(model: FHVAE, mvn: MVN, utts: Iterable[tuple[str, np.ndarray]],
                    device: torch.device | None = None, opts: ExtractOptions | None = None,
                    source: str = "input",
                    vad: VoicedFrames | None = None) -> Iterator[tuple[str, Latents]]:
    """Yield (key, Latents) for raw (T, F) feature matrices, in input order.

    Utterances are batched together so that every encoder call sees about
    `opts.batch_size` windows. `source` names the input in error messages. `vad` is
    needed, and used, only when `opts.svector_pool` is "speech". The model is moved to
    `device` first (None: it stays where it is).
    """
    opts = opts or ExtractOptions()
    if opts.svector_pool not in SVECTOR_POOLS:
        raise FhvaeError(f"unknown s-vector pooling '{opts.svector_pool}' (all or speech)")
    if opts.svector_pool == "speech" and vad is None:
        raise FhvaeError("speech-only s-vector pooling needs the utterances' VAD decisions")
    vad = vad if opts.svector_pool == "speech" else None
    model = (model if device is None else model.to(device)).eval()
    for group in _groups(utts, model, source, opts.batch_size):
        yield from _encode_group(model, mvn, group, model.mu2.device, opts, vad)
