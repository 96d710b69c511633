#!/usr/bin/env python3
"""Dev choice of the i-vector baseline's front-end and size (data/train + data/dev only).

Usage: OMP_NUM_THREADS=1 local/tuning/ivector_dev.py [options] [<train-data> <dev-data>
         <out-dir> <md>]
defaults: data/train data/dev /tmp/ivector_dev local/tuning/ivector_dev.md

A staged search, each system trained on <train-data> with fhvae.ivector's public API and
scored on <dev-data> by stage 5's own verification code (back-ends fitted on the training
i-vectors; stage 5's trial lists, seed 777):
  A. front-end at 128 Gaussians, 100 dims: Kaldi's sid front-end (MFCC-20 + deltas,
     sliding CMN, energy VAD) and each one-step change of it (raw FBank, no CMN, no VAD);
     if several changes help, also all of them together;
  B. size with the chosen front-end: 64/128/256 Gaussians x 100/200 dims, and 512 x
     100/200 when the best has 256 (the edge of the grid).
Choice: lowest LDA + PLDA EER on all dev trials; within TIE points of the lowest counts as a
tie, settled by the cheaper system (training + extraction seconds). Paired speaker-bootstrap
intervals against the chosen system are reported. Results are cached in <out-dir>, so a
rerun only adds what is missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fhvae.bin.cli import run_main  # noqa: E402
from fhvae.evaluate.bootstrap import bootstrap_eers, compare  # noqa: E402
from fhvae.evaluate.verification import (BACKENDS, Embeddings, load_trial_lists,  # noqa: E402
                                         score_embedding, utterance_conditions)
from fhvae.io.atomic import write_text_atomic  # noqa: E402
from fhvae.io.datadir import DataDir  # noqa: E402
from fhvae.ivector import IvectorConfig, extract_ivectors, train_ivector_system  # noqa: E402
from fhvae.ivector.features import FrontEndConfig  # noqa: E402

TIE = 0.1          # EER points
KALDI_SID = FrontEndConfig(feature_type="mfcc", num_ceps=20, delta_order=2, sliding_cmn=True,
                           vad=True)
CHANGES = {"raw FBank": {"feature_type": "fbank", "delta_order": 0},
           "no CMN": {"sliding_cmn": False}, "no VAD": {"vad": False}}
SIZES = [(64, 100), (64, 200), (128, 100), (128, 200), (256, 100), (256, 200)]


def describe(fe: FrontEndConfig) -> str:
    base = (f"MFCC-{fe.num_ceps}" if fe.feature_type == "mfcc" else "FBank-80")
    base += " + deltas" if fe.delta_order else ""
    return base + (", sliding CMN" if fe.sliding_cmn else "") + (", VAD" if fe.vad else "")


class Sweep:
    """Trains, extracts and scores systems, caching each result (JSON) and its scores."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.train, self.dev = DataDir(args.train_data), DataDir(args.dev_data)
        self.train_spk = self.train.factors()["speaker"]
        factors = self.dev.factors()
        self.utt2spk = factors["speaker"]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        self.lists = load_trial_lists(args.out_dir, self.utt2spk, utterance_conditions(factors),
                                      None, args.seed, 10, 20000)
        self.cache_path = args.out_dir / "results.json"
        self.results = (json.loads(self.cache_path.read_text())
                        if self.cache_path.is_file() else {})

    def eer(self, name: str) -> float:
        return self.results[name]["eer"]["all/lda-plda"]

    def run(self, fe: FrontEndConfig, num_gauss: int, dim: int) -> str:
        """Train, extract and score one system (unless cached); returns its name."""
        name = f"{describe(fe)} | {num_gauss} x {dim}"
        if name in self.results:
            return name
        cfg = IvectorConfig(front_end=fe, num_gauss=num_gauss, ivector_dim=dim,
                            seed=self.args.seed, num_threads=1)
        print(f"{time.strftime('%H:%M:%S')} training {name}", flush=True)
        out = self.args.out_dir / f"sys{len(self.results):02d}"
        out.mkdir(exist_ok=True)
        start = time.perf_counter()
        system = train_ivector_system(self.train, cfg, out)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        train_iv = dict(extract_ivectors(system, self.train))
        dev_iv = dict(extract_ivectors(system, self.dev))
        extract_s = time.perf_counter() - start
        scored = score_embedding("ivector", Embeddings(train_iv, dev_iv), self.train_spk,
                                 self.lists, BACKENDS, None, 0.01, out)
        result = {"dir": str(out), "config": json.loads(cfg.to_json()), "train_s": train_s,
                  "phases_s": system.train_seconds, "extract_s": extract_s, "eer": {}}
        for list_name, (systems, scores) in scored.items():
            for system_result, score in zip(systems, scores):
                backend = system_result.name.split("_")[1]
                result["eer"][f"{list_name}/{backend}"] = system_result.eer
                np.save(out / f"scores_{list_name}_{backend}.npy", score)
        self.results[name] = result
        write_text_atomic(self.cache_path, json.dumps(self.results, indent=1) + "\n")
        print(f"  EER {result['eer']}, train {train_s:.0f} s, extract {extract_s:.0f} s",
              flush=True)
        return name

    def choose(self, names: list[str]) -> str:
        """Lowest LDA+PLDA EER on all trials; near-ties go to the cheaper system."""
        best = min(self.eer(n) for n in names)
        tied = [n for n in names if self.eer(n) <= best + TIE]
        return min(tied, key=lambda n: self.results[n]["train_s"] + self.results[n]["extract_s"])

    def intervals(self, names: list[str], reference: str) -> dict[str, tuple[float, float]]:
        """95% paired speaker-bootstrap interval of each system's LDA+PLDA EER (all
        trials) minus the reference's."""
        trials = self.lists[0].trials
        scores = np.stack([np.load(Path(self.results[n]["dir"]) / "scores_all_lda-plda.npy")
                           for n in names])
        eers = [self.eer(n) for n in names]
        resampled = bootstrap_eers(scores, np.array([t.is_target for t in trials]),
                                   [self.utt2spk[t.enroll] for t in trials],
                                   [self.utt2spk[t.test] for t in trials],
                                   self.args.bootstrap, self.args.seed)
        return {n: compare(names, eers, resampled, n, reference).interval for n in names
                if n != reference}


