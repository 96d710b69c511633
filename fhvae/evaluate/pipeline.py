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
from fhvae.evaluate.inputs import EvalSet, load_eval_set
from fhvae.evaluate.probes import run_probes
from fhvae.evaluate.recombination import (RecombineScore, make_recombine_figure,
                                          score_recombination)
from fhvae.evaluate.report import (AdaptationSummary, EvalSummary, eer_lines, render_results,
                                   summary_record)
from fhvae.evaluate.scoring import Adaptation
from fhvae.evaluate.swap import SwapResult, run_swap_test
from fhvae.evaluate.tsne import make_tsne_figures
from fhvae.evaluate.verification import (BACKENDS, BASELINE, CANDIDATE, IVECTOR, MEANSTD,
                                         Embeddings, load_trial_lists, make_backend,
                                         run_verification, utterance_conditions)
from fhvae.features.mvn import MVN, compute_mvn
from fhvae.features.stats_embedding import fbank_stats, stats_embeddings
from fhvae.inference import load
from fhvae.io.atomic import write_text_atomic
from fhvae.io.datadir import PHONE_CTM, DataDir
from fhvae.io.tables import check_known, read_vectors
from fhvae.io.text_table import read_dict
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

    def check(self) -> None:
        """Before any work: every back-end name is known, and i-vectors come for every set the
        evaluation reads, or for none."""
        for name in self.backends:
            make_backend(name, self.lda_dim)
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


def baseline_mvn(model_mvn: MVN, train_fbank_data: Path | None) -> MVN:
    """The baselines' normalisation: the model's, unless the model reads normalised copies
    (`train_fbank_data`: the training set's own FBank); then that FBank's statistics (as the
    model's MVN would be without --input-norm), so the baselines do not depend on the option."""
    if train_fbank_data is None:
        return model_mvn
    return compute_mvn(f for _, f in DataDir(train_fbank_data).feats(None, model_mvn.dim))


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


