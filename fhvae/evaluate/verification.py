"""Speaker verification of stage 5: s-vectors against the baselines (i-vectors when given,
mean + standard deviation of FBank, mean FBank), under every back-end, on all trials and on
condition-matched trials, with speaker-bootstrap intervals corrected for the number of
comparisons.

Why two trial lists: when every utterance has its own noise and channel (the built-in
corpus, Aurora-4), scores on all trials mostly say how well a back-end removes the
condition; same-condition trials say how well the embedding separates speakers. A claim
that one embedding beats another must hold with the paired difference significant after
Holm's correction over every comparison of the set (per baseline, back-end and trial list).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from fhvae.analysis.significance import percentile_interval
from fhvae.errors import FhvaeError
from fhvae.evaluate.bootstrap import EerComparison, bootstrap_metrics, compare, correct
from fhvae.evaluate.metrics import compute_eer, compute_min_dcf
from fhvae.evaluate.scoring import (Adaptation, Backend, CosineBackend, LdaPldaBackend,
                                    LdaWccnBackend, adapt_backend, score_trials)
from fhvae.evaluate.trials import (Trial, condition_matched_trials, make_trials, read_trials,
                                   restrict_to_matched, write_trials)
from fhvae.io.atomic import write_text_atomic
from fhvae.io.labels import NO_LABEL

log = logging.getLogger(__name__)

BACKENDS = ("cosine", "lda-wccn", "lda-plda")
BACKEND_LABELS = {"cosine": "cosine, train mean subtracted",
                  "lda-wccn": "LDA + WCCN + cosine",
                  "lda-plda": "LDA + length norm + two-covariance PLDA"}
CANDIDATE, BASELINE = "svector", "fbank-mean"
MEANSTD, IVECTOR = "fbank-meanstd", "ivector"
# Every baseline the candidate is compared with, strongest first (those present are used).
BASELINES = (IVECTOR, MEANSTD, BASELINE)
# Sequence-level factors that make up a recording condition, when the data dir labels them.
CONDITION_FACTORS = ("noise", "channel")


class Embeddings(NamedTuple):
    """One embedding's vectors (utt -> vector): the back-ends' training set, the evaluated
    set and, for back-end adaptation, the unlabelled adaptation set."""

    train: Mapping[str, np.ndarray]
    test: Mapping[str, np.ndarray]
    adapt: Mapping[str, np.ndarray] | None = None


def backend_label(name: str, adaptation: Adaptation | None) -> str:
    """The back-end as result tables name it, saying whether and to what it was adapted."""
    adapted = adaptation.describe(name) if adaptation else None
    if adapted is None:
        return BACKEND_LABELS[name]
    base = "cosine, adaptation-set mean subtracted" if name == "cosine" else BACKEND_LABELS[name]
    return f"{base}; {adapted}"


def make_backend(name: str, lda_dim: int | None) -> Backend:
    if name == "cosine":
        return CosineBackend()
    if name == "lda-wccn":
        return LdaWccnBackend(lda_dim)
    if name == "lda-plda":
        return LdaPldaBackend(lda_dim)
    raise FhvaeError(f"unknown back-end '{name}' (choose from {', '.join(BACKENDS)})")


@dataclass
class SystemResult:
    """One verification system: an embedding scored by one back-end on one trial list."""

    name: str            # e.g. svector_cosine (also the scores file suffix)
    embedding: str
    backend: str
    eer: float           # percent
    min_dcf: float
    p_target: float
    trials: str = "all"  # name of the trial list
    eer_interval: tuple[float, float] | None = None   # 95% speaker-bootstrap interval
    min_dcf_interval: tuple[float, float] | None = None


@dataclass
class TrialList:
    """One list of trials and where it came from."""

    name: str                 # "all" or "matched"; suffix of the system names ("" for all)
    description: str
    path: Path
    origin: str
    trials: list[Trial]

    @property
    def num_target(self) -> int:
        return sum(t.is_target for t in self.trials)

    @property
    def num_nontarget(self) -> int:
        return len(self.trials) - self.num_target

    @property
    def title(self) -> str:
        """The description with a capital first letter, for headings and list items."""
        return self.description[:1].upper() + self.description[1:]

    def system_name(self, embedding: str, backend: str) -> str:
        return f"{embedding}_{backend}" + ("" if self.name == "all" else f"_{self.name}")


@dataclass
class VerificationResult:
    """Every system scored on one trial list, and the s-vector − baseline comparisons
    (per baseline, then per back-end)."""

    trial_list: TrialList
    systems: list[SystemResult]
    comparisons: list[EerComparison] = field(default_factory=list)


def utterance_conditions(factors: Mapping[str, Mapping[str, str]]) -> dict[str, str] | None:
    """utt -> 'noise=..,channel=..' for utterances labelled with every available condition
    factor; None when the data dir labels no condition."""
    present = [f for f in CONDITION_FACTORS if f in factors]
    if not present:
        return None
    conditions = {}
    for utt in factors["speaker"]:
        labels = [factors[f].get(utt, NO_LABEL) for f in present]
        if NO_LABEL not in labels:
            conditions[utt] = ",".join(f"{f}={lab}" for f, lab in zip(present, labels))
    return conditions


def load_trial_lists(out_dir: Path, utt2spk: Mapping[str, str],
                     utt2cond: Mapping[str, str] | None, given: Path | None, seed: int,
                     max_targets_per_utt: int, max_matched_nontarget: int) -> list[TrialList]:
    """All trials (given, else <out>/trials, else generated) and, when conditions are
    labelled, the condition-matched trials (the given list restricted to same-condition pairs,
    else <out>/trials_matched, else every same-condition pair, generated)."""
    utts = set(utt2spk)
    if given is not None:
        trials, path, origin = read_trials(given, utts), given, "given"
    elif (out_dir / "trials").is_file():
        path = out_dir / "trials"
        trials, origin = read_trials(path, utts), "existing file"
    else:
        path, origin = out_dir / "trials", f"generated, seed {seed}"
        trials = make_trials(utt2spk, seed, max_targets_per_utt)
        write_trials(path, trials)
    lists = [TrialList("all", "all trials", path, origin, trials)]
    if utt2cond is None:
        return lists
    factors = [f for f in CONDITION_FACTORS if f"{f}=" in next(iter(utt2cond.values()), "")]
    description = f"condition-matched trials (same {' and '.join(factors)})"
    labelled = {u: s for u, s in utt2spk.items() if u in utt2cond}
    matched_path = out_dir / "trials_matched"
    if given is not None:
        matched = restrict_to_matched([t for t in trials if t.enroll in utt2cond
                                       and t.test in utt2cond], utt2cond)
        origin = f"the given trials whose two sides share a condition; written to {matched_path}"
        write_trials(matched_path, matched)
    elif matched_path.is_file():
        matched, origin = read_trials(matched_path, set(labelled)), "existing file"
    else:
        try:
            matched = condition_matched_trials(labelled, utt2cond, seed, max_matched_nontarget)
        except FhvaeError as err:          # e.g. a small set: no same-condition target pair
            log.warning("%s: condition-matched trials skipped", err)
            return lists
        origin = (f"generated: every same-condition target pair, nontarget pairs up to "
                  f"{max_matched_nontarget}, seed {seed}")
        write_trials(matched_path, matched)
    if not any(t.is_target for t in matched) or all(t.is_target for t in matched):
        log.warning("no condition-matched target/nontarget pairs: matched trials skipped")
        return lists
    return lists + [TrialList("matched", description, matched_path, origin, matched)]


def score_embedding(embedding: str, vectors: Embeddings, train_spk: Mapping[str, str],
                    trial_lists: list[TrialList], backends: tuple[str, ...],
                    lda_dim: int | None, p_target: float, out_dir: Path,
                    adaptation: Adaptation | None = None,
                    ) -> dict[str, tuple[list[SystemResult], list[np.ndarray]]]:
    """Fit each back-end once on the training embeddings (then adapt it to `vectors.adapt`
    when `adaptation` is given), score every trial list with it and write scores_<system>.
    Returns, per trial list, its systems and their trial scores."""
    train, test = vectors.train, vectors.test
    utts = sorted(train)
    x_train = np.stack([train[u] for u in utts])
    adapt = vectors.adapt or {}
    x_adapt = np.asarray([adapt[u] for u in sorted(adapt)], dtype=np.float64)
    out: dict[str, tuple[list[SystemResult], list[np.ndarray]]] = {
        tl.name: ([], []) for tl in trial_lists}
    for backend_name in backends:
        backend = make_backend(backend_name, lda_dim).fit(x_train, [train_spk[u] for u in utts])
        if adaptation is not None:
            backend = adapt_backend(backend, x_adapt, adaptation)
        for tl in trial_lists:
            scores, is_target = score_trials(backend, test, tl.trials)
            system = tl.system_name(embedding, backend_name)
            write_text_atomic(out_dir / f"scores_{system}", "".join(
                f"{t.enroll} {t.test} {s:.6f}\n" for t, s in zip(tl.trials, scores)))
            result = SystemResult(
                name=system, embedding=embedding,
                backend=backend_label(backend_name, adaptation),
                eer=compute_eer(scores[is_target], scores[~is_target]),
                min_dcf=compute_min_dcf(scores[is_target], scores[~is_target], p_target),
                p_target=p_target, trials=tl.name)
            out[tl.name][0].append(result)
            out[tl.name][1].append(scores)
            log.info("%s: EER %.2f%% minDCF %.4f", system, result.eer, result.min_dcf)
    return out


def add_intervals(result: VerificationResult, scores: list[np.ndarray],
                  utt2spk: Mapping[str, str], backends: tuple[str, ...], num_resamples: int,
                  seed: int, p_target: float) -> list[np.ndarray]:
    """Speaker-bootstrap EER and minDCF intervals on every system of one trial list, and the
    paired s-vector − baseline comparison for each baseline and back-end. Returns each
    comparison's resampled EER differences (for the correction over the whole table)."""
    if not num_resamples:
        return []
    trials = result.trial_list.trials
    eers_r, dcfs_r = bootstrap_metrics(np.stack(scores), np.array([t.is_target for t in trials]),
                                       [utt2spk[t.enroll] for t in trials],
                                       [utt2spk[t.test] for t in trials], num_resamples, seed,
                                       p_target)
    for k, system in enumerate(result.systems):
        system.eer_interval = percentile_interval(eers_r[:, k])
        system.min_dcf_interval = percentile_interval(dcfs_r[:, k])
    names, eers = [r.name for r in result.systems], [r.eer for r in result.systems]
    present = {r.embedding for r in result.systems}
    tl = result.trial_list
    pairs = [(tl.system_name(CANDIDATE, b), tl.system_name(base, b))
             for base in BASELINES if base in present for b in backends]
    result.comparisons = [compare(names, eers, eers_r, a, b) for a, b in pairs]
    return [eers_r[:, names.index(a)] - eers_r[:, names.index(b)] for a, b in pairs]