def table(sweep: Sweep, names: list[str], chosen: str) -> str:
    intervals = sweep.intervals(names, chosen)
    keys = [f"{tl.name}/{b}" for tl in sweep.lists for b in BACKENDS]
    head = ("| system (front-end \\| Gaussians x dim) | " + " | ".join(keys)
            + " | LDA+PLDA all − chosen (95%) | train s | extract s |")
    rows = [head, "|" + "---|" * (len(keys) + 4)]
    for n in names:
        r = sweep.results[n]
        low, high = intervals.get(n, (0.0, 0.0))
        diff = "chosen" if n == chosen else (
            f"{sweep.eer(n) - sweep.eer(chosen):+.2f} "
            f"({low:+.2f} … {high:+.2f})")
        rows.append(f"| {n.replace('|', chr(92) + '|')} | "
                    + " | ".join(f"{r['eer'][k]:.2f}" for k in keys)
                    + f" | {diff} | {r['train_s']:.0f} | {r['extract_s']:.0f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivector_dev.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for name, default in (("train_data", "data/train"), ("dev_data", "data/dev"),
                          ("out_dir", "/tmp/ivector_dev"), ("md", "local/tuning/ivector_dev.md")):
        parser.add_argument(name, type=Path, nargs="?", default=Path(default))
    parser.add_argument("--seed", type=int, default=777, help="systems, trials, bootstrap")
    parser.add_argument("--bootstrap", type=int, default=1000, help="speaker resamples")
    args = parser.parse_args(argv)
    with threadpool_limits(1):
        return run(args)


