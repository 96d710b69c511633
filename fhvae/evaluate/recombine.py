"""Re-combination figure (like paper Fig. 4): decode z1 of segment A with z2 of segment B.

Each decoded segment should keep A's content (segment-level factors: phones) and take
B's sequence-level factors (speaker, noise, channel). Posterior means are used throughout,
so the figure is deterministic for a given seed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.patches import Rectangle
from matplotlib.figure import Figure

from fhvae.errors import FhvaeError
from fhvae.evaluate.inputs import EvalSet, iter_feats
from fhvae.evaluate.plotting import save_figure
from fhvae.features.mvn import MVN
from fhvae.model import FHVAE

log = logging.getLogger(__name__)

OTHER_FACTORS = ("noise", "channel", "gender")


@dataclass
class Segment:
    utt: str
    start: int
    feats: np.ndarray          # raw (T_utt, F) features of the whole utterance

    def window(self, begin: int, length: int) -> np.ndarray:
        return self.feats[begin:begin + length]


def loudest_start(feats: np.ndarray, seg_len: int) -> int:
    """Start of the seg_len-frame window with the highest mean log-energy (avoids silence)."""
    energy = np.r_[0.0, np.cumsum(feats.mean(axis=1, dtype=np.float64))]
    return int(np.argmax(energy[seg_len:] - energy[:-seg_len]))


def choose_utterances(evalset: EvalSet, seed: int, num_a: int, num_b: int,
                      min_frames: int) -> tuple[list[str], list[str]]:
    """B: utterances of different speakers, preferring ones whose other labels
    (noise/channel/gender) also differ. A: one utterance from each of `num_a` speakers,
    other than B's speakers when there are enough."""
    rng = np.random.default_rng(seed)
    long_enough = [u for u in evalset.utts if evalset.z1[u].shape[0] >= min_frames]
    order = [long_enough[i] for i in rng.permutation(len(long_enough))]
    spk = evalset.utt2spk

    def condition(utt: str) -> tuple[str, ...]:
        return tuple(evalset.factors[f].get(utt, "") for f in OTHER_FACTORS if f in evalset.factors)

    def pick(candidates: list[str], count: int, strict: bool) -> list[str]:
        """Up to `count` of `candidates`, in order, with distinct speakers (and conditions)."""
        picked: list[str] = []
        for utt in candidates:
            if len(picked) == count:
                break
            if spk[utt] in {spk[p] for p in picked}:
                continue
            if strict and condition(utt) in {condition(p) for p in picked}:
                continue
            picked.append(utt)
        return picked

    utts_b = pick(order, num_b, strict=True)
    if len(utts_b) < num_b:
        utts_b = pick(order, num_b, strict=False)
    spk_b = {spk[u] for u in utts_b}
    utts_a = pick([u for u in order if spk[u] not in spk_b], num_a, strict=False)
    if len(utts_a) < num_a:          # too few speakers to keep A and B apart
        utts_a = pick([u for u in order if u not in utts_b], num_a, strict=False)
    if not utts_a:                   # a single speaker: A and B differ in utterance only
        utts_a = [u for u in order if u not in utts_b][:num_a]
    if not utts_a or not utts_b:
        raise FhvaeError(f"re-combination needs two utterances of at least {min_frames} "
                         f"frames; the evaluated set has {len(long_enough)}")
    return utts_a, utts_b


@torch.no_grad()
def recombine(model: FHVAE, mvn: MVN, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
    """Raw (n_a, L, F) and (n_b, L, F) segments -> decoded (n_b, n_a, L, F) in raw feature scale."""
    model.eval()
    device = next(model.parameters()).device
    x_a = torch.from_numpy(mvn.apply(seg_a)).to(device)
    x_b = torch.from_numpy(mvn.apply(seg_b)).to(device)
    z1_a = model(x_a, sample=False).z1_mu
    z2_b, _ = model.encode_z2(x_b)
    rows = []
    for i in range(z2_b.shape[0]):
        x_mu, _ = model.decode(z1_a, z2_b[i].expand(z1_a.shape[0], -1), seg_a.shape[1])
        rows.append(x_mu.cpu().numpy() * mvn.std + mvn.mean)
    return np.stack(rows)


def _show(ax, mat: np.ndarray, vmin: float, vmax: float) -> None:
    """Frames on the horizontal axis, mel bins upwards."""
    ax.imshow(mat.T, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def make_recombine_figure(evalset: EvalSet, data_dir: str | os.PathLike, model: FHVAE, mvn: MVN,
                          path: str | os.PathLike, seed: int, num_a: int = 8, num_b: int = 3,
                          context: int = 60) -> Path:
    """Write the A (top row) x B (left column, in context, boxed red) re-combination grid."""
    seg_len = model.cfg.seg_len
    utts_a, utts_b = choose_utterances(evalset, seed, num_a, num_b, seg_len)
    feats = dict(iter_feats(data_dir, utts_a + utts_b, mvn.dim))
    segs_a = [Segment(u, loudest_start(feats[u], seg_len), feats[u]) for u in utts_a]
    segs_b = [Segment(u, loudest_start(feats[u], seg_len), feats[u]) for u in utts_b]
    raw_a = np.stack([s.window(s.start, seg_len) for s in segs_a])
    raw_b = np.stack([s.window(s.start, seg_len) for s in segs_b])
    decoded = recombine(model, mvn, raw_a, raw_b)
    log.info("re-combination: A=%s B=%s", utts_a, utts_b)

    vmin = float(min(raw_a.min(), raw_b.min(), decoded.min()))
    vmax = float(max(raw_a.max(), raw_b.max(), decoded.max()))
    ctx = max(context, seg_len)
    fig = Figure(figsize=(1.1 * (len(segs_a) + ctx / seg_len), 1.6 * (len(segs_b) + 1)))
    grid = fig.add_gridspec(len(segs_b) + 1, len(segs_a) + 1,
                            width_ratios=[ctx / seg_len] + [1] * len(segs_a), wspace=0.08,
                            hspace=0.25)
    corner = fig.add_subplot(grid[0, 0])
    corner.axis("off")
    corner.text(0.5, 0.5, "rows: z2 of x^B\ncolumns: z1 of x^A", ha="center", va="center",
                fontsize=8)
    for j, seg in enumerate(segs_a):
        ax = fig.add_subplot(grid[0, j + 1])
        _show(ax, raw_a[j], vmin, vmax)
        ax.set_title(f"A{j + 1}: {evalset.utt2spk[seg.utt]}", fontsize=7)
    for i, seg in enumerate(segs_b):
        num_frames = seg.feats.shape[0]
        begin = int(np.clip(seg.start - (ctx - seg_len) // 2, 0, max(0, num_frames - ctx)))
        ax = fig.add_subplot(grid[i + 1, 0])
        _show(ax, seg.window(begin, ctx), vmin, vmax)
        ax.add_patch(Rectangle((seg.start - begin - 0.5, -0.5), seg_len, mvn.dim, fill=False,
                               edgecolor="red", linewidth=2))
        ax.set_ylabel(f"B{i + 1}: {evalset.utt2spk[seg.utt]}", fontsize=7)
        for j in range(len(segs_a)):
            _show(fig.add_subplot(grid[i + 1, j + 1]), decoded[i, j], vmin, vmax)
    fig.suptitle("Decoding z1 of x^A with z2 of x^B (posterior means, FBank, mel upwards)",
                 fontsize=9)
    save_figure(fig, path)
    return Path(path)
