"""Does FHVAE augmentation help a recogniser in unseen conditions? The robust-ASR probe's
frame phone classifier trained three ways, tested per condition:

  (a) clean      clean close-talk training utterances only
  (b) +FHVAE     (a) plus those utterances decoded toward each noisy/channel condition
                 (fhvae augment, from unlabelled speech of the conditions)
  (c) +real      (a) plus real labelled speech of those conditions (the oracle)

Every system sees the same clean frames; (b) and (c) add their extra frames. Inputs are
what a recipe trains on: FBank with per-utterance CMVN, spliced over the model's window
(every 5th frame of 20), and FBank normalised with the model's global MVN, spliced the
same way. Phones with fewer than MIN_PHONE_FRAMES clean training frames are merged into
OTHER for all three. The share of the gap (b) closes is mean(b - a) / mean(c - a) over the
noisy and channel conditions. Intervals: 95% percentile intervals over resamples of the
evaluated set's speakers (every frame of a drawn speaker, once per draw), the same
resamples for all systems, so differences are paired.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fhvae.analysis.classifiers import fit_classifier
from fhvae.analysis.significance import percentile_interval
from fhvae.evaluate.asr_probe import (CLEAN, CLOSE, MIN_PHONE_FRAMES, OTHER, labelled_rows,
                                      splice)
from fhvae.errors import FhvaeError
from fhvae.features.mvn import MVN, utterance_cmvn
from fhvae.io.datadir import PHONE_CTM, UTT2CHANNEL, UTT2NOISE, UTT2SPK, DataDir
from fhvae.io.labels import read_ctm_frame_labels
from fhvae.progress import progress

INPUTS = ("FBank+CMVN spliced", "FBank spliced")
SYSTEMS = ("clean", "+FHVAE", "+real")


@dataclass
class Frames:
    """Every `stride`-th labelled frame of a set of utterances: inputs, phones, speakers,
    and the utterance of each row."""

    x: dict[str, np.ndarray]
    phone: np.ndarray
    spk: np.ndarray
    utt: np.ndarray

    @staticmethod
    def join(parts: Sequence["Frames"]) -> "Frames":
        return Frames({n: np.concatenate([p.x[n] for p in parts]) for n in INPUTS},
                      np.concatenate([p.phone for p in parts]),
                      np.concatenate([p.spk for p in parts]),
                      np.concatenate([p.utt for p in parts]))


def read_frames(data_dir: str | os.PathLike, mvn: MVN, seg_len: int, stride: int) -> Frames:
    """The probe's frames of a data dir with feats.scp, utt2spk and phone_ali.ctm."""
    data_dir = Path(data_dir)
    data = DataDir(data_dir)
    spk_of = data.table(UTT2SPK)
    feats = dict(data.feats(None, mvn.dim))
    phones = read_ctm_frame_labels(data_dir / PHONE_CTM,
                                   {u: f.shape[0] for u, f in feats.items()}, column="phone")
    rows = labelled_rows(phones, sorted(feats), stride)
    if not sum(r.size for r in rows.values()):
        raise FhvaeError(f"{data_dir / PHONE_CTM}: no labelled frame in {data_dir}")
    x = {"FBank+CMVN spliced": [splice(utterance_cmvn(feats[u]), r, seg_len)
                                for u, r in rows.items()],
         "FBank spliced": [splice(mvn.apply(feats[u]), r, seg_len) for u, r in rows.items()]}
    return Frames({n: np.concatenate(v) for n, v in x.items()},
                  np.concatenate([phones[u][r] for u, r in rows.items()]).astype(str),
                  np.concatenate([np.full(r.size, spk_of[u], dtype=object)
                                  for u, r in rows.items()]).astype(str),
                  np.concatenate([np.full(r.size, u, dtype=object)
                                  for u, r in rows.items()]).astype(str))


def kept_phones(clean: Frames) -> set[str]:
    """Phones with at least MIN_PHONE_FRAMES clean training frames."""
    phones, counts = np.unique(clean.phone, return_counts=True)
    return set(phones[counts >= MIN_PHONE_FRAMES].tolist())


def merged(phone: np.ndarray, kept: set[str]) -> np.ndarray:
    return np.where(np.isin(phone, list(kept)), phone, OTHER)


def eval_conditions(data_dir: str | os.PathLike) -> list[tuple[str, set[str], bool]]:
    """(name, utterances, is an away condition) of the evaluated set: clean close-talk, then
    each noise and each channel; away = a noise other than clean or a channel other than
    close (the conditions the gap is averaged over)."""
    data = DataDir(data_dir)
    noise, channel = data.table(UTT2NOISE), data.table(UTT2CHANNEL)
    out = [(f"{CLEAN}, {CLOSE}", {u for u in noise if noise[u] == CLEAN
                                  and channel.get(u) == CLOSE}, False)]
    for factor, labels, home in (("noise", noise, CLEAN), ("channel", channel, CLOSE)):
        for value in sorted(set(labels.values())):
            out.append((f"{factor} = {value}", {u for u, v in labels.items() if v == value},
                        value != home))
    return [c for c in out if c[1]]


@dataclass
class ConditionResult:
    name: str
    away: bool
    num_frames: int
    acc: dict[str, float]                          # system -> accuracy
    interval: dict[str, tuple[float, float]]       # system, "b-a", "c-a" -> 95% interval


