"""Tiny generated corpora for the sampler, loader and training tests (helpers, no tests).

Each speaker has a strong constant offset on its features, so sequences are easy to tell
apart and a few hundred steps of a tiny model already show learning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fhvae.data.index import SegmentIndex
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.io.tables import write_table


def make_data_dir(root: Path, num_spk: int = 6, utts_per_spk: int = 4, feat_dim: int = 80,
                  frames: tuple[int, int] = (60, 120), seed: int = 0,
                  utt_seed: int = 0) -> Path:
    """A Kaldi data dir with feats.scp (+ark), utt2num_frames and utt2spk.

    `seed` fixes the speakers (their offsets), `utt_seed` their utterances: a dev set of
    the same speakers with new utterances differs only in utt_seed.
    """
    offsets = np.random.default_rng(seed).normal(0.0, 3.0, (num_spk, feat_dim))
    rng = np.random.default_rng((seed, utt_seed))
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for s, offset in enumerate(offsets):
        for u in range(utts_per_spk):
            length = int(rng.integers(frames[0], frames[1] + 1))
            t = np.arange(length)[:, None]
            wave = np.sin(0.3 * t + np.arange(feat_dim)[None, :] * 0.1 * (u + 1))
            feats = offset + wave + 0.3 * rng.normal(size=(length, feat_dim))
            items.append((f"s{s}-u{u}", feats.astype(np.float32)))
    write_table(root / "feats.ark", root / "feats.scp", items)
    (root / "utt2num_frames").write_text("".join(f"{k} {v.shape[0]}\n" for k, v in items))
    (root / "utt2spk").write_text("".join(f"{k} {k.split('-')[0]}\n" for k, _ in items))
    return root


def make_index(root: Path, seq_unit: str = "utt", **kwargs) -> SegmentIndex:
    return SegmentIndex.build(make_data_dir(root, **kwargs), seq_unit=seq_unit, seg_len=20)


def index_mvn(index: SegmentIndex) -> MVN:
    return compute_mvn(index.read_utt(u) for u in range(index.num_utts))
