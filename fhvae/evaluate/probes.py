"""Linear probes: how well each latent variable predicts each labelled factor.

Inputs are segment-level vectors (one frame of z1/z2 every `stride` frames, i.e. one
per 20-frame segment by default) so that sequence- and segment-level factors are probed
on the same footing. Train and test sets never share an utterance; each speaker's
utterances are split between them so speaker probes work on unseen-speaker test sets.
A factor fixed per speaker (gender) is split by speaker instead: with the same speakers on
both sides a probe could score by recognising the speaker and looking up its label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from fhvae.analysis.classifiers import probe_accuracy
from fhvae.evaluate.inputs import EvalSet
from fhvae.io.labels import NO_LABEL

log = logging.getLogger(__name__)

PHONE_FACTOR = "phone class"


@dataclass
class ProbeResult:
    factor: str
    num_classes: int
    num_train: int
    num_test: int
    chance: float        # accuracy of always answering the most frequent training class
    acc_z1: float
    acc_z2: float
    split: str = "utterance"     # "utterance" or "speaker": what train and test never share


def split_utterances(utt2spk: Mapping[str, str], seed: int) -> tuple[list[str], list[str]]:
    """Seeded split putting floor(n/2) of each speaker's n utterances in the test side."""
    by_spk: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        by_spk.setdefault(utt2spk[utt], []).append(utt)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for spk in sorted(by_spk):
        utts = list(rng.permutation(by_spk[spk]))
        cut = len(utts) - len(utts) // 2
        train += utts[:cut]
        test += utts[cut:]
    return sorted(train), sorted(test)


def split_speakers(utt2spk: Mapping[str, str], seed: int) -> tuple[list[str], list[str]]:
    """Seeded split of the utterances by speaker: ceil(S/2) speakers train, the rest test."""
    speakers = sorted(set(utt2spk.values()))
    order = np.random.default_rng(seed).permutation(len(speakers))
    train_spk = {speakers[i] for i in order[:len(speakers) - len(speakers) // 2]}
    train = sorted(u for u, s in utt2spk.items() if s in train_spk)
    return train, sorted(u for u in utt2spk if utt2spk[u] not in train_spk)


def is_speaker_level(utt2lab: Mapping[str, str], utt2spk: Mapping[str, str]) -> bool:
    """True when every speaker's labelled utterances carry one label (e.g. gender)."""
    label_of: dict[str, str] = {}
    for utt, lab in utt2lab.items():
        if utt in utt2spk and label_of.setdefault(utt2spk[utt], lab) != lab:
            return False
    return True


def frame_indices(num_frames: int, stride: int) -> np.ndarray:
    """One frame per `stride`-frame segment: the centres of consecutive non-overlapping segments."""
    return np.arange(min(stride // 2, num_frames - 1), num_frames, stride)


def _stack(evalset: EvalSet, utts: list[str], labels: Mapping[str, np.ndarray],
           stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z1 rows, z2 rows and labels of the sampled frames that carry a label."""
    z1, z2, y = [], [], []
    for utt in utts:
        idx = frame_indices(evalset.z1[utt].shape[0], stride)
        lab = labels[utt][idx]
        keep = idx[lab != NO_LABEL]
        z1.append(evalset.z1[utt][keep])
        z2.append(evalset.z2[utt][keep])
        y.append(labels[utt][keep])
    return np.concatenate(z1), np.concatenate(z2), np.concatenate(y).astype(str)


def frame_labels(evalset: EvalSet) -> dict[str, dict[str, np.ndarray]]:
    """Per-frame label arrays for every available factor (sequence labels repeated)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for factor, utt2lab in evalset.factors.items():
        out[factor] = {u: np.full(evalset.z1[u].shape[0], utt2lab.get(u, NO_LABEL), dtype=object)
                       for u in evalset.utts}
    if evalset.phone_class is not None:
        out[PHONE_FACTOR] = evalset.phone_class
    return out


def run_probes(evalset: EvalSet, seed: int, stride: int = 20) -> list[ProbeResult]:
    """Probe every available factor; factors with fewer than 2 classes are skipped (logged)."""
    by_utterance = split_utterances(evalset.utt2spk, seed)
    by_speaker = split_speakers(evalset.utt2spk, seed)
    results = []
    for factor, labels in frame_labels(evalset).items():
        split = ("speaker" if factor not in ("speaker", PHONE_FACTOR)
                 and is_speaker_level(evalset.factors[factor], evalset.utt2spk) else "utterance")
        train_utts, test_utts = by_speaker if split == "speaker" else by_utterance
        z1_tr, z2_tr, y_tr = _stack(evalset, train_utts, labels, stride)
        z1_te, z2_te, y_te = _stack(evalset, test_utts, labels, stride)
        classes, counts = np.unique(y_tr, return_counts=True)
        if classes.size < 2 or y_te.size == 0:
            log.info("probe '%s' skipped: %d training classes, %d test frames",
                     factor, classes.size, y_te.size)
            continue
        log.info("probing '%s': %d classes, %d/%d train/test vectors",
                 factor, classes.size, y_tr.size, y_te.size)
        results.append(ProbeResult(
            factor=factor, num_classes=int(classes.size), num_train=int(y_tr.size),
            num_test=int(y_te.size), chance=float(np.mean(y_te == classes[np.argmax(counts)])),
            acc_z1=probe_accuracy(z1_tr, y_tr, z1_te, y_te, seed),
            acc_z2=probe_accuracy(z2_tr, y_tr, z2_te, y_te, seed), split=split))
    return results