@dataclass
class ProbeTable:
    """One input's per-condition results on one evaluated set, and the gap closed."""

    input: str
    conditions: list[ConditionResult]
    closure: float                                 # mean(b - a) / mean(c - a) over away
    closure_interval: tuple[float, float]


def speaker_weights(spk: np.ndarray, num_resamples: int, seed: int) -> np.ndarray:
    """(R, N) weight of each frame in R resamples of the speakers (drawn with replacement:
    a speaker drawn k times weighs k)."""
    speakers, code = np.unique(spk, return_inverse=True)
    rng = np.random.default_rng(seed)
    drawn = np.stack([np.bincount(rng.integers(0, speakers.size, speakers.size),
                                  minlength=speakers.size) for _ in range(num_resamples)])
    return drawn[:, code].astype(np.float64)


def finite_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of the resamples where the statistic is defined."""
    return percentile_interval(values[np.isfinite(values)])


def score_table(name: str, correct: dict[str, np.ndarray], test: Frames,
                conditions: list[tuple[str, set[str], bool]], num_resamples: int,
                seed: int) -> ProbeTable:
    """Accuracies per condition with speaker-bootstrap intervals, and the gap closed;
    `correct[system]` is (N,) 0/1 per test frame."""
    weights = speaker_weights(test.spk, num_resamples, seed)
    a, b, c = SYSTEMS
    results, full_gain, boot_gain = [], {"b": [], "c": []}, {"b": [], "c": []}
    for cond, utts, away in conditions:
        mask = np.isin(test.utt, list(utts))
        if not mask.any():
            continue
        w = weights[:, mask]
        total = w.sum(axis=1)
        total[total == 0] = np.nan      # a resample without this condition's speakers
        boot = {s: w @ correct[s][mask] / total for s in SYSTEMS}
        acc = {s: float(correct[s][mask].mean()) for s in SYSTEMS}
        interval = {s: finite_interval(boot[s]) for s in SYSTEMS}
        interval["b-a"] = finite_interval(boot[b] - boot[a])
        interval["c-a"] = finite_interval(boot[c] - boot[a])
        results.append(ConditionResult(cond, away, int(mask.sum()), acc, interval))
        if away:
            full_gain["b"].append(acc[b] - acc[a])
            full_gain["c"].append(acc[c] - acc[a])
            boot_gain["b"].append(boot[b] - boot[a])
            boot_gain["c"].append(boot[c] - boot[a])
    if not full_gain["c"]:
        raise FhvaeError("no noisy or channel condition in the evaluated set")
    closure = float(np.mean(full_gain["b"]) / np.mean(full_gain["c"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_closure = np.mean(boot_gain["b"], axis=0) / np.mean(boot_gain["c"], axis=0)
    return ProbeTable(name, results, closure, finite_interval(boot_closure))


@dataclass
class TrainedSystems:
    """The three classifiers of each input and the phone classes they share."""

    kept: set[str]
    classifiers: dict[str, dict]                   # input -> system -> classifier
    frames: dict[str, int]                         # system -> training frames


def train_systems(clean: Frames, augmented: Frames, real: Frames) -> TrainedSystems:
    """Fit (a), (b), (c) on each input."""
    kept = kept_phones(clean)
    sets = {"clean": Frames.join([clean]), "+FHVAE": Frames.join([clean, augmented]),
            "+real": Frames.join([clean, real])}
    classifiers = {n: {s: fit_classifier(f.x[n], merged(f.phone, kept)) for s, f in
                       progress(sets.items(), f"fit {n}")} for n in INPUTS}
    return TrainedSystems(kept, classifiers, {s: int(f.phone.size) for s, f in sets.items()})


def evaluate(systems: TrainedSystems, test: Frames,
             conditions: list[tuple[str, set[str], bool]], num_resamples: int = 1000,
             seed: int = 0) -> list[ProbeTable]:
    """One ProbeTable per input on one evaluated set."""
    truth = merged(test.phone, systems.kept)
    tables = []
    for name in INPUTS:
        correct = {s: (clf.predict(test.x[name]) == truth).astype(np.float64)
                   for s, clf in systems.classifiers[name].items()}
        tables.append(score_table(name, correct, test, conditions, num_resamples, seed))
    return tables


def render(table: ProbeTable) -> str:
    """A markdown table: accuracies with intervals per condition, and the gap closed."""
    pct = lambda v: f"{100 * v:.1f}"   # noqa: E731
    span = lambda i: f"[{100 * i[0]:.1f}, {100 * i[1]:.1f}]"   # noqa: E731
    rows = [f"| condition ({table.input}) | frames | (a) clean | (b) +FHVAE | (c) +real | "
            "b - a | c - a |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table.conditions:
        a, b, c = (r.acc[s] for s in SYSTEMS)
        rows.append(f"| {r.name}{'' if r.away else ' (home)'} | {r.num_frames} | "
                    + " | ".join(f"{pct(r.acc[s])} {span(r.interval[s])}" for s in SYSTEMS)
                    + f" | {pct(b - a)} {span(r.interval['b-a'])} | "
                      f"{pct(c - a)} {span(r.interval['c-a'])} |")
    rows.append(f"\nShare of the gap closed, mean(b - a) / mean(c - a) over the noisy and "
                f"channel conditions: **{table.closure:.2f}** "
                f"[{table.closure_interval[0]:.2f}, {table.closure_interval[1]:.2f}]")
    return "\n".join(rows) + "\n"
