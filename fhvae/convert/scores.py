"""Objective scores of whole converted utterances, by judges trained on real FBank.

  group     shrinkage LDA on the utterance mean + std of normalised FBank (the FBank
            statistics baseline of stage 5) of the enrolment utterances, labelled with the
            target factor (the speaker by default): is a converted utterance the TARGET's
            group, or still the source's?
  phone     shrinkage LDA on single normalised FBank frames (every 4th labelled frame of
            the enrolment utterances), labelled with the espeak phone of phone_ali.ctm:
            do the converted frames still say the SOURCE's phones, frame for frame?
  distortion  mel distortion (dB) between an FBank and the FBank re-analysed from the
            audio it was inverted to: what the inversion costs.

Each version of a source utterance is judged the same way: the real FBank and the FBank
re-analysed from its re-synthesis (the ceilings), its reconstruction (z1 with its own z2),
and the converted FBank and converted audio. Intervals: 95% percentile bootstrap over the
source speakers (each speaker's utterances resampled together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from fhvae.analysis.classifiers import fit_classifier
from fhvae.features.mvn import MVN
from fhvae.features.stats_embedding import stats_embeddings
from fhvae.io.labels import NO_LABEL

PHONE_STRIDE = 4
VERSIONS = ("source FBank", "source re-synthesised", "source reconstructed",
            "converted FBank", "converted audio")
# version -> the version its mel distortion is measured against
DISTORTION_OF = {"source re-synthesised": "source FBank", "source reconstructed": "source FBank",
                 "converted audio": "converted FBank"}


@dataclass
class Judges:
    """The classifiers, trained on real FBank of the enrolment utterances."""

    mvn: MVN
    group: object
    phone: object | None               # None: fewer than two phones labelled
    phones: dict[str, np.ndarray]      # utt -> (T,) phone per frame, NO_LABEL if none
    majority_phone: str = NO_LABEL     # the most frequent training phone

    def group_of(self, fbank: np.ndarray) -> str:
        _, meanstd = stats_embeddings([("x", fbank)], self.mvn)
        return str(self.group.predict(meanstd["x"][None, :])[0])

    def phone_hits(self, utt: str, fbank: np.ndarray) -> tuple[int, int]:
        """(frames whose predicted phone is the alignment's, labelled frames) of `utt`."""
        truth = self.phones[utt]
        rows = np.flatnonzero(truth != NO_LABEL)
        if self.phone is None or not rows.size:
            return 0, 0
        guess = self.phone.predict(self.mvn.apply(fbank[rows]))
        return int(np.sum(guess == truth[rows].astype(str))), int(rows.size)

    def phone_chance(self, utts: list[str]) -> float:
        """Frame accuracy of always answering the most frequent training phone."""
        truth = np.concatenate([self.phones[u] for u in utts])
        labelled = truth[truth != NO_LABEL]
        return float(np.mean(labelled == self.majority_phone)) if labelled.size else 0.0


def train_judges(feats: Mapping[str, np.ndarray], enrol: list[str],
                 utt2group: Mapping[str, str], phones: dict[str, np.ndarray],
                 mvn: MVN) -> Judges:
    """Fit the group and phone classifiers on the real FBank of `enrol`."""
    _, meanstd = stats_embeddings(((u, feats[u]) for u in enrol), mvn)
    group = fit_classifier(np.stack([meanstd[u] for u in enrol]),
                           np.array([utt2group[u] for u in enrol]))
    rows = {u: np.flatnonzero(phones[u] != NO_LABEL)[::PHONE_STRIDE] for u in enrol}
    x = np.concatenate([mvn.apply(feats[u][r]) for u, r in rows.items()])
    y = np.concatenate([phones[u][r] for u, r in rows.items()]).astype(str)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2:
        return Judges(mvn, group, None, phones)
    return Judges(mvn, group, fit_classifier(x, y), phones, str(classes[np.argmax(counts)]))


@dataclass
class VersionScore:
    """The judges' verdicts on one version of one source utterance."""

    group: str
    phone_correct: int
    phone_frames: int
    distortion_db: float = float("nan")


@dataclass
class PairScores:
    source: str
    source_group: str
    target: str
    speaker: str                   # the source's speaker: the bootstrap's unit
    versions: dict[str, VersionScore] = field(default_factory=dict)


def judge(judges: Judges, utt: str, fbanks: Mapping[str, np.ndarray],
          distortions: Mapping[str, float]) -> dict[str, VersionScore]:
    """Verdicts on every version of one source utterance."""
    out = {}
    for version, fbank in fbanks.items():
        correct, frames = judges.phone_hits(utt, fbank)
        out[version] = VersionScore(judges.group_of(fbank), correct, frames,
                                    distortions.get(version, float("nan")))
    return out


def speaker_interval(numer: np.ndarray, denom: np.ndarray, speakers: list[str], seed: int,
                     num_resamples: int = 1000) -> tuple[float, float]:
    """95% interval of sum(numer) / sum(denom) when speakers are resampled with
    replacement (every row of a drawn speaker counts once per draw)."""
    names, codes = np.unique(speakers, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, names.size, (num_resamples, names.size))
    counts = np.stack([np.bincount(d, minlength=names.size) for d in draws])[:, codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = (counts @ np.asarray(numer, float)) / (counts @ np.asarray(denom, float))
    ratios = ratios[np.isfinite(ratios)]
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


@dataclass
class Summary:
    """One row of the score table: ratio values with their speaker-bootstrap intervals."""

    version: str
    to_target: tuple[float, float, float]      # value, low, high
    to_source: tuple[float, float, float]
    phone_acc: tuple[float, float, float] | None     # None: no phone alignment
    distortion_db: tuple[float, float, float] | None


def _ratio(numer: np.ndarray, denom: np.ndarray, speakers: list[str],
           seed: int) -> tuple[float, float, float]:
    return (float(numer.sum() / denom.sum()), *speaker_interval(numer, denom, speakers, seed))


def summarise(scores: list[PairScores], seed: int) -> list[Summary]:
    """Per version: share judged the target's group, share judged the source's, phone
    accuracy against the source's alignment, mean distortion; with intervals."""
    speakers = [s.speaker for s in scores]
    ones = np.ones(len(scores))
    rows = []
    for version in VERSIONS:
        v = [s.versions[version] for s in scores]
        target = np.array([x.group == s.target for x, s in zip(v, scores)], float)
        source = np.array([x.group == s.source_group for x, s in zip(v, scores)], float)
        correct = np.array([x.phone_correct for x in v], float)
        frames = np.array([x.phone_frames for x in v], float)
        dist = np.array([x.distortion_db for x in v])
        rows.append(Summary(version, _ratio(target, ones, speakers, seed),
                            _ratio(source, ones, speakers, seed),
                            _ratio(correct, frames, speakers, seed) if frames.sum() else None,
                            _ratio(dist, ones, speakers, seed) if np.isfinite(dist).all()
                            else None))
    return rows


def scores_tsv(scores: list[PairScores]) -> str:
    """One line per pair and version: what each judge said (for paired comparisons)."""
    lines = ["source\tsource_group\ttarget\tspeaker\tversion\tjudged_group\tphone_correct"
             "\tphone_frames\tdistortion_db"]
    for s in scores:
        for version, v in s.versions.items():
            lines.append(f"{s.source}\t{s.source_group}\t{s.target}\t{s.speaker}\t{version}\t"
                         f"{v.group}\t{v.phone_correct}\t{v.phone_frames}\t"
                         f"{v.distortion_db:.4f}")
    return "\n".join(lines) + "\n"
