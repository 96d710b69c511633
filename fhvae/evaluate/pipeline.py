"""Stage 5 end to end: verification, probes, figures and results.md for one evaluated set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from fhvae.checkpoint import load_model
from fhvae.errors import FhvaeError
from fhvae.evaluate.bootstrap import EerComparison, bootstrap_eers, compare, percentile_interval
from fhvae.evaluate.inputs import PHONE_CTM, EvalSet, fbank_means, load_eval_set, read_vectors
from fhvae.evaluate.metrics import compute_eer, compute_min_dcf
from fhvae.evaluate.probes import run_probes, split_utterances
from fhvae.evaluate.recombine import make_recombine_figure
from fhvae.evaluate.report import EvalSummary, SystemResult, eer_lines, render_results
from fhvae.evaluate.scoring import CosineBackend, LdaPldaBackend, score_trials
from fhvae.evaluate.trials import Trial, make_trials, read_trials, write_trials
from fhvae.evaluate.tsne import make_tsne_figures
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import read_dict

log = logging.getLogger(__name__)

BACKENDS = ("cosine", "lda-plda")


@dataclass
class EvalConfig:
    model: Path
    train_data: Path
    train_latents: Path
    data: Path
    latents: Path
    out_dir: Path
    seed: int = 777
    trials: Path | None = None
    backends: tuple[str, ...] = BACKENDS
    max_targets_per_utt: int = 10
    lda_dim: int | None = None
    p_target: float = 0.01
    probe_stride: int = 20
    tsne_speakers: int = 10
    tsne_points: int = 1500
    num_a: int = 8
    num_b: int = 3
    bootstrap: int = 1000       # speaker resamples for EER intervals; 0 = none


def make_backend(name: str, lda_dim: int | None) -> CosineBackend | LdaPldaBackend:
    if name == "cosine":
        return CosineBackend()
    if name == "lda-plda":
        return LdaPldaBackend(lda_dim)
    raise FhvaeError(f"unknown back-end '{name}' (choose from {', '.join(BACKENDS)})")


def backend_label(name: str) -> str:
    return {"cosine": "cosine, train mean subtracted",
            "lda-plda": "LDA + length norm + two-covariance PLDA"}[name]


def load_trials(cfg: EvalConfig, evalset: EvalSet) -> tuple[list[Trial], Path, str]:
    """Given trials, else <out>/trials if present, else generate (and write) a balanced list."""
    if cfg.trials is not None:
        return read_trials(cfg.trials, set(evalset.utts)), cfg.trials, "given"
    path = cfg.out_dir / "trials"
    if path.is_file():
        return read_trials(path, set(evalset.utts)), path, "existing file"
    trials = make_trials(evalset.utt2spk, cfg.seed, cfg.max_targets_per_utt)
    write_trials(path, trials)
    return trials, path, f"generated, seed {cfg.seed}"


def load_train_svectors(cfg: EvalConfig) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    utt2spk = read_dict(cfg.train_data / "utt2spk")
    svectors = read_vectors(cfg.train_latents / "svector.scp")
    unknown = next((u for u in svectors if u not in utt2spk), None)
    if unknown is not None:
        raise FhvaeError(f"{cfg.train_latents / 'svector.scp'}: utterance '{unknown}' is not in "
                         f"{cfg.train_data / 'utt2spk'}")
    return svectors, {u: utt2spk[u] for u in svectors}


def verify(cfg: EvalConfig, name: str, train: Mapping[str, np.ndarray],
           train_spk: Mapping[str, str], test: Mapping[str, np.ndarray],
           trials: list[Trial]) -> tuple[list[SystemResult], list[np.ndarray]]:
    """Score one embedding with every configured back-end; writes scores_<system>.

    Returns the results and each system's trial scores (for the bootstrap).
    """
    utts = sorted(train)
    x_train = np.stack([train[u] for u in utts])
    results, all_scores = [], []
    for backend_name in cfg.backends:
        backend = make_backend(backend_name, cfg.lda_dim).fit(x_train, [train_spk[u] for u in utts])
        scores, is_target = score_trials(backend, test, trials)
        system = f"{name}_{backend_name}"
        write_text_atomic(cfg.out_dir / f"scores_{system}",
                          "".join(f"{t.enroll} {t.test} {s:.6f}\n" for t, s in zip(trials, scores)))
        results.append(SystemResult(
            name=system, embedding=name, backend=backend_label(backend_name),
            eer=compute_eer(scores[is_target], scores[~is_target]),
            min_dcf=compute_min_dcf(scores[is_target], scores[~is_target], cfg.p_target),
            p_target=cfg.p_target))
        all_scores.append(scores)
        log.info("%s: EER %.2f%% minDCF %.4f", system, results[-1].eer, results[-1].min_dcf)
    return results, all_scores


def add_intervals(cfg: EvalConfig, systems: list[SystemResult], scores: list[np.ndarray],
                  trials: list[Trial], utt2spk: Mapping[str, str]) -> list[EerComparison]:
    """Speaker-bootstrap EER intervals on every system, and s-vector vs baseline comparisons
    for each back-end."""
    if not cfg.bootstrap:
        return []
    resampled = bootstrap_eers(np.stack(scores), np.array([t.is_target for t in trials]),
                               [utt2spk[t.enroll] for t in trials],
                               [utt2spk[t.test] for t in trials], cfg.bootstrap, cfg.seed)
    for k, system in enumerate(systems):
        system.eer_interval = percentile_interval(resampled[:, k])
    names, eers = [r.name for r in systems], [r.eer for r in systems]
    return [compare(names, eers, resampled, f"svector_{b}", f"fbank-mean_{b}")
            for b in cfg.backends]


def run_evaluation(cfg: EvalConfig) -> EvalSummary:
    """Run everything and write trials, scores_*, eer.txt, figures and results.md to out_dir."""
    for name in cfg.backends:
        make_backend(name, cfg.lda_dim)           # reject a bad name before any work
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    model, mvn, payload = load_model(cfg.model)
    evalset = load_eval_set(cfg.data, cfg.latents)
    trials, trials_path, origin = load_trials(cfg, evalset)
    train_sv, train_spk = load_train_svectors(cfg)

    systems, scores = verify(cfg, "svector", train_sv, train_spk, evalset.svector, trials)
    baseline, baseline_scores = verify(
        cfg, "fbank-mean", fbank_means(cfg.train_data, mvn, sorted(train_sv)), train_spk,
        fbank_means(cfg.data, mvn, evalset.utts), trials)
    systems, scores = systems + baseline, scores + baseline_scores
    comparisons = add_intervals(cfg, systems, scores, trials, evalset.utt2spk)
    write_text_atomic(cfg.out_dir / "eer.txt", eer_lines(systems))

    probes = run_probes(evalset, cfg.seed, cfg.probe_stride)
    notes = []
    if evalset.phone_class is None:
        notes.append(f"No `{PHONE_CTM}` in `{cfg.data}`: phone-class probe and plots skipped.")
    missing = [f for f in ("noise", "channel", "gender") if f not in evalset.factors]
    if missing:
        notes.append(f"No utt2{'/utt2'.join(missing)} in `{cfg.data}`: those factors not probed.")
    tsne_paths = make_tsne_figures(evalset, cfg.out_dir, cfg.seed, cfg.tsne_speakers,
                                   cfg.tsne_points)
    recombine_path = make_recombine_figure(evalset, cfg.data, model, mvn,
                                           cfg.out_dir / "recombine.png", cfg.seed,
                                           cfg.num_a, cfg.num_b)
    train_split, test_split = split_utterances(evalset.utt2spk, cfg.seed)
    summary = EvalSummary(
        data_dir=str(cfg.data), train_dir=str(cfg.train_data),
        model=f"{cfg.model} (step {payload.get('step', '?')})", seed=cfg.seed,
        num_utts=len(evalset.utts), num_speakers=len(set(evalset.utt2spk.values())),
        num_train_utts=len(train_sv), num_train_speakers=len(set(train_spk.values())),
        trials_path=str(trials_path), trials_origin=origin,
        num_target=sum(t.is_target for t in trials),
        num_nontarget=sum(not t.is_target for t in trials),
        systems=systems, comparisons=comparisons, num_resamples=cfg.bootstrap, probes=probes,
        probe_split=(len(train_split), len(test_split)),
        probe_stride=cfg.probe_stride, notes=notes,
        figures=[("t-SNE of z1 (left) and z2 (right), one row per factor", tsne_paths[2].name),
                 ("t-SNE of z1", tsne_paths[0].name), ("t-SNE of z2", tsne_paths[1].name),
                 ("Re-combination: z1 of x^A decoded with z2 of x^B", recombine_path.name)])
    write_text_atomic(cfg.out_dir / "results.md", render_results(summary))
    return summary