def run(args: argparse.Namespace) -> int:
    sweep = Sweep(args)
    changed = {k: dataclasses.replace(KALDI_SID, **v) for k, v in CHANGES.items()}
    fronts = {sweep.run(fe, 128, 100): fe for fe in [KALDI_SID, *changed.values()]}
    names_a = list(fronts)
    base_eer = sweep.eer(names_a[0])
    helping = [k for k, n in zip(CHANGES, names_a[1:]) if sweep.eer(n) < base_eer - TIE]
    if len(helping) > 1:       # several one-step changes help: try them all together
        combined = dataclasses.replace(KALDI_SID, **{k: v for h in helping
                                                     for k, v in CHANGES[h].items()})
        fronts[sweep.run(combined, 128, 100)] = combined
    names_a = list(fronts)
    chosen_a = sweep.choose(names_a)
    names_b = [sweep.run(fronts[chosen_a], g, d) for g, d in SIZES]
    chosen = sweep.choose(names_b)
    largest = max(g for g, _ in SIZES)
    if chosen.endswith(f"| {largest} x {chosen.rsplit(' x ', 1)[1]}"):
        # the best is at the edge of the grid: one step further (twice the Gaussians)
        names_b += [sweep.run(fronts[chosen_a], 2 * largest, d)
                    for d in sorted({d for _, d in SIZES})]
        chosen = sweep.choose(names_b)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines()
                  if line.startswith("Model name")), "unknown")
    text = render(sweep, args, names_a, chosen_a, names_b, chosen, model)
    write_text_atomic(args.md, text)
    print(text)
    return 0


def render(sweep: Sweep, args: argparse.Namespace, names_a: list[str], chosen_a: str,
           names_b: list[str], chosen: str, model: str) -> str:
    first = sweep.results[names_a[0]]["config"]
    total = sum(r["train_s"] + r["extract_s"] for r in sweep.results.values())
    trials = "; ".join(f"{tl.name} = {tl.description} ({tl.num_target} target, "
                       f"{tl.num_nontarget} nontarget)" for tl in sweep.lists)
    return (
        "# i-vector baseline: dev choice of front-end and size\n\n"
        f"Made by `local/tuning/ivector_dev.py` (OMP_NUM_THREADS=1, one thread) on `{model}`, "
        f"2 cores shared with other jobs: {total / 60:.0f} min of training and extraction "
        f"for the {len(sweep.results)} systems. Every system is trained on "
        f"`{args.train_data}` ({len(sweep.train)} utterances, "
        f"{len(set(sweep.train_spk.values()))} speakers: UBM, extractor and the back-ends) and "
        f"scored on `{args.dev_data}` ({len(sweep.dev)} utterances, "
        f"{len(set(sweep.utt2spk.values()))} speakers) with stage 5's verification code "
        "(`fhvae.evaluate.verification.score_embedding`, trial lists of "
        "`load_trial_lists`, seed 777). No test set was read.\n\n"
        f"Fixed: {first['em_iters']} extractor EM iterations (means, variances, minimum "
        f"divergence), {first['ubm_iters']} UBM iterations on every "
        f"{first['ubm_subsample']}th frame (at most {first['ubm_max_frames']}), posteriors "
        f"pruned at {first['min_post']} among the top {first['num_gselect']}. EER in %; "
        f"trials: {trials}. "
        "train s = training seconds (front-end, UBM, statistics, EM); extract s = "
        "i-vectors of train and dev. The interval column is the paired "
        f"{args.bootstrap}-resample speaker bootstrap of the LDA + PLDA EER difference "
        "(all trials) against the stage's chosen system; where it includes 0 the "
        "difference is not shown to be real.\n\n"
        f"Rule: lowest LDA + PLDA EER on all dev trials; within {TIE} points counts as a tie, "
        "settled by the cheaper system (train + extract seconds).\n\n"
        "## A. Front-end (128 Gaussians, 100 dims)\n\n"
        + table(sweep, names_a, chosen_a)
        + f"\nChosen front-end: **{chosen_a.split(' | ')[0]}**.\n\n"
        "## B. Size (chosen front-end)\n\n" + table(sweep, names_b, chosen)
        + f"\nChosen system: **{chosen}** — the `IvectorConfig` defaults.\n")


if __name__ == "__main__":
    run_main(main)
