#!/usr/bin/env python3
"""Dev decision on back-end adaptation to unseen conditions (issue 16), on dev data only.

Usage: local/tuning/adaptation_dev.py [options] <model> <train-data> <train-latents>
         <dev-data> <dev-latents> <out-dir>
e.g.   local/tuning/adaptation_dev.py exp/fhvae/final.pt data/train exp/fhvae/latents_train
         data/dev_unseen exp/fhvae/latents_dev_unseen exp/fhvae/adapt_dev

Why two folds: stage 5 adapts with one set and evaluates another, and on dev both must
come from dev_unseen. Its speakers are split in two seeded halves (as the probes split
speakers: fhvae.evaluate.probes.split_speakers); half A's utterances
(unlabelled) adapt the back-ends that score half B's trials, and the other way round. The
two folds' scores are pooled into one EER per system (stage 5's trial lists, made per
half), and the speaker bootstrap of stage 5 resamples all dev_unseen speakers at once, so
every system (s-vector and mean FBank, 3 back-ends, unadapted / mean / mean + PLDA) gets
an interval, and so does every paired difference the decision rests on.
Writes <out-dir>/fold{1,2}/<mode>/scores_*, <out-dir>/fold{1,2}/trials*,
<out-dir>/adaptation_dev.md (printed) and <out-dir>/summary.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fhvae.bin.cli import run_main  # noqa: E402
from fhvae.errors import FhvaeError  # noqa: E402
from fhvae.analysis.significance import percentile_interval  # noqa: E402
from fhvae.evaluate.bootstrap import bootstrap_eers, compare  # noqa: E402
from fhvae.evaluate.metrics import compute_eer  # noqa: E402
from fhvae.evaluate.pipeline import load_train_svectors  # noqa: E402
from fhvae.evaluate.probes import split_speakers  # noqa: E402
from fhvae.evaluate.scoring import Adaptation  # noqa: E402
from fhvae.evaluate.verification import (BACKENDS, BASELINE, CANDIDATE,  # noqa: E402
                                         Embeddings, load_trial_lists, score_embedding,
                                         utterance_conditions)
from fhvae.features.stats_embedding import fbank_stats  # noqa: E402
from fhvae.io.atomic import write_text_atomic  # noqa: E402
from fhvae.io.datadir import DataDir  # noqa: E402
from fhvae.io.tables import read_vectors  # noqa: E402
from fhvae.training.checkpoint import load_model  # noqa: E402

MODES = ("unadapted", "mean", "mean+plda")
EMBEDDINGS = (CANDIDATE, BASELINE)


def adaptation_of(mode: str, name: str) -> Adaptation | None:
    """Every back-end adapted in `mode`: the table decides which ones to adapt."""
    return (None if mode == "unadapted"
            else Adaptation(name, plda=mode == "mean+plda", backends=BACKENDS))


class Pool:
    """Trials and per-system scores of one trial-list name, gathered over the folds."""

    def __init__(self) -> None:
        self.trials: list = []
        self.scores: dict[str, list[np.ndarray]] = {}

    def system_name(self, embedding: str, backend: str, mode: str) -> str:
        return f"{embedding}_{backend}_{mode}"

    def evaluate(self, utt2spk: dict[str, str], num_resamples: int, seed: int) -> dict:
        names = list(self.scores)
        scores = np.stack([np.concatenate(self.scores[n]) for n in names])
        is_target = np.array([t.is_target for t in self.trials])
        eers = [compute_eer(s[is_target], s[~is_target]) for s in scores]
        resampled = bootstrap_eers(scores, is_target, [utt2spk[t.enroll] for t in self.trials],
                                   [utt2spk[t.test] for t in self.trials], num_resamples, seed)
        out = {"num_trials": [int(is_target.sum()), int((~is_target).sum())], "systems": {
            n: {"eer": e, "interval": percentile_interval(resampled[:, k])}
            for k, (n, e) in enumerate(zip(names, eers))}, "differences": {}}
        for b in BACKENDS:
            pairs = [(self.system_name(e, b, m), self.system_name(e, b, "unadapted"))
                     for e in EMBEDDINGS for m in MODES[1:]]
            pairs += [(self.system_name(CANDIDATE, b, m), self.system_name(BASELINE, b, m))
                      for m in MODES]
            for a, c in pairs:
                cmp = compare(names, eers, resampled, a, c)
                out["differences"][f"{a} - {c}"] = {"difference": cmp.difference,
                                                    "interval": cmp.interval}
        return out


def table(results: dict[str, dict], descriptions: dict[str, str]) -> str:
    """One markdown table per trial list: EER [interval] per embedding and mode, and the
    adapted − unadapted and s-vector − FBank differences with their intervals."""

    def cell(value: float, interval: tuple[float, float], signed: bool = False) -> str:
        fmt = "{:+.2f}" if signed else "{:.2f}"
        low, high = interval
        mark = "**" if signed and (high < 0 or low > 0) else ""
        return f"{mark}{fmt.format(value)}{mark} ({low:.2f} … {high:.2f})"

    parts = []
    for name, res in results.items():
        target, nontarget = res["num_trials"]
        parts.append(f"### {descriptions[name]} ({target} target, {nontarget} nontarget)\n")
        header = ("| back-end | embedding | unadapted | mean | mean + PLDA | mean − unadapted | "
                  "mean + PLDA − unadapted |")
        rows = [header, "|---|---|---:|---:|---:|---:|---:|"]
        for b in BACKENDS:
            for e in EMBEDDINGS:
                sys_cells = [cell(res["systems"][f"{e}_{b}_{m}"]["eer"],
                                  res["systems"][f"{e}_{b}_{m}"]["interval"]) for m in MODES]
                diffs = [res["differences"][f"{e}_{b}_{m} - {e}_{b}_unadapted"] for m in MODES[1:]]
                diff_cells = [cell(d["difference"], d["interval"], True) for d in diffs]
                rows.append(f"| {b} | {e} | " + " | ".join(sys_cells + diff_cells) + " |")
            vs = [res["differences"][f"{CANDIDATE}_{b}_{m} - {BASELINE}_{b}_{m}"] for m in MODES]
            rows.append(f"| {b} | s-vector − FBank | "
                        + " | ".join(cell(d["difference"], d["interval"], True) for d in vs)
                        + " | | |")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adaptation_dev.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name in ("model", "train_data", "train_latents", "dev_data", "dev_latents", "out_dir"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--seed", type=int, default=777, help="speaker split, trials, bootstrap")
    parser.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    with threadpool_limits(args.num_threads):
        return run(args)


def run(args: argparse.Namespace) -> int:
    _, mvn, _ = load_model(args.model)
    train_sv, train_spk = load_train_svectors(args.train_data, args.train_latents)
    train = {CANDIDATE: train_sv,
             BASELINE: fbank_stats(args.train_data, mvn, sorted(train_sv))[0]}
    factors = DataDir(args.dev_data).factors()
    utt2spk = factors["speaker"]
    dev_sv = read_vectors(args.dev_latents / "svector.scp")
    if not dev_sv or any(u not in utt2spk for u in dev_sv):
        raise FhvaeError(f"{args.dev_latents / 'svector.scp'}: empty, or utterances not in "
                         f"{args.dev_data / 'utt2spk'}")
    utts = sorted(dev_sv)
    dev = {CANDIDATE: dev_sv, BASELINE: fbank_stats(args.dev_data, mvn, utts)[0]}
    utt2cond = utterance_conditions(factors)
    halves = split_speakers({u: utt2spk[u] for u in utts}, args.seed)   # utterance lists
    pools: dict[str, Pool] = {}
    descriptions: dict[str, str] = {}
    for fold, (adapt_utts, eval_utts) in enumerate((halves, halves[::-1]), 1):
        fold_dir = args.out_dir / f"fold{fold}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        eval_utt2spk = {u: utt2spk[u] for u in eval_utts}
        adapt_spk = {utt2spk[u] for u in adapt_utts}
        conds = None if utt2cond is None else {u: c for u, c in utt2cond.items()
                                               if u in eval_utt2spk}
        lists = load_trial_lists(fold_dir, eval_utt2spk, conds, None, args.seed, 10, 20000)
        for tl in lists:
            pools.setdefault(tl.name, Pool()).trials.extend(tl.trials)
            descriptions[tl.name] = tl.title
        write_text_atomic(fold_dir / "adapt_utts", "".join(u + "\n" for u in adapt_utts))
        name = f"{args.dev_data} (fold {fold}: {len(adapt_spk)} speakers, {len(adapt_utts)} utts)"
        for mode in MODES:
            mode_dir = fold_dir / mode
            mode_dir.mkdir(exist_ok=True)
            for emb in EMBEDDINGS:
                vectors = Embeddings(train[emb], {u: dev[emb][u] for u in eval_utt2spk},
                                     {u: dev[emb][u] for u in adapt_utts})
                scored = score_embedding(emb, vectors, train_spk, lists, BACKENDS, None, 0.01,
                                         mode_dir, adaptation_of(mode, name))
                for list_name, (systems, scores) in scored.items():
                    pool = pools[list_name]
                    for system, s in zip(systems, scores):
                        key = pool.system_name(emb, system.name.split("_")[1], mode)
                        pool.scores.setdefault(key, []).append(s)
    results = {name: pool.evaluate(utt2spk, args.bootstrap, args.seed)
               for name, pool in pools.items()}
    text = (f"EER (%) on {args.dev_data}, two folds pooled (back-ends fitted on "
            f"{args.train_data}; model {args.model}); 95% intervals from {args.bootstrap} "
            "bootstrap resamples of the speakers; differences in bold have an interval that "
            "excludes 0.\n\n" + table(results, descriptions))
    write_text_atomic(args.out_dir / "adaptation_dev.md", text)
    write_text_atomic(args.out_dir / "summary.json", json.dumps(
        {"halves": [sorted({utt2spk[u] for u in h}) for h in halves], "results": results},
        indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    run_main(main)
