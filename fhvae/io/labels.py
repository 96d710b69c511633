"""Frame labels of a data dir: the phone class of every frame, from a phone CTM.

Stage 5's probes, the ASR probe, the conversion scores and the augmentation probe all
label frames the same way, so the CTM is read here once for all of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import AbstractSet

import numpy as np

from fhvae.errors import FhvaeError

# The label of a frame (or utterance) that has none.
NO_LABEL = ""
# Kaldi's frame shift and window length (s): frame i covers i*SHIFT .. i*SHIFT + LENGTH.
FRAME_SHIFT_S = 0.010
FRAME_LENGTH_S = 0.025


def read_ctm_frame_labels(path: str | os.PathLike, num_frames: dict[str, int],
                          column: str = "class") -> dict[str, np.ndarray]:
    """Class (or, with column="phone", phone) of the segment covering each frame centre, from
    `<utt> 1 <start> <dur> <phone> <class>` lines.

    Only utterances in `num_frames` are kept, and only their segments are held (a few
    utterances of a large training set's CTM, for the ASR probe); frames no segment covers
    get NO_LABEL. Every line is checked all the same.
    """
    field = {"phone": 4, "class": 5}[column]
    segments = _read_segments(Path(path), field, num_frames.keys())
    labels: dict[str, np.ndarray] = {}
    for utt, frames in num_frames.items():
        out = np.full(frames, NO_LABEL, dtype=object)
        segs = sorted(segments.get(utt, []))
        if segs:
            starts = np.array([s[0] for s in segs])
            ends = np.array([s[1] for s in segs])
            centres = np.arange(frames) * FRAME_SHIFT_S + FRAME_LENGTH_S / 2
            idx = np.searchsorted(starts, centres, side="right") - 1
            covered = (idx >= 0) & (centres < ends[np.maximum(idx, 0)])
            classes = np.array([s[2] for s in segs], dtype=object)
            out[covered] = classes[idx[covered]]
        labels[utt] = out
    return labels


def _read_segments(path: Path, field: int, utts: AbstractSet[str]
                   ) -> dict[str, list[tuple[float, float, str]]]:
    """utt -> (start, end, label of column `field`) of the CTM lines of `utts`, in file order."""
    segments: dict[str, list[tuple[float, float, str]]] = {}
    with open(path) as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            try:
                if len(fields) != 6:
                    raise ValueError
                start, dur = float(fields[2]), float(fields[3])
            except ValueError:
                raise FhvaeError(f"{path}:{lineno}: expected '<utt> <channel> <start-sec> "
                                 f"<dur-sec> <phone> <class>'") from None
            if dur < 0 or start < 0:
                raise FhvaeError(f"{path}:{lineno}: negative start or duration")
            if fields[0] in utts:
                segments.setdefault(fields[0], []).append((start, start + dur, fields[field]))
    return segments
