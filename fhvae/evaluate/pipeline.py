"""Stage 5 end to end: verification, probes, figures and results.md for one evaluated set."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from fhvae.errors import FhvaeError
from fhvae.evaluate.asr_probe import AsrProbeResult, run_asr_probe, skip_reason
from fhvae.evaluate.inputs import (PHONE_CTM, EvalSet, check_known, fbank_stats, iter_feats,
                                   load_eval_set, read_vectors, stats_embeddings)
from fhvae.evaluate.probes import run_probes
from fhvae.evaluate.recombine import RecombineScore, make_recombine_figure, score_recombination
from fhvae.evaluate.report import (AdaptationSummary, EvalSummary, eer_lines, render_results,
                                   summary_record)
from fhvae.evaluate.scoring import Adaptation
from fhvae.evaluate.swap import SwapResult, run_swap_test
from fhvae.evaluate.tsne import make_tsne_figures
from fhvae.evaluate.verification import (BACKENDS, BASELINE, CANDIDATE, IVECTOR, MEANSTD,
                                         Embeddings, load_trial_lists, make_backend,
                                         run_verification, utterance_conditions)
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.inference import load
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import read_dict
from fhvae.model import FHVAE

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
    swap_segments: int = 4000   # swap test: sampled segments; 0 = no swap test
    recombine_pairs: int = 200  # re-combination score: (A, B) pairs; 0 = figure only
    asr_train_utts: int = 300   # robust-ASR probe: clean close-talk training utts; 0 = none
    adapt_data: Path | None = None      # unlabelled adaptation set (feats.scp) and its
    adapt_latents: Path | None = None   # latents dir (svector.scp): both or neither
    adaptation: Adaptation | None = None   # how to adapt (its name: the adaptation set)
    # i-vector baseline (dirs with ivector.scp, e.g. exp/ivector/ivectors_<set>): the
    # training and evaluated sets, and the adaptation set when adapting; None: no i-vectors
    train_ivectors: Path | None = None
    ivectors: Path | None = None
    adapt_ivectors: Path | None = None
    # The FBank the baselines are computed from, when the model reads another copy of the
    # features (utils/fhvae_pipeline.sh --input-norm: data/<set>_cmvn); None: the set itself
    train_fbank_data: Path | None = None
    fbank_data: Path | None = None
    adapt_fbank_data: Path | None = None

    def check_ivectors(self) -> None:
        """i-vectors come for every set the evaluation reads, or for none."""
        given = [self.train_ivectors is not None, self.ivectors is not None]
        if self.adaptation is not None:
            given.append(self.adapt_ivectors is not None)
        if any(given) and not all(given):
            raise FhvaeError("evaluate: i-vectors are needed for the training, evaluated "
                             "(and adaptation) sets alike: --train-ivectors, --ivectors"
                             + (", --adapt-ivectors" if self.adaptation else ""))

    @property
    def with_ivectors(self) -> bool:
        return self.ivectors is not None

    def baseline_mvn(self, model_mvn: MVN) -> MVN:
        """The baselines' normalisation: the model's, unless the model reads normalised
        copies; then the statistics of the training set's own FBank (as the model's MVN
        would be without --input-norm), so the baselines do not depend on the option."""
        if self.train_fbank_data is None:
            return model_mvn
        return compute_mvn(f for _, f in iter_feats(self.train_fbank_data, None, model_mvn.dim))


def read_embedding(scp: Path, utts: list[str], utt2spk_path: Path | None = None
                   ) -> dict[str, np.ndarray]:
    """The vectors of `utts` from an scp (e.g. i-vectors); each must be there, others are
    dropped. With `utt2spk_path`, every key must also be an utterance of that data dir."""
    vectors = read_vectors(scp)
    if utt2spk_path is not None:
        check_known(scp, vectors, read_dict(utt2spk_path), utt2spk_path)
    missing = next((u for u in utts if u not in vectors), None)
    if missing is not None:
        raise FhvaeError(f"{scp}: no vector for utterance '{missing}'")
    return {u: vectors[u] for u in utts}


def load_train_svectors(cfg: EvalConfig) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    utt2spk = read_dict(cfg.train_data / "utt2spk")
    scp = cfg.train_latents / "svector.scp"
    svectors = read_vectors(scp)
    check_known(scp, svectors, utt2spk, cfg.train_data / "utt2spk")
    return svectors, {u: utt2spk[u] for u in svectors}


def load_adapt_embeddings(cfg: EvalConfig, mvn: MVN) -> dict[str, dict[str, np.ndarray]]:
    """s-vectors, FBank statistics and (when used) i-vectors of the adaptation set, by
    embedding name (no labels read)."""
    scp = cfg.adapt_latents / "svector.scp"
    svectors = read_vectors(scp)
    if not svectors:
        raise FhvaeError(f"{scp}: the adaptation set is empty")
    utts = sorted(svectors)
    means, meanstds = fbank_stats(cfg.adapt_fbank_data or cfg.adapt_data, mvn, utts)
    adapt = {CANDIDATE: svectors, MEANSTD: meanstds, BASELINE: means}
    if cfg.with_ivectors:
        adapt[IVECTOR] = read_embedding(cfg.adapt_ivectors / "ivector.scp", utts)
    return adapt


def build_embeddings(cfg: EvalConfig, evalset: EvalSet, feats: Mapping[str, np.ndarray],
                     train_sv: Mapping[str, np.ndarray], mvn: MVN,
                     adapt: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Embeddings]:
    """The candidate and every baseline on the same utterances (the s-vectors' training
    utterances, the evaluated set), strongest baseline first."""
    train_utts = sorted(train_sv)
    train_means, train_meanstds = fbank_stats(cfg.train_fbank_data or cfg.train_data, mvn,
                                              train_utts)
    test_means, test_meanstds = (stats_embeddings(feats.items(), mvn) if cfg.fbank_data is None
                                 else fbank_stats(cfg.fbank_data, mvn, evalset.utts))
    embeddings = {CANDIDATE: Embeddings(train_sv, evalset.svector, adapt.get(CANDIDATE))}
    if cfg.with_ivectors:
        embeddings[IVECTOR] = Embeddings(
            read_embedding(cfg.train_ivectors / "ivector.scp", train_utts),
            read_embedding(cfg.ivectors / "ivector.scp", evalset.utts, cfg.data / "utt2spk"),
            adapt.get(IVECTOR))
    embeddings[MEANSTD] = Embeddings(train_meanstds, test_meanstds, adapt.get(MEANSTD))
    embeddings[BASELINE] = Embeddings(train_means, test_means, adapt.get(BASELINE))
    return embeddings


def _timed(what: str, func: Callable[..., Any], *args: Any) -> Any:
    start = time.perf_counter()
    result = func(*args)
    log.info("%s took %.1f s", what, time.perf_counter() - start)
    return result


def score_latents(cfg: EvalConfig, evalset: EvalSet, feats: Mapping[str, np.ndarray],
                  model: FHVAE, mvn: MVN, notes: list[str]
                  ) -> tuple[SwapResult | None, RecombineScore | None, AsrProbeResult | None]:
    """Swap test, re-combination score and robust-ASR probe on the evaluated set's raw
    FBank `feats`, each timed in the log; why the probe was skipped goes to `notes`."""
    swap = (_timed("swap test", run_swap_test, model, mvn, feats, cfg.seed, cfg.swap_segments)
            if cfg.swap_segments else None)
    recombination = (_timed("re-combination score", score_recombination, evalset, feats, model,
                            mvn, cfg.seed, cfg.recombine_pairs) if cfg.recombine_pairs else None)
    if cfg.recombine_pairs and recombination is None:
        notes.append("Re-combination score skipped: it needs two speakers with two or more "
                     "utterances of at least one segment.")
    reason = skip_reason(cfg.train_data, cfg.data) if cfg.asr_train_utts else None
    if reason:
        notes.append(reason)
    asr = (_timed("robust-ASR probe", run_asr_probe, evalset, feats, model, mvn, cfg.train_data,
                  cfg.data, cfg.seed, cfg.asr_train_utts)
           if cfg.asr_train_utts and not reason else None)
    if cfg.asr_train_utts and not reason and asr is None:
        notes.append("Robust-ASR probe skipped: the clean close-talk training frames hold "
                     "fewer than two phones with enough frames.")
    return swap, recombination, asr


def run_evaluation(cfg: EvalConfig) -> EvalSummary:
    """Run everything and write trials, scores_*, eer.txt, figures and results.md to out_dir."""
    for name in cfg.backends:
        make_backend(name, cfg.lda_dim)           # reject a bad name before any work
    cfg.check_ivectors()
    model, mvn, payload = load(cfg.model, "cpu")
    fbank_mvn = cfg.baseline_mvn(mvn)
    adapt = load_adapt_embeddings(cfg, fbank_mvn) if cfg.adaptation else {}  # fails before writing
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    evalset = load_eval_set(cfg.data, cfg.latents)
    utt2cond = utterance_conditions(evalset.factors)
    trial_lists = load_trial_lists(cfg.out_dir, evalset.utt2spk, utt2cond, cfg.trials, cfg.seed,
                                   cfg.max_targets_per_utt, cfg.max_matched_nontarget)
    train_sv, train_spk = load_train_svectors(cfg)
    feats = dict(iter_feats(cfg.data, evalset.utts, mvn.dim))    # raw FBank, read once for all
    embeddings = build_embeddings(cfg, evalset, feats, train_sv, fbank_mvn, adapt)
    verification = run_verification(embeddings, train_spk, evalset.utt2spk, trial_lists,
                                    cfg.backends, cfg.lda_dim, cfg.p_target, cfg.bootstrap,
                                    cfg.seed, cfg.out_dir, cfg.adaptation)
    write_text_atomic(cfg.out_dir / "eer.txt",
                      eer_lines([r for v in verification for r in v.systems]))

    probes = run_probes(evalset, cfg.seed, cfg.probe_stride)
    notes = []
    if utt2cond is not None and len(trial_lists) == 1:
        notes.append("No two utterances of one speaker share a noise and channel: "
                     "condition-matched trials skipped.")
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
    swap, recombination, asr = score_latents(cfg, evalset, feats, model, mvn, notes)
    summary = EvalSummary(
        data_dir=str(cfg.data), train_dir=str(cfg.train_data),
        model=f"{cfg.model} (step {payload.get('step', '?')})", seed=cfg.seed,
        num_utts=len(evalset.utts), num_speakers=len(set(evalset.utt2spk.values())),
        num_train_utts=len(train_sv), num_train_speakers=len(set(train_spk.values())),
        verification=verification, num_resamples=cfg.bootstrap, probes=probes,
        adaptation=(AdaptationSummary(cfg.adaptation, len(adapt[CANDIDATE]))
                    if cfg.adaptation else None),
        probe_stride=cfg.probe_stride, notes=notes,
        figures=[("t-SNE of z1 (left) and z2 (right), one row per factor", tsne_paths[2].name),
                 ("t-SNE of z1", tsne_paths[0].name), ("t-SNE of z2", tsne_paths[1].name)],
        recombine_figure=("Re-combination: z1 of x^A decoded with z2 of x^B",
                          recombine_path.name),
        swap=swap, recombination=recombination, asr=asr)
    write_text_atomic(cfg.out_dir / "results.md", render_results(summary))
    write_text_atomic(cfg.out_dir / "summary.json",
                      json.dumps(summary_record(summary), indent=1) + "\n")
    return summary
