"""Reading what stage 5 evaluates: latents dirs (stage 4), data-dir labels, phone alignments
and the FBank-statistics baseline embeddings, with errors that name the file and utterance."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN
from fhvae.io.datadir import read_dict
from fhvae.io.rxfile import read_matrix
from fhvae.io.tables import read_scp

log = logging.getLogger(__name__)

# Sequence-level factors and the data-dir file holding each (`<utt> <label>` lines).
FACTOR_FILES = {"speaker": "utt2spk", "noise": "utt2noise", "channel": "utt2channel",
                "gender": "utt2gender"}
PHONE_CTM = "phone_ali.ctm"
FRAME_SHIFT = 0.010
FRAME_LENGTH = 0.025
NO_LABEL = ""


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


def read_vectors(scp: str | os.PathLike) -> dict[str, np.ndarray]:
    return dict(read_scp(scp))


def check_known(scp: str | os.PathLike, table: Mapping[str, object],
                utt2spk: Mapping[str, str], utt2spk_path: str | os.PathLike) -> None:
    """Every key of a table read from `scp` must be an utterance of the data dir."""
    unknown = next((u for u in table if u not in utt2spk), None)
    if unknown is not None:
        raise FhvaeError(f"{scp}: utterance '{unknown}' is not in {utt2spk_path}")


def read_factors(data_dir: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Every sequence-level label file present in the data dir (utt2spk is required)."""
    data_dir = Path(data_dir)
    factors = {"speaker": read_dict(data_dir / "utt2spk")}
    for factor, name in FACTOR_FILES.items():
        if factor != "speaker" and (data_dir / name).is_file():
            factors[factor] = read_dict(data_dir / name)
    return factors


def read_ctm_frame_labels(path: str | os.PathLike, num_frames: dict[str, int],
                          column: str = "class") -> dict[str, np.ndarray]:
    """Class (or, with column="phone", phone) of the segment covering each frame centre, from
    `<utt> 1 <start> <dur> <phone> <class>` lines.

    Only utterances in `num_frames` are kept; frames no segment covers get NO_LABEL.
    """
    field = {"phone": 4, "class": 5}[column]
    path = Path(path)
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
            segments.setdefault(fields[0], []).append((start, start + dur, fields[field]))
    labels: dict[str, np.ndarray] = {}
    for utt, frames in num_frames.items():
        out = np.full(frames, NO_LABEL, dtype=object)
        segs = sorted(segments.get(utt, []))
        if segs:
            starts = np.array([s[0] for s in segs])
            ends = np.array([s[1] for s in segs])
            centres = np.arange(frames) * FRAME_SHIFT + FRAME_LENGTH / 2
            idx = np.searchsorted(starts, centres, side="right") - 1
            covered = (idx >= 0) & (centres < ends[np.maximum(idx, 0)])
            classes = np.array([s[2] for s in segs], dtype=object)
            out[covered] = classes[idx[covered]]
        labels[utt] = out
    return labels


def load_eval_set(data_dir: str | os.PathLike, latents_dir: str | os.PathLike) -> EvalSet:
    """Join a data dir with its latents; every latent key must be a known utterance."""
    data_dir, latents_dir = Path(data_dir), Path(latents_dir)
    factors = read_factors(data_dir)
    utt2spk = factors["speaker"]
    svector = read_vectors(latents_dir / "svector.scp")
    z1 = read_vectors(latents_dir / "z1.scp")
    z2 = read_vectors(latents_dir / "z2.scp")
    for name, table in (("svector.scp", svector), ("z1.scp", z1), ("z2.scp", z2)):
        check_known(latents_dir / name, table, utt2spk, data_dir / "utt2spk")
    utts = sorted(u for u in svector if u in z1 and u in z2)
    missing = len(utt2spk) - len(utts)
    if missing:
        log.warning("%d of %d utterances in %s lack latents in %s; evaluating the rest",
                    missing, len(utt2spk), data_dir, latents_dir)
    if not utts:
        raise FhvaeError(f"{latents_dir}: no utterance has svector, z1 and z2")
    num_frames_file = data_dir / "utt2num_frames"
    expected = ({u: int(n) for u, n in read_dict(num_frames_file).items()}
                if num_frames_file.is_file() else {})
    for utt in utts:
        if z1[utt].ndim != 2 or z2[utt].ndim != 2 or z1[utt].shape[0] != z2[utt].shape[0]:
            raise FhvaeError(f"{latents_dir}: z1/z2 of '{utt}' are not matrices with equal rows "
                             f"({z1[utt].shape} vs {z2[utt].shape})")
        if utt in expected and z1[utt].shape[0] != expected[utt]:
            raise FhvaeError(f"{latents_dir / 'z1.scp'}: '{utt}' has {z1[utt].shape[0]} rows but "
                             f"{num_frames_file} says {expected[utt]} frames")
    ctm = data_dir / PHONE_CTM
    phone = (read_ctm_frame_labels(ctm, {u: z1[u].shape[0] for u in utts})
             if ctm.is_file() else None)
    keep = set(utts)
    return EvalSet(utts=utts,
                   factors={f: {u: lab[u] for u in utts if u in lab} for f, lab in factors.items()},
                   z1={u: z1[u] for u in utts}, z2={u: z2[u] for u in utts},
                   svector={u: v for u, v in svector.items() if u in keep},
                   phone_class=phone)


def iter_feats(data_dir: str | os.PathLike, utts: Iterable[str] | None = None,
               dim: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Raw (T, F) features of `utts` (all if None) from feats.scp, loading only those asked for."""
    scp = Path(data_dir) / "feats.scp"
    entries = read_dict(scp)
    wanted = sorted(entries) if utts is None else list(utts)
    for utt in tqdm(wanted, desc=f"features {data_dir}", disable=None):
        if utt not in entries:
            raise FhvaeError(f"{scp}: no features for utterance '{utt}'")
        mat = read_matrix(entries[utt], f"{scp} ({utt})")
        if mat.ndim != 2 or (dim is not None and mat.shape[1] != dim):
            raise FhvaeError(f"{scp}: '{utt}' has shape {mat.shape}, expected (T, {dim})")
        yield utt, mat


def fbank_stats(data_dir: str | os.PathLike, mvn: MVN, utts: Iterable[str] | None = None
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The two FBank baselines of a data dir, read once: per-utterance means and
    means + standard deviations of MVN-normalised FBank from feats.scp."""
    return stats_embeddings(iter_feats(data_dir, utts, mvn.dim), mvn)


def stats_embeddings(feats: Iterable[tuple[str, np.ndarray]], mvn: MVN
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The FBank baselines of features already in memory (utt, raw (T, F) FBank): the mean
    (F dims) and the mean followed by the standard deviation (2F dims), the second-order
    statistics that mean FBank alone leaves out."""
    means, meanstds = {}, {}
    for utt, mat in feats:
        x = mvn.apply(mat)
        means[utt] = x.mean(axis=0)
        meanstds[utt] = np.concatenate([means[utt], x.std(axis=0)])
    return means, meanstds
