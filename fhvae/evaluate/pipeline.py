"""Stage 5 end to end: verification, probes, figures and results.md for one evaluated set."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from fhvae.checkpoint import load_model
from fhvae.errors import FhvaeError
from fhvae.evaluate.inputs import PHONE_CTM, fbank_means, load_eval_set, read_vectors
from fhvae.evaluate.probes import run_probes
from fhvae.evaluate.recombine import make_recombine_figure
from fhvae.evaluate.report import EvalSummary, eer_lines, render_results, summary_record
from fhvae.evaluate.tsne import make_tsne_figures
from fhvae.evaluate.verification import (BACKENDS, BASELINE, CANDIDATE, load_trial_lists,
                                         make_backend, run_verification, utterance_conditions)
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import read_dict

log = logging.getLogger(__name__)


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
    max_matched_nontarget: int = 20000   # condition-matched trials: nontarget pairs kept
    lda_dim: int | None = None
    p_target: float = 0.01
    probe_stride: int = 20
    tsne_speakers: int = 10
    tsne_points: int = 1500
    num_a: int = 8
    num_b: int = 3
    bootstrap: int = 1000       # speaker resamples for EER intervals; 0 = none


def load_train_svectors(cfg: EvalConfig) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    utt2spk = read_dict(cfg.train_data / "utt2spk")
    svectors = read_vectors(cfg.train_latents / "svector.scp")
    unknown = next((u for u in svectors if u not in utt2spk), None)
    if unknown is not None:
        raise FhvaeError(f"{cfg.train_latents / 'svector.scp'}: utterance '{unknown}' is not in "
                         f"{cfg.train_data / 'utt2spk'}")
    return svectors, {u: utt2spk[u] for u in svectors}


def run_evaluation(cfg: EvalConfig) -> EvalSummary:
    """Run everything and write trials, scores_*, eer.txt, figures and results.md to out_dir."""
    for name in cfg.backends:
        make_backend(name, cfg.lda_dim)           # reject a bad name before any work
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    model, mvn, payload = load_model(cfg.model)
    evalset = load_eval_set(cfg.data, cfg.latents)
    trial_lists = load_trial_lists(cfg.out_dir, evalset.utt2spk,
                                   utterance_conditions(evalset.factors), cfg.trials, cfg.seed,
                                   cfg.max_targets_per_utt, cfg.max_matched_nontarget)
    train_sv, train_spk = load_train_svectors(cfg)
    embeddings = {
        CANDIDATE: (train_sv, evalset.svector),
        BASELINE: (fbank_means(cfg.train_data, mvn, sorted(train_sv)),
                   fbank_means(cfg.data, mvn, evalset.utts))}
    verification = run_verification(embeddings, train_spk, evalset.utt2spk, trial_lists,
                                    cfg.backends, cfg.lda_dim, cfg.p_target, cfg.bootstrap,
                                    cfg.seed, cfg.out_dir)
    write_text_atomic(cfg.out_dir / "eer.txt",
                      eer_lines([r for v in verification for r in v.systems]))

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
    summary = EvalSummary(
        data_dir=str(cfg.data), train_dir=str(cfg.train_data),
        model=f"{cfg.model} (step {payload.get('step', '?')})", seed=cfg.seed,
        num_utts=len(evalset.utts), num_speakers=len(set(evalset.utt2spk.values())),
        num_train_utts=len(train_sv), num_train_speakers=len(set(train_spk.values())),
        verification=verification, num_resamples=cfg.bootstrap, probes=probes,
        probe_stride=cfg.probe_stride, notes=notes,
        figures=[("t-SNE of z1 (left) and z2 (right), one row per factor", tsne_paths[2].name),
                 ("t-SNE of z1", tsne_paths[0].name), ("t-SNE of z2", tsne_paths[1].name),
                 ("Re-combination: z1 of x^A decoded with z2 of x^B", recombine_path.name)])
    write_text_atomic(cfg.out_dir / "results.md", render_results(summary))
    write_text_atomic(cfg.out_dir / "summary.json",
                      json.dumps(summary_record(summary), indent=1) + "\n")
    return summary
