"""Re-combination (like paper Fig. 4): decode z1 of segment A with z2 of segment B.

Each decoded segment should keep A's content (segment-level factors: phones) and take
B's sequence-level factors (speaker, noise, channel). The figure shows a grid of them; the
score measures it with classifiers trained on real segments, over many (A, B) pairs.
Posterior means are used throughout, so both are deterministic for a given seed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.patches import Rectangle
from matplotlib.figure import Figure

from fhvae.analysis.classifiers import fit_classifier, pairwise_accuracy
from fhvae.analysis.figures import save_figure
from fhvae.errors import FhvaeError
from fhvae.evaluate.inputs import EvalSet
from fhvae.evaluate.probes import split_utterances
from fhvae.features.mvn import MVN
from fhvae.inference import Segments, cut_segments, decode_means, encode, encode_z2
from fhvae.io.datadir import DataDir
from fhvae.io.labels import NO_LABEL
from fhvae.model import FHVAE

log = logging.getLogger(__name__)

OTHER_FACTORS = ("noise", "channel", "gender")


@dataclass
class Segment:
    utt: str
    start: int
    feats: np.ndarray          # raw (T_utt, F) features of the whole utterance

    def window(self, begin: int, length: int) -> np.ndarray:
        return self.feats[begin:begin + length]


def loudest_start(feats: np.ndarray, seg_len: int) -> int:
    """Start of the seg_len-frame window with the highest mean log-energy (avoids silence)."""
    energy = np.r_[0.0, np.cumsum(feats.mean(axis=1, dtype=np.float64))]
    return int(np.argmax(energy[seg_len:] - energy[:-seg_len]))


def choose_utterances(evalset: EvalSet, seed: int, num_a: int, num_b: int,
                      min_frames: int) -> tuple[list[str], list[str]]:
    """B: utterances of different speakers, preferring ones whose other labels
    (noise/channel/gender) also differ. A: one utterance from each of `num_a` speakers,
    other than B's speakers when there are enough."""
    rng = np.random.default_rng(seed)
    long_enough = [u for u in evalset.utts if evalset.z1[u].shape[0] >= min_frames]
    order = [long_enough[i] for i in rng.permutation(len(long_enough))]
    spk = evalset.utt2spk

    def condition(utt: str) -> tuple[str, ...]:
        return tuple(evalset.factors[f].get(utt, "") for f in OTHER_FACTORS if f in evalset.factors)

    def pick(candidates: list[str], count: int, strict: bool) -> list[str]:
        """Up to `count` of `candidates`, in order, with distinct speakers (and conditions)."""
        picked: list[str] = []
        for utt in candidates:
            if len(picked) == count:
                break
            if spk[utt] in {spk[p] for p in picked}:
                continue
            if strict and condition(utt) in {condition(p) for p in picked}:
                continue
            picked.append(utt)
        return picked

    utts_b = pick(order, num_b, strict=True)
    if len(utts_b) < num_b:
        utts_b = pick(order, num_b, strict=False)
    spk_b = {spk[u] for u in utts_b}
    utts_a = pick([u for u in order if spk[u] not in spk_b], num_a, strict=False)
    if len(utts_a) < num_a:          # too few speakers to keep A and B apart
        utts_a = pick([u for u in order if u not in utts_b], num_a, strict=False)
    if not utts_a:                   # a single speaker: A and B differ in utterance only
        utts_a = [u for u in order if u not in utts_b][:num_a]
    if not utts_a or not utts_b:
        raise FhvaeError(f"re-combination needs two utterances of at least {min_frames} "
                         f"frames; the evaluated set has {len(long_enough)}")
    return utts_a, utts_b


def recombine(model: FHVAE, mvn: MVN, seg_a: np.ndarray, seg_b: np.ndarray) -> np.ndarray:
    """Raw (n_a, L, F) and (n_b, L, F) segments -> decoded (n_b, n_a, L, F) in raw feature scale."""
    z1_a = encode(model, mvn.apply(seg_a)).z1
    z2_b = encode_z2(model, mvn.apply(seg_b)).mean
    return np.stack([mvn.invert(decode_means(model, z1_a, z2_b[i:i + 1].repeat(len(z1_a), 1),
                                             seg_a.shape[1]).cpu().numpy())
                     for i in range(z2_b.shape[0])])


