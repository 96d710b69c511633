"""Linear probes: how well each latent variable predicts each labelled factor.

Inputs are segment-level vectors (one frame of z1/z2 every `stride` frames, i.e. one
per 20-frame segment by default) so that sequence- and segment-level factors are probed
on the same footing. Train and test sets never share an utterance; each speaker's
utterances are split between them so speaker probes work on unseen-speaker test sets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fhvae.evaluate.inputs import NO_LABEL, EvalSet

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


def frame_indices(num_frames: int, stride: int) -> np.ndarray:
    """One frame per `stride`-frame segment: the centres of consecutive non-overlapping segments."""
    return np.arange(min(stride // 2, num_frames - 1), num_frames, stride)


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   y_test: np.ndarray, seed: int) -> float:
    """Test accuracy of a standardised multinomial logistic regression."""
    clf = make_pipeline(StandardScaler(),
                        LogisticRegression(max_iter=2000, random_state=seed))
    clf.fit(x_train, y_train)
    return float(np.mean(clf.predict(x_test) == y_test))


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
    train_utts, test_utts = split_utterances(evalset.utt2spk, seed)
    results = []
    for factor, labels in frame_labels(evalset).items():
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
            acc_z2=probe_accuracy(z2_tr, y_tr, z2_te, y_te, seed)))
    return results
