#!/usr/bin/env python3
"""Stage 5's verification on ready-made vectors: s-vectors against the i-vector, mean+std
FBank and mean FBank, LDA + WCCN and LDA + PLDA, all and same-condition trials, speaker
bootstrap and Holm over the table (fhvae.evaluate.verification, as stage 5 runs it), for
models stage 5 cannot take as they are (e.g. trained on normalised copies of the data).

Usage: score_svectors.py <out-dir> <mvn.npz> <train-data> <train-svector.scp> <eval-data>
         <eval-svector.scp> <train-ivector.scp|-> <eval-ivector.scp|-> [name=train.scp,eval.scp ...]

The FBank baselines read <train-data>/<eval-data> feats.scp, normalised with <mvn.npz> (the
default recipe's data/train/fhvae/mvn.npz keeps them equal across experiments). Trials are
stage 5's (seed 777), generated once into <eval-data>/trials777/ and reused. Extra named
embeddings (e.g. fused vectors) are scored beside them. Back-ends are fitted on the
utterances of <train-svector.scp> (the i-vector on those it has). Writes <out-dir>/table.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fhvae.evaluate.report import verification_section
from fhvae.evaluate.verification import (Embeddings, load_trial_lists, run_verification,
                                         utterance_conditions)
from fhvae.features.mvn import MVN
from fhvae.features.stats_embedding import fbank_stats
from fhvae.io.datadir import UTT2SPK, DataDir
from fhvae.io.tables import read_vectors

RESAMPLES, SEED = 1000, 777


def main() -> None:
    out, mvn_path, train_data, train_sv, eval_data, eval_sv, train_iv, eval_iv = sys.argv[1:9]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mvn = MVN.load(mvn_path)
    utt2spk = DataDir(eval_data).table(UTT2SPK)
    train_spk = DataDir(train_data).table(UTT2SPK)
    sv_train = read_vectors(train_sv)
    sv_eval = read_vectors(eval_sv)
    train_utts, eval_utts = sorted(sv_train), sorted(utt2spk)

    def on_eval(vectors: dict) -> dict:
        return {u: vectors[u] for u in eval_utts}

    embeddings = {"svector": Embeddings(sv_train, on_eval(sv_eval))}
    if train_iv != "-":
        ivectors = read_vectors(train_iv)
        embeddings["ivector"] = Embeddings({u: ivectors[u] for u in train_utts if u in ivectors},
                                           on_eval(read_vectors(eval_iv)))
    means, meanstds = fbank_stats(train_data, mvn, train_utts)
    eval_means, eval_meanstds = fbank_stats(eval_data, mvn, eval_utts)
    embeddings["fbank-meanstd"] = Embeddings(meanstds, eval_meanstds)
    embeddings["fbank-mean"] = Embeddings(means, eval_means)
    for extra in sys.argv[9:]:
        name, scps = extra.split("=")
        train_scp, eval_scp = scps.split(",")
        embeddings[name] = Embeddings({u: v for u, v in read_vectors(train_scp).items()
                                       if u in sv_train}, on_eval(read_vectors(eval_scp)))
    trials_dir = Path(eval_data) / f"trials{SEED}"
    trials_dir.mkdir(exist_ok=True)
    trial_lists = load_trial_lists(trials_dir, utt2spk, utterance_conditions(DataDir(eval_data).factors()),
                                   None, SEED, 10, 20000)
    results = run_verification(embeddings, {u: train_spk[u] for u in train_utts}, utt2spk,
                               trial_lists, ("lda-wccn", "lda-plda"), None, 0.01, RESAMPLES, SEED,
                               out)
    text = "\n".join(verification_section(results, RESAMPLES))
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
