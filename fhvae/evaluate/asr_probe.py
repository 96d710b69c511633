"""Robust-ASR check for z1, in the spirit of Hsu & Glass's FHVAE features for noise-robust ASR.

A linear frame phone classifier (espeak phones from phone_ali.ctm) is trained on clean
close-talk utterances of the TRAINING set and tested on every noise and channel condition
of the evaluated set, once per input: z1, z2, FBank (normalised with the model's MVN, as
the model sees it), z1+z2, FBank with per-utterance mean/variance normalisation (CMVN), and
both FBank inputs spliced over z1's window (every 5th frame of the 20), so that the comparison
with z1 is not one frame against twenty.
If z1 holds the content and not the sequence-level nuisance, its accuracy should drop less
than FBank's away from clean close-talk speech; z2 alone measures how much phone content
leaks into the sequence-level latent (53 phones: finer than the 3-class phone probe).

Stage 4 keeps only s-vectors of the training set by default, so the training-side z1/z2
are encoded here for a seeded subset of utterances: posterior means of the extractor's
window centred on each frame (inference.window_index), exactly the rows stage 4 would write,
but only for the frames the classifier uses.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from fhvae.analysis.classifiers import fit_classifier
from fhvae.evaluate.inputs import EvalSet
from fhvae.features.mvn import MVN, utterance_cmvn
from fhvae.inference import encode, window_index
from fhvae.io.datadir import PHONE_CTM, UTT2CHANNEL, UTT2NOISE, DataDir
from fhvae.io.labels import NO_LABEL, read_ctm_frame_labels
from fhvae.model import FHVAE

log = logging.getLogger(__name__)

INPUTS = ("z1", "z2", "FBank", "z1+z2", "FBank+CMVN", "FBank spliced", "FBank+CMVN spliced")
SPLICE_HOP = 5      # spliced FBank: every SPLICE_HOP-th frame of z1's window
CLEAN, CLOSE = "clean", "close"     # utt2noise / utt2channel labels of the training condition
MIN_PHONE_FRAMES = 50               # rarer phones in the training frames are merged into OTHER
OTHER = "other"
NEEDED = (UTT2NOISE, UTT2CHANNEL, PHONE_CTM)


@dataclass
class AsrCondition:
    condition: str
    num_utts: int
    num_frames: int
    chance: float                # always answering the most frequent training phone
    acc: dict[str, float]        # input name -> frame accuracy


@dataclass
class AsrProbeResult:
    num_train_utts: int
    num_train_frames: int
    num_classes: int             # kept phones, plus OTHER when some were merged
    num_merged: int              # phones merged into OTHER
    stride: int
    conditions: list[AsrCondition]


def labelled_rows(phones: Mapping[str, np.ndarray], utts: list[str],
                  stride: int) -> dict[str, np.ndarray]:
    """Every `stride`-th frame that has a phone label, per utterance."""
    return {u: np.flatnonzero(phones[u] != NO_LABEL)[::stride] for u in utts}


def splice(feats: np.ndarray, rows: np.ndarray, seg_len: int) -> np.ndarray:
    """The frames every SPLICE_HOP-th position of the edge-padded seg_len-frame window
    centred on each row (the window z1 is encoded from), on a grid through the row itself,
    concatenated: FBank sees the same context as z1."""
    centre = seg_len // 2
    columns = window_index(feats.shape[0], seg_len)[rows][:, centre % SPLICE_HOP::SPLICE_HOP]
    return feats[columns].reshape(len(rows), -1)


def probe_inputs(feats: Mapping[str, np.ndarray], rows: Mapping[str, np.ndarray], mvn: MVN,
                 z1: np.ndarray, z2: np.ndarray, seg_len: int) -> dict[str, np.ndarray]:
    """The probed representations (INPUTS) of the frames `rows` of each utterance, stacked in
    the order of `rows`; z1/z2 are those frames' latents, stacked the same way."""
    normalised = {u: mvn.apply(feats[u]) for u in rows}
    cmvn = {u: utterance_cmvn(feats[u]) for u in rows}
    return {"z1": z1, "z2": z2,
            "FBank": np.concatenate([normalised[u][r] for u, r in rows.items()]),
            "z1+z2": np.concatenate([z1, z2], axis=1),
            "FBank+CMVN": np.concatenate([cmvn[u][r] for u, r in rows.items()]),
            "FBank spliced": np.concatenate([splice(normalised[u], r, seg_len)
                                             for u, r in rows.items()]),
            "FBank+CMVN spliced": np.concatenate([splice(cmvn[u], r, seg_len)
                                                  for u, r in rows.items()])}


def clean_close_utts(train_data: str | os.PathLike) -> list[str]:
    data = DataDir(train_data)
    noise, channel = data.table(UTT2NOISE), data.table(UTT2CHANNEL)
    return sorted(u for u, n in noise.items() if n == CLEAN and channel.get(u) == CLOSE)


def skip_reason(train_data: str | os.PathLike, data: str | os.PathLike) -> str | None:
    """Why the probe cannot run here (a missing file or no clean close-talk training
    utterance), or None."""
    for directory in (Path(train_data), Path(data)):
        missing = [name for name in NEEDED if not (directory / name).is_file()]
        if missing:
            return f"No {', '.join(missing)} in `{directory}`: robust-ASR probe skipped."
    if not clean_close_utts(train_data):
        return (f"No utterance of `{train_data}` is labelled {CLEAN} and {CLOSE}: "
                "robust-ASR probe skipped.")
    return None