def recombine_with_reconstruction(model: FHVAE, mvn: MVN, seg_a: np.ndarray,
                                  seg_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`recombine`'s (n_b, n_a, L, F) grid, and each A segment decoded with its own z2,
    (n_a, L, F): the figure's reconstruction row shows how much of A the model reproduces at
    all, so that the blur of the re-combined rows is not mistaken for lost content."""
    grid = recombine(model, mvn, seg_a, np.concatenate([seg_b, seg_a]))
    n_a, n_b = len(seg_a), len(seg_b)
    return grid[:n_b], grid[n_b + np.arange(n_a), np.arange(n_a)]


def _show(ax, mat: np.ndarray, vmin: float, vmax: float) -> None:
    """Frames on the horizontal axis, mel bins upwards."""
    ax.imshow(mat.T, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def make_recombine_figure(evalset: EvalSet, data_dir: str | os.PathLike, model: FHVAE, mvn: MVN,
                          path: str | os.PathLike, seed: int, num_a: int = 8, num_b: int = 3,
                          context: int = 60) -> Path:
    """Write the A (top row; below it, its reconstruction) x B (left column, in context, boxed
    red) re-combination grid."""
    seg_len = model.cfg.seg_len
    utts_a, utts_b = choose_utterances(evalset, seed, num_a, num_b, seg_len)
    feats = dict(DataDir(data_dir).feats(utts_a + utts_b, mvn.dim))
    segs_a = [Segment(u, loudest_start(feats[u], seg_len), feats[u]) for u in utts_a]
    segs_b = [Segment(u, loudest_start(feats[u], seg_len), feats[u]) for u in utts_b]
    raw_a = np.stack([s.window(s.start, seg_len) for s in segs_a])
    raw_b = np.stack([s.window(s.start, seg_len) for s in segs_b])
    decoded, own = recombine_with_reconstruction(model, mvn, raw_a, raw_b)
    log.info("re-combination: A=%s B=%s", utts_a, utts_b)

    vmin = float(min(raw_a.min(), raw_b.min(), decoded.min(), own.min()))
    vmax = float(max(raw_a.max(), raw_b.max(), decoded.max(), own.max()))
    ctx = max(context, seg_len)
    fig = Figure(figsize=(1.1 * (len(segs_a) + ctx / seg_len), 1.6 * (len(segs_b) + 2)))
    grid = fig.add_gridspec(len(segs_b) + 2, len(segs_a) + 1,
                            width_ratios=[ctx / seg_len] + [1] * len(segs_a), wspace=0.08,
                            hspace=0.25)
    for row, text in enumerate(("rows below: z2 of x^B\ncolumns: z1 of x^A",
                                "x^A decoded with its own z2\n(reconstruction)")):
        corner = fig.add_subplot(grid[row, 0])
        corner.axis("off")
        corner.text(0.5, 0.5, text, ha="center", va="center", fontsize=8)
    for j, seg in enumerate(segs_a):
        ax = fig.add_subplot(grid[0, j + 1])
        _show(ax, raw_a[j], vmin, vmax)
        ax.set_title(f"A{j + 1}: {evalset.utt2spk[seg.utt]}", fontsize=7)
        _show(fig.add_subplot(grid[1, j + 1]), own[j], vmin, vmax)
    for i, seg in enumerate(segs_b):
        num_frames = seg.feats.shape[0]
        begin = int(np.clip(seg.start - (ctx - seg_len) // 2, 0, max(0, num_frames - ctx)))
        ax = fig.add_subplot(grid[i + 2, 0])
        _show(ax, seg.window(begin, ctx), vmin, vmax)
        ax.add_patch(Rectangle((seg.start - begin - 0.5, -0.5), seg_len, mvn.dim, fill=False,
                               edgecolor="red", linewidth=2))
        ax.set_ylabel(f"B{i + 1}: {evalset.utt2spk[seg.utt]}", fontsize=7)
        for j in range(len(segs_a)):
            _show(fig.add_subplot(grid[i + 2, j + 1]), decoded[i, j], vmin, vmax)
    fig.suptitle("Decoding z1 of x^A with z2 of x^B (posterior means, FBank, mel upwards)",
                 fontsize=9)
    save_figure(fig, path)
    return Path(path)


# ---- the re-combination score: does the decoded segment carry B's factors and A's content?

SCORED_FACTORS = ("speaker", "noise", "channel")
PAIR_FACTORS = ("noise", "channel")   # B differs from A in these when possible; gender left
                                      # random so that the speaker test is not a gender test
CONTENT_STRIDE = 4                    # content classifier: every 4th real frame


@dataclass
class RecombineCheck:
    """One classifier test on the decoded re-combinations (and, as a ceiling, on real segments)."""

    test: str
    num: int               # pairs (factor tests) or frames (content tests) scored
    chance: float
    acc_decoded: float
    acc_real: float        # the same classifier on the real segment whose label is wanted


@dataclass
class RecombineScore:
    num_pairs: int
    num_fit_utts: int      # evaluated utterances the classifiers were trained on
    num_pair_utts: int     # the other evaluated utterances, from which the pairs were drawn
    checks: list[RecombineCheck]


def choose_pairs(evalset: EvalSet, utts: list[str], seed: int,
                 num_pairs: int) -> list[tuple[str, str]]:
    """Seeded (A, B) utterance pairs of different speakers; B also differs from A in noise and
    channel (where labelled) whenever `utts` holds such an utterance."""
    rng = np.random.default_rng(seed)
    spk = evalset.utt2spk
    factors = [evalset.factors[f] for f in PAIR_FACTORS if f in evalset.factors]
    pairs = []
    for _ in range(num_pairs):
        a = utts[rng.integers(len(utts))]
        others = [u for u in utts if spk[u] != spk[a]]
        strict = [u for u in others if all(f.get(u) != f.get(a) for f in factors)]
        pool = strict or others
        if not pool:
            raise FhvaeError("re-combination score needs utterances of two speakers")
        pairs.append((a, pool[rng.integers(len(pool))]))
    return pairs


def _factor_check(factor: str, labels: dict[str, str], fit: Segments, pairs: list[tuple[str, str]],
                  decoded: np.ndarray, real_b: np.ndarray) -> RecombineCheck | None:
    """B's label against A's, on pairs whose labels differ, from segment-mean FBank."""
    y = np.array([labels.get(fit.utts[i], NO_LABEL) for i in fit.utt], dtype=object)
    keep = y != NO_LABEL
    if np.unique(y[keep]).size < 2:
        return None
    clf = fit_classifier(fit.x[keep].mean(axis=1), y[keep].astype(str))
    lab_a = np.array([labels.get(a, NO_LABEL) for a, _ in pairs])
    lab_b = np.array([labels.get(b, NO_LABEL) for _, b in pairs])
    known = set(clf.classes_)
    use = (lab_a != lab_b) & np.isin(lab_a, list(known)) & np.isin(lab_b, list(known))
    if not use.any():
        return None
    return RecombineCheck(
        test=f"{factor}: B's rather than A's", num=int(use.sum()), chance=0.5,
        acc_decoded=pairwise_accuracy(clf, decoded[use].mean(axis=1), lab_b[use], lab_a[use]),
        acc_real=pairwise_accuracy(clf, real_b[use].mean(axis=1), lab_b[use], lab_a[use]))


def _content_checks(phone_class: dict[str, np.ndarray], fit: Segments, seg_len: int,
                    pairs: list[tuple[str, str]], starts: np.ndarray, decoded: np.ndarray,
                    real_a: np.ndarray) -> list[RecombineCheck]:
    """Frame phone class of the decoded frames against A's alignment: plain accuracy, and
    A's class rather than B's on the frames where the two alignments differ."""
    dim = decoded.shape[-1]
    y = np.concatenate([phone_class[fit.utts[u]][s:s + seg_len]
                        for u, s in zip(fit.utt, fit.start)])
    sub = np.flatnonzero(y != NO_LABEL)[::CONTENT_STRIDE]
    y_fit = y[sub].astype(str)
    clf = fit_classifier(fit.x.reshape(-1, dim)[sub], y_fit)
    classes, counts = np.unique(y_fit, return_counts=True)
    truth = {i: np.concatenate([phone_class[pair[i]][s:s + seg_len]
                                for pair, s in zip(pairs, starts[:, i])]) for i in (0, 1)}
    flat_decoded, flat_real = decoded.reshape(-1, dim), real_a.reshape(-1, dim)
    checks = []
    known = np.isin(truth[0], classes)
    if known.any():
        checks.append(RecombineCheck(
            test="phone class of A's frames", num=int(known.sum()),
            chance=float(np.mean(truth[0][known] == classes[np.argmax(counts)])),
            acc_decoded=float(np.mean(clf.predict(flat_decoded[known]) == truth[0][known])),
            acc_real=float(np.mean(clf.predict(flat_real[known]) == truth[0][known]))))
    differ = known & np.isin(truth[1], classes) & (truth[0] != truth[1])
    if differ.any():
        a, b = truth[0][differ].astype(str), truth[1][differ].astype(str)
        checks.append(RecombineCheck(
            test="phone class: A's rather than B's", num=int(differ.sum()), chance=0.5,
            acc_decoded=pairwise_accuracy(clf, flat_decoded[differ], a, b),
            acc_real=pairwise_accuracy(clf, flat_real[differ], a, b)))
    return checks


@dataclass
class PairSegments:
    """One random non-overlapping segment of A and one of B for each pair, normalised."""

    pairs: list[tuple[str, str]]
    starts: np.ndarray     # (P, 2): first frame of A's and of B's segment
    real_a: np.ndarray     # (P, seg_len, F)
    real_b: np.ndarray


def draw_segments(feats: Mapping[str, np.ndarray], mvn: MVN, pairs: list[tuple[str, str]],
                  seg_len: int, seed: int) -> PairSegments:
    rng = np.random.default_rng(seed)
    starts = np.array([[rng.integers(feats[u].shape[0] // seg_len) * seg_len for u in pair]
                       for pair in pairs])
    real = [np.stack([mvn.apply(feats[pair[i]][s:s + seg_len])
                      for pair, s in zip(pairs, starts[:, i])]) for i in (0, 1)]
    return PairSegments(pairs, starts, real[0], real[1])


def check_decoded(evalset: EvalSet, fit: Segments, segs: PairSegments,
                  decoded: np.ndarray) -> list[RecombineCheck]:
    """Every available test of the decoded (P, seg_len, F) re-combinations, with classifiers
    trained on the real segments `fit`."""
    checks = [c for f in SCORED_FACTORS if f in evalset.factors
              for c in [_factor_check(f, evalset.factors[f], fit, segs.pairs, decoded,
                                      segs.real_b)]
              if c is not None]
    if evalset.phone_class is not None:
        checks += _content_checks(evalset.phone_class, fit, segs.real_a.shape[1], segs.pairs,
                                  segs.starts, decoded, segs.real_a)
    return checks


def score_recombination(evalset: EvalSet, feats: Mapping[str, np.ndarray], model: FHVAE,
                        mvn: MVN, seed: int, num_pairs: int = 200) -> RecombineScore | None:
    """Decode z1 of a random segment of A with z2 of a random segment of B for `num_pairs`
    seeded pairs, and test the results with classifiers trained on real normalised FBank.

    Segments are drawn at random (the figure shows the loudest ones) so that the phone-class
    tests are not biased towards vowels. The classifiers are trained on one half of the
    evaluated utterances and the pairs drawn from the other half (probes.split_utterances:
    every speaker on both sides), because the evaluated speakers exist nowhere else and no
    classifier should have seen A's or B's utterance. None when fewer than two speakers have
    an utterance on the pair side.
    """
    seg_len = model.cfg.seg_len
    fit_utts, pair_utts = split_utterances(evalset.utt2spk, seed)
    pair_utts = [u for u in pair_utts if feats[u].shape[0] >= seg_len]
    if len({evalset.utt2spk[u] for u in pair_utts}) < 2:
        log.warning("re-combination score skipped: fewer than two speakers have a second "
                    "utterance of at least %d frames", seg_len)
        return None
    fit = cut_segments({u: feats[u] for u in fit_utts}, mvn, seg_len)
    segs = draw_segments(feats, mvn, choose_pairs(evalset, pair_utts, seed, num_pairs), seg_len,
                         seed + 1)
    decoded = decode_means(model, encode(model, segs.real_a).z1,
                           encode_z2(model, segs.real_b).mean, seg_len).cpu().numpy()
    checks = check_decoded(evalset, fit, segs, decoded)
    for c in checks:
        log.info("re-combination %s: %.1f%% decoded, %.1f%% real (chance %.1f%%, n=%d)",
                 c.test, 100 * c.acc_decoded, 100 * c.acc_real, 100 * c.chance, c.num)
    return RecombineScore(num_pairs=len(segs.pairs), num_fit_utts=len(fit.utts),
                          num_pair_utts=len(pair_utts), checks=checks)