def run_verification(embeddings: Mapping[str, Embeddings],
                     train_spk: Mapping[str, str], utt2spk: Mapping[str, str],
                     trial_lists: list[TrialList], backends: tuple[str, ...],
                     lda_dim: int | None, p_target: float, num_resamples: int, seed: int,
                     out_dir: Path, adaptation: Adaptation | None = None,
                     ) -> list[VerificationResult]:
    """`embeddings`: name -> its vectors, the candidate and the baselines; all adapted alike."""
    per_list: dict[str, tuple[list[SystemResult], list[np.ndarray]]] = {
        tl.name: ([], []) for tl in trial_lists}
    for name, vectors in embeddings.items():
        scored = score_embedding(name, Embeddings(*vectors), train_spk, trial_lists, backends,
                                 lda_dim, p_target, out_dir, adaptation)
        for key, (systems, scores) in scored.items():
            per_list[key][0].extend(systems)
            per_list[key][1].extend(scores)
    results, differences = [], []
    for tl in trial_lists:
        systems, scores = per_list[tl.name]
        result = VerificationResult(tl, systems)
        differences += add_intervals(result, scores, utt2spk, backends, num_resamples, seed,
                                     p_target)
        results.append(result)
    correct([c for r in results for c in r.comparisons], differences)
    return results