def _training_frames(model: FHVAE, mvn: MVN, train_data: Path, utts: list[str],
                     stride: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every `stride`-th labelled frame of `utts` with its phone; z1/z2 (posterior means, as
    stage 4 writes them by default) are encoded for those frames only, from the extractor's
    windows centred on them, which makes this `stride` times cheaper than full extraction."""
    feats = dict(DataDir(train_data).feats(utts, mvn.dim))
    phones = read_ctm_frame_labels(train_data / PHONE_CTM,
                                   {u: f.shape[0] for u, f in feats.items()}, column="phone")
    rows = labelled_rows(phones, utts, stride)
    seg_len = model.cfg.seg_len
    windows = np.concatenate([mvn.apply(feats[u])[window_index(len(feats[u]), seg_len)[r]]
                              for u, r in rows.items()])
    latents = encode(model, windows)
    return (probe_inputs(feats, rows, mvn, latents.z1.cpu().numpy(), latents.z2.cpu().numpy(),
                         seg_len),
            np.concatenate([phones[u][r] for u, r in rows.items()]).astype(str))


def conditions(evalset: EvalSet) -> list[tuple[str, list[str]]]:
    """(name, utterances): clean close-talk first (the training condition), then each noise
    type and each channel of the evaluated set."""
    noise, channel = evalset.factors["noise"], evalset.factors["channel"]
    out = [(f"{CLEAN}, {CLOSE} (training condition)",
            [u for u in evalset.utts if noise.get(u) == CLEAN and channel.get(u) == CLOSE])]
    for factor, labels in (("noise", noise), ("channel", channel)):
        for value in sorted(set(labels[u] for u in evalset.utts if u in labels)):
            out.append((f"{factor} = {value}", [u for u in evalset.utts if labels.get(u) == value]))
    return [(name, utts) for name, utts in out if utts]


def run_asr_probe(evalset: EvalSet, feats: Mapping[str, np.ndarray], model: FHVAE, mvn: MVN,
                  train_data: str | os.PathLike, data: str | os.PathLike, seed: int,
                  max_train_utts: int = 300, stride: int = 4) -> AsrProbeResult | None:
    """Train on up to `max_train_utts` seeded clean close-talk training utterances (every
    `stride`-th frame) and report frame phone accuracy per condition of `evalset`, whose raw
    features are `feats`; evaluated phones unseen in training count as errors. Check
    `skip_reason` first. None when the training frames hold fewer than two phone classes
    (after merging rare phones), e.g. a tiny training set."""
    train_data = Path(train_data)
    pool = clean_close_utts(train_data)
    rng = np.random.default_rng(seed)
    utts = sorted(rng.choice(pool, min(len(pool), max_train_utts), replace=False).tolist())
    x_train, y_train = _training_frames(model, mvn, train_data, utts, stride)
    phones, counts = np.unique(y_train, return_counts=True)
    rare = set(phones[counts < MIN_PHONE_FRAMES].tolist())
    kept = set(phones.tolist()) - rare
    y_train = np.where(np.isin(y_train, list(rare)), OTHER, y_train)
    classes, counts = np.unique(y_train, return_counts=True)
    if classes.size < 2:
        return None
    majority = classes[np.argmax(counts)]
    log.info("robust-ASR probe: %d training utterances, %d frames, %d phone classes (%d rare "
             "phones merged into '%s')", len(utts), y_train.size, classes.size, len(rare), OTHER)
    classifiers = {name: fit_classifier(x_train[name], y_train) for name in INPUTS}

    eval_phones = read_ctm_frame_labels(Path(data) / PHONE_CTM,
                                        {u: feats[u].shape[0] for u in evalset.utts},
                                        column="phone")
    results = []
    for name, cond_utts in conditions(evalset):
        rows = labelled_rows(eval_phones, cond_utts, stride)
        y_test = np.concatenate([eval_phones[u][r] for u, r in rows.items()]).astype(str)
        if not y_test.size:
            continue
        x_test = probe_inputs(feats, rows, mvn,
                              np.concatenate([evalset.z1[u][r] for u, r in rows.items()]),
                              np.concatenate([evalset.z2[u][r] for u, r in rows.items()]),
                              model.cfg.seg_len)
        y_test = np.where(np.isin(y_test, list(kept)), y_test, OTHER)
        results.append(AsrCondition(
            condition=name, num_utts=len(cond_utts), num_frames=int(y_test.size),
            chance=float(np.mean(y_test == majority)),
            acc={n: float(np.mean(classifiers[n].predict(x_test[n]) == y_test)) for n in INPUTS}))
        log.info("robust-ASR probe, %s: %s", name,
                 ", ".join(f"{n} {100 * a:.1f}%" for n, a in results[-1].acc.items()))
    return AsrProbeResult(num_train_utts=len(utts), num_train_frames=int(y_train.size),
                          num_classes=int(classes.size), num_merged=len(rare), stride=stride,
                          conditions=results)
