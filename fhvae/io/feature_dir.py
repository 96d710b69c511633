"""A Kaldi data dir whose features are the matrices of a given scp (e.g. the z1 latents).

Kaldi tools take features as a data dir, not as a bare scp: nnet3 training scripts want
feats.scp with utt2spk/spk2utt, utt2num_frames, frame_shift and, for apply-cmvn,
per-speaker cmvn.scp. This writes such a dir next to the source data dir, so that the
latents drop into a Kaldi recipe the way data/<set>_hires does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.datadir import CMVN_SCP, FEATS_SCP, FRAME_SHIFT, UTT2NUM_FRAMES, UTT2SPK, DataDir
from fhvae.io.subset import write_filtered
from fhvae.io.tables import read_scp, write_table
from fhvae.io.text_table import read_kv

# Kaldi's default --frame-shift (10 ms), used when the source data dir has no frame_shift.
DEFAULT_FRAME_SHIFT = "0.01"
# In a latent data dir: the model whose latents it holds (one absolute path). Two models'
# latents under one name would let a recipe train on the wrong features without a word.
MODEL_FILE = "fhvae_model"


def check_owner(dst: str | os.PathLike, model: str | os.PathLike) -> None:
    """Refuse `dst` when it holds another model's latents (its MODEL_FILE names another
    model); a dir without one (none yet, or not a latent dir) is free."""
    owner_file = Path(dst) / MODEL_FILE
    if not owner_file.is_file():
        return
    owner = owner_file.read_text().strip()
    if owner != str(Path(model).resolve()):
        raise FhvaeError(f"{dst}: holds the latents of {owner}, not of {Path(model).resolve()}; "
                         f"write them under another --data-out-prefix (or remove {dst})")


def cmvn_stats(feats: np.ndarray) -> np.ndarray:
    """CMVN statistics as Kaldi's compute-cmvn-stats stores them: a 2 x (D+1) double
    matrix, row 0 = per-dimension sums and the frame count, row 1 = sums of squares, 0."""
    feats = np.asarray(feats, dtype=np.float64)
    stats = np.zeros((2, feats.shape[1] + 1), dtype=np.float64)
    stats[0, :-1] = feats.sum(axis=0)
    stats[0, -1] = feats.shape[0]
    stats[1, :-1] = np.square(feats).sum(axis=0)
    return stats


def write_feature_dir(src: str | os.PathLike, dst: str | os.PathLike,
                      feats_scp: str | os.PathLike, cmvn_ark: str | os.PathLike,
                      model: str | os.PathLike | None = None) -> int:
    """Make `dst` a copy of data dir `src` restricted to the utterances of `feats_scp`,
    whose features are those of `feats_scp`.

    Every table of `src` (text, utt2dur, utt2<label>, spk2gender, wav.scp, segments...)
    is copied for those utterances; feats.scp, utt2num_frames (rows of each matrix),
    frame_shift (from `src`, else 10 ms) and per-speaker cmvn.scp (as `compute-cmvn-stats
    --spk2utt` writes it, stats in `cmvn_ark`) are new. The dir is built under a temporary
    name and then replaces `dst`. Returns the number of utterances. With `model`, `dst`
    records it (MODEL_FILE) and is refused if it holds another model's latents.
    """
    src, dst, feats_scp = Path(src), Path(dst), Path(feats_scp)
    if dst.resolve() == src.resolve():
        raise FhvaeError(f"{dst}: the feature dir would replace its source data dir")
    if model is not None:
        check_owner(dst, model)
    source = DataDir(src)
    spk_of = source.table(UTT2SPK)
    num_frames: list[tuple[str, int]] = []
    spk_stats: dict[str, np.ndarray] = {}
    for utt, feats in read_scp(feats_scp):
        if utt not in spk_of:
            raise FhvaeError(f"{source.utt2spk}: no speaker for utterance '{utt}' of {feats_scp}")
        if feats.ndim != 2:
            raise FhvaeError(f"{feats_scp}: '{utt}' is not a matrix")
        num_frames.append((utt, feats.shape[0]))
        stats = cmvn_stats(feats)
        spk = spk_of[utt]
        spk_stats[spk] = spk_stats[spk] + stats if spk in spk_stats else stats

    tmp = dst.parent / f".{dst.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_filtered(source, tmp, {utt for utt, _ in num_frames})
        out = DataDir(tmp)
        out.write(FEATS_SCP, read_kv(feats_scp))
        out.write(UTT2NUM_FRAMES, num_frames)
        shift = source.file(FRAME_SHIFT)
        out.write_text(FRAME_SHIFT, shift.read_text() if shift.is_file()
                       else DEFAULT_FRAME_SHIFT + "\n")
        if model is not None:
            out.write_text(MODEL_FILE, f"{Path(model).resolve()}\n")
        spks = sorted(spk_stats, key=str.encode)
        write_table(cmvn_ark, out.file(CMVN_SCP), ((s, spk_stats[s]) for s in spks),
                    dtype=np.float64)
        shutil.rmtree(dst, ignore_errors=True)
        os.replace(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return len(num_frames)