def load_train_svectors(train_data: Path, train_latents: Path
                        ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    utt2spk_path = DataDir(train_data).utt2spk
    utt2spk = read_dict(utt2spk_path)
    scp = train_latents / "svector.scp"
    svectors = read_vectors(scp)
    check_known(scp, svectors, utt2spk, utt2spk_path)
    return svectors, {u: utt2spk[u] for u in svectors}


def load_adapt_embeddings(latents: Path, fbank_data: Path, mvn: MVN, ivectors: Path | None
                          ) -> dict[str, dict[str, np.ndarray]]:
    """s-vectors, FBank statistics and (with an i-vector dir) i-vectors of the adaptation
    set, by embedding name (no labels read)."""
    scp = latents / "svector.scp"
    svectors = read_vectors(scp)
    if not svectors:
        raise FhvaeError(f"{scp}: the adaptation set is empty")
    utts = sorted(svectors)
    means, meanstds = fbank_stats(fbank_data, mvn, utts)
    adapt = {CANDIDATE: svectors, MEANSTD: meanstds, BASELINE: means}
    if ivectors is not None:
        adapt[IVECTOR] = read_embedding(ivectors / "ivector.scp", utts)
    return adapt


def ivector_embeddings(train_ivectors: Path, ivectors: Path, utt2spk_path: Path,
                       train_utts: list[str], utts: list[str],
                       adapt: Mapping[str, np.ndarray] | None) -> Embeddings:
    """The i-vector baseline (dirs with ivector.scp) of the s-vectors' training utterances
    and of the evaluated set, whose keys must be utterances of `utt2spk_path`."""
    return Embeddings(read_embedding(train_ivectors / "ivector.scp", train_utts),
                      read_embedding(ivectors / "ivector.scp", utts, utt2spk_path), adapt)


def build_embeddings(evalset: EvalSet, feats: Mapping[str, np.ndarray],
                     train_sv: Mapping[str, np.ndarray], mvn: MVN,
                     adapt: Mapping[str, Mapping[str, np.ndarray]], train_fbank_data: Path,
                     fbank_data: Path | None, ivectors: Embeddings | None
                     ) -> dict[str, Embeddings]:
    """The candidate and every baseline on the same utterances (the s-vectors' training
    utterances, the evaluated set), strongest baseline first. The FBank baselines come from
    `train_fbank_data` and `fbank_data` (None: `feats`, the evaluated set's raw FBank)."""
    train_means, train_meanstds = fbank_stats(train_fbank_data, mvn, sorted(train_sv))
    test_means, test_meanstds = (stats_embeddings(feats.items(), mvn) if fbank_data is None
                                 else fbank_stats(fbank_data, mvn, evalset.utts))
    embeddings = {CANDIDATE: Embeddings(train_sv, evalset.svector, adapt.get(CANDIDATE))}
    if ivectors is not None:
        embeddings[IVECTOR] = ivectors
    embeddings[MEANSTD] = Embeddings(train_meanstds, test_meanstds, adapt.get(MEANSTD))
    embeddings[BASELINE] = Embeddings(train_means, test_means, adapt.get(BASELINE))
    return embeddings


def _timed(what: str, func: Callable[..., Any], *args: Any) -> Any:
    start = time.perf_counter()
    result = func(*args)
    log.info("%s took %.1f s", what, time.perf_counter() - start)
    return result


def score_latents(evalset: EvalSet, feats: Mapping[str, np.ndarray], model: FHVAE, mvn: MVN,
                  seed: int, swap_segments: int, recombine_pairs: int, notes: list[str]
                  ) -> tuple[SwapResult | None, RecombineScore | None]:
    """Swap test and re-combination score on the evaluated set's raw FBank `feats` (0
    segments or pairs: not run), each timed in the log; a skipped score is noted in `notes`."""
    swap = (_timed("swap test", run_swap_test, model, mvn, feats, seed, swap_segments)
            if swap_segments else None)
    recombination = (_timed("re-combination score", score_recombination, evalset, feats, model,
                            mvn, seed, recombine_pairs) if recombine_pairs else None)
    if recombine_pairs and recombination is None:
        notes.append("Re-combination score skipped: it needs two speakers with two or more "
                     "utterances of at least one segment.")
    return swap, recombination


def probe_robust_asr(evalset: EvalSet, feats: Mapping[str, np.ndarray], model: FHVAE,
                     mvn: MVN, train_data: Path, data: Path, seed: int, train_utts: int,
                     notes: list[str]) -> AsrProbeResult | None:
    """The robust-ASR probe on `feats` (0 training utterances: not run), timed in the log;
    why it was skipped goes to `notes`."""
    if not train_utts:
        return None
    reason = skip_reason(train_data, data)
    if reason:
        notes.append(reason)
        return None
    asr = _timed("robust-ASR probe", run_asr_probe, evalset, feats, model, mvn, train_data,
                 data, seed, train_utts)
    if asr is None:
        notes.append("Robust-ASR probe skipped: the clean close-talk training frames hold "
                     "fewer than two phones with enough frames.")
    return asr


def input_notes(evalset: EvalSet, data: Path, matched_trials_skipped: bool) -> list[str]:
    """What the evaluated set lacks, and so what results.md leaves out."""
    notes = []
    if matched_trials_skipped:
        notes.append("No two utterances of one speaker share a noise and channel: "
                     "condition-matched trials skipped.")
    if evalset.phone_class is None:
        notes.append(f"No `{PHONE_CTM}` in `{data}`: phone-class probe and plots skipped.")
    missing = [f for f in ("noise", "channel", "gender") if f not in evalset.factors]
    if missing:
        notes.append(f"No utt2{'/utt2'.join(missing)} in `{data}`: those factors not probed.")
    return notes


def run_evaluation(cfg: EvalConfig) -> EvalSummary:
    """Run everything and write trials, scores_*, eer.txt, figures and results.md to out_dir."""
    cfg.check()
    model, mvn, payload = load(cfg.model, "cpu")
    fbank_mvn = baseline_mvn(mvn, cfg.train_fbank_data)
    adapt = (load_adapt_embeddings(cfg.adapt_latents, cfg.adapt_fbank_data or cfg.adapt_data,
                                   fbank_mvn, cfg.adapt_ivectors)     # fails before writing
             if cfg.adaptation else {})
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    evalset = load_eval_set(cfg.data, cfg.latents)
    utt2cond = utterance_conditions(evalset.factors)
    trial_lists = load_trial_lists(cfg.out_dir, evalset.utt2spk, utt2cond, cfg.trials, cfg.seed,
                                   cfg.max_targets_per_utt, cfg.max_matched_nontarget)
    train_sv, train_spk = load_train_svectors(cfg.train_data, cfg.train_latents)
    feats = dict(DataDir(cfg.data).feats(evalset.utts, mvn.dim))    # raw FBank, read once for all
    ivectors = (ivector_embeddings(cfg.train_ivectors, cfg.ivectors, DataDir(cfg.data).utt2spk,
                                   sorted(train_sv), evalset.utts, adapt.get(IVECTOR))
                if cfg.with_ivectors else None)
    embeddings = build_embeddings(evalset, feats, train_sv, fbank_mvn, adapt,
                                  cfg.train_fbank_data or cfg.train_data, cfg.fbank_data,
                                  ivectors)
    verification = run_verification(embeddings, train_spk, evalset.utt2spk, trial_lists,
                                    cfg.backends, cfg.lda_dim, cfg.p_target, cfg.bootstrap,
                                    cfg.seed, cfg.out_dir, cfg.adaptation)
    write_text_atomic(cfg.out_dir / "eer.txt",
                      eer_lines([r for v in verification for r in v.systems]))

    probes = run_probes(evalset, cfg.seed, cfg.probe_stride)
    notes = input_notes(evalset, cfg.data, utt2cond is not None and len(trial_lists) == 1)
    tsne_paths = make_tsne_figures(evalset, cfg.out_dir, cfg.seed, cfg.tsne_speakers,
                                   cfg.tsne_points)
    recombine_path = make_recombine_figure(evalset, cfg.data, model, mvn,
                                           cfg.out_dir / "recombine.png", cfg.seed,
                                           cfg.num_a, cfg.num_b)
    swap, recombination = score_latents(evalset, feats, model, mvn, cfg.seed,
                                        cfg.swap_segments, cfg.recombine_pairs, notes)
    asr = probe_robust_asr(evalset, feats, model, mvn, cfg.train_data, cfg.data, cfg.seed,
                           cfg.asr_train_utts, notes)
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
