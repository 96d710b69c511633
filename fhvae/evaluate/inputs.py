"""Reading what stage 5 evaluates: a data dir joined with its latents dir (stage 4), with
errors that name the file and utterance."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.io.datadir import PHONE_CTM, UTT2NUM_FRAMES, DataDir
from fhvae.io.labels import read_ctm_frame_labels
from fhvae.io.tables import check_known, read_vectors

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """Latents and labels of the evaluated utterances (sorted keys)."""

    utts: list[str]
    factors: dict[str, dict[str, str]]          # factor -> utt -> label (available factors only)
    z1: dict[str, np.ndarray]                   # (T, z1_dim)
    z2: dict[str, np.ndarray]                   # (T, z2_dim)
    svector: dict[str, np.ndarray]
    phone_class: dict[str, np.ndarray] | None   # utt -> (T,) class per frame, NO_LABEL if none

    @property
    def utt2spk(self) -> dict[str, str]:
        return self.factors["speaker"]


def load_eval_set(data_dir: str | os.PathLike, latents_dir: str | os.PathLike) -> EvalSet:
    """Join a data dir with its latents; every latent key must be a known utterance."""
    data, latents_dir = DataDir(data_dir), Path(latents_dir)
    factors = data.factors()
    utt2spk = factors["speaker"]
    svector = read_vectors(latents_dir / "svector.scp")
    z1 = read_vectors(latents_dir / "z1.scp")
    z2 = read_vectors(latents_dir / "z2.scp")
    for name, table in (("svector.scp", svector), ("z1.scp", z1), ("z2.scp", z2)):
        check_known(latents_dir / name, table, utt2spk, data.utt2spk)
    utts = sorted(u for u in svector if u in z1 and u in z2)
    missing = len(utt2spk) - len(utts)
    if missing:
        log.warning("%d of %d utterances in %s lack latents in %s; evaluating the rest",
                    missing, len(utt2spk), data, latents_dir)
    if not utts:
        raise FhvaeError(f"{latents_dir}: no utterance has svector, z1 and z2")
    num_frames_file = data.file(UTT2NUM_FRAMES)
    expected = ({u: int(n) for u, n in data.pairs(UTT2NUM_FRAMES)}
                if num_frames_file.is_file() else {})
    for utt in utts:
        if z1[utt].ndim != 2 or z2[utt].ndim != 2 or z1[utt].shape[0] != z2[utt].shape[0]:
            raise FhvaeError(f"{latents_dir}: z1/z2 of '{utt}' are not matrices with equal rows "
                             f"({z1[utt].shape} vs {z2[utt].shape})")
        if utt in expected and z1[utt].shape[0] != expected[utt]:
            raise FhvaeError(f"{latents_dir / 'z1.scp'}: '{utt}' has {z1[utt].shape[0]} rows but "
                             f"{num_frames_file} says {expected[utt]} frames")
    ctm = data.file(PHONE_CTM)
    phone = (read_ctm_frame_labels(ctm, {u: z1[u].shape[0] for u in utts})
             if ctm.is_file() else None)
    keep = set(utts)
    return EvalSet(utts=utts,
                   factors={f: {u: lab[u] for u in utts if u in lab} for f, lab in factors.items()},
                   z1={u: z1[u] for u in utts}, z2={u: z2[u] for u in utts},
                   svector={u: v for u, v in svector.items() if u in keep},
                   phone_class=phone)
