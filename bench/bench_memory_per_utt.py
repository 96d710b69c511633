"""What each stage holds per utterance of the corpus: the peak traced allocation
(tracemalloc, numpy arrays included) of the stage's per-utterance parts at N and 4N
utterances of synthetic inputs shaped like the built-in corpus's, as bytes per added
utterance. These are the parts that are inherently per corpus (tables, one vector per
utterance); docs/benchmarks.md ('Memory per stage') lists them with what is flat, and the
tests test_*_memory.py hold the fixed stages to their budgets.

  python bench/bench_memory_per_utt.py [--utts 1000]      # ~1 min on 2 cores
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile
import torch

from common import write_results  # first: makes the repository importable

from fhvae.bin.extract import main as extract_main  # noqa: E402
from fhvae.bin.validate_data_dir import main as validate_main  # noqa: E402
from fhvae.evaluate.pipeline import load_train_svectors, read_embedding  # noqa: E402
from fhvae.evaluate.trials import make_trials  # noqa: E402
from fhvae.evaluate.verification import Embeddings, TrialList, score_embedding  # noqa: E402
from fhvae.features.fbank import FbankComputer, FbankConfig  # noqa: E402
from fhvae.features.job import compute_fbank_job  # noqa: E402
from fhvae.features.mvn import MVN  # noqa: E402
from fhvae.features.stats_embedding import fbank_stats  # noqa: E402
from fhvae.io.tables import write_table  # noqa: E402
from fhvae.io.validate import fix_data_dir  # noqa: E402
from fhvae.model import FHVAE, ModelConfig  # noqa: E402
from fhvae.training.checkpoint import save_checkpoint  # noqa: E402

UTTS_PER_SPK = 6
PHONES = 44                   # per utterance of 3-5 s
SVECTOR_DIM, IVECTOR_DIM, FBANK_DIM = 128, 200, 80


def utterances(num: int) -> list[tuple[str, str]]:
    """(utterance, speaker) ids as the built-in corpus names them at 50 h."""
    return [(f"tr{k // UTTS_PER_SPK:05d}-{k % UTTS_PER_SPK + 1:03d}",
             f"tr{k // UTTS_PER_SPK:05d}") for k in range(num)]


def write_tables(path: Path, num: int) -> list[tuple[str, str]]:
    """The tables and CTM that stages 0-1 leave in data/train (feats.scp into one ark)."""
    utts = utterances(num)
    values = {"utt2spk": "{spk}", "wav.scp": "/corpus/train/{spk}/{utt}.wav",
              "text": "green window north lake basket seven quiet bread river mountain",
              "utt2dur": "4.0125", "utt2noise": "babble", "utt2snr": "12",
              "utt2channel": "far", "utt2gender": "m", "utt2num_frames": "399",
              "feats.scp": "/fbank/raw_fbank_train.1.ark:{offset}"}
    path.mkdir(parents=True)
    for name, value in values.items():
        (path / name).write_text("".join(
            f"{u} {value.format(spk=s, utt=u, offset=12 + 128_000 * k)}\n"
            for k, (u, s) in enumerate(utts)))
    spk2utt: dict[str, list[str]] = {}
    for u, s in utts:
        spk2utt.setdefault(s, []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in spk2utt.items()))
    (path / "phone_ali.ctm").write_text("".join(
        f"{u} 1 {p * 0.0909:.4f} 0.0909 ax sonorant\n" for u, _ in utts for p in range(PHONES)))
    return utts


def validate(tmp: Path, num: int) -> Callable[[], object]:
    write_tables(tmp / "data", num)
    return lambda: validate_main(["--no-text", "--no-path-check", str(tmp / "data")])


def fix(tmp: Path, num: int) -> Callable[[], object]:
    write_tables(tmp / "data", num)
    return lambda: fix_data_dir(tmp / "data")


def fbank_job(tmp: Path, num: int) -> Callable[[], object]:
    """One FBank job over `num` short wavs: what it keeps per utterance (utt2num_frames,
    utt2dur, the wav.scp part), not the audio."""
    wav = tmp / "a.wav"
    soundfile.write(wav, np.zeros(800), 16000, subtype="PCM_16")
    (tmp / "wav.scp").write_text("".join(f"{u} {wav}\n" for u, _ in utterances(num)))
    computer = FbankComputer(FbankConfig(dither=0.0))
    return lambda: compute_fbank_job(computer, tmp / "wav.scp", tmp / "f.ark", tmp / "f.scp",
                                     utt2num_frames=tmp / "n", utt2dur=tmp / "d")


def features(path: Path, utts: list[tuple[str, str]], frames: int = 30) -> None:
    rng = np.random.default_rng(0)
    write_table(path / "feats.ark", path / "feats.scp",
                ((u, rng.normal(size=(frames, FBANK_DIM)).astype(np.float32)) for u, _ in utts))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in utts))


def extract(tmp: Path, num: int) -> Callable[[], object]:
    """Stage 4 on the training set as run.sh runs it (s-vectors only): one job, the merge
    and the speaker means."""
    cfg = ModelConfig(feat_dim=FBANK_DIM, hidden=16, z1_dim=4, z2_dim=8, num_seqs=4)
    save_checkpoint(tmp / "model.pt", {
        "model_config": cfg.to_dict(), "model": FHVAE(cfg).state_dict(),
        "mvn_mean": torch.zeros(FBANK_DIM), "mvn_std": torch.ones(FBANK_DIM),
        "train_config": {}, "step": 0})
    (tmp / "data").mkdir()
    features(tmp / "data", utterances(num))
    args = [str(tmp / "model.pt"), str(tmp / "data"), str(tmp / "out"), "--device", "cpu",
            "--svector-only", "--num-jobs", "1"]
    return lambda: (extract_main(args + ["--job", "1"]), extract_main(args + ["--merge"]))


def evaluate_train_side(tmp: Path, num: int) -> Callable[[], object]:
    """Stage 5's training-set side: s-vectors, i-vectors and FBank statistics of every
    training utterance read, and the three back-ends fitted on each embedding (scored on a
    fixed 60-utterance test set)."""
    rng = np.random.default_rng(0)
    utts = utterances(num)
    (tmp / "data").mkdir()
    features(tmp / "data", utts)
    for name, dim in (("svector", SVECTOR_DIM), ("ivector", IVECTOR_DIM)):
        write_table(tmp / f"{name}.ark", tmp / f"{name}.scp",
                    ((u, rng.normal(size=dim).astype(np.float32)) for u, _ in utts))
    (tmp / "lat").mkdir()
    shutil.move(tmp / "svector.scp", tmp / "lat" / "svector.scp")
    test_spk = {f"ts{k // 6:03d}-{k % 6}": f"ts{k // 6:03d}" for k in range(60)}
    trials = make_trials(test_spk, 0, 5)
    tests = {dim: {u: rng.normal(size=dim).astype(np.float32) for u in test_spk}
             for dim in (SVECTOR_DIM, IVECTOR_DIM, FBANK_DIM, 2 * FBANK_DIM)}
    mvn = MVN(np.zeros(FBANK_DIM, np.float32), np.ones(FBANK_DIM, np.float32))

    def run() -> None:
        svectors, train_spk = load_train_svectors(tmp / "data", tmp / "lat")
        names = sorted(svectors)
        means, meanstds = fbank_stats(tmp / "data", mvn, names)
        embeddings = {"svector": svectors, "ivector": read_embedding(tmp / "ivector.scp", names),
                      "fbank-meanstd": meanstds, "fbank-mean": means}
        lists = [TrialList("all", "all trials", tmp / "trials", "generated", trials)]
        for name, train in embeddings.items():
            dim = next(iter(train.values())).shape[0]
            score_embedding(name, Embeddings(train, tests[dim]), train_spk, lists,
                            ("cosine", "lda-wccn", "lda-plda"), None, 0.01, tmp)
    return run


PARTS = [(0, "validate_data_dir (also stage 1)", validate),
         (1, "fix_data_dir", fix),
         (1, "FBank job (its part of wav.scp)", fbank_job),
         (4, "extraction job + merge + speaker means (s-vectors only)", extract),
         (5, "evaluation, training side (vectors + back-ends)", evaluate_train_side)]


def peak(build: Callable[[Path, int], Callable[[], object]], num: int) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="memutt"))
    try:
        call = build(tmp, num)
        tracemalloc.start()
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        shutil.rmtree(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--utts", type=int, default=1000, help="N (the larger run has 4N)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for stage, what, build in PARTS:
        small, large = peak(build, args.utts), peak(build, 4 * args.utts)
        rows.append([stage, what, f"{small / 1e6:.2f}", f"{large / 1e6:.2f}",
                     f"{(large - small) / (3 * args.utts):,.0f}"])
    write_results("memory_per_utt", "Memory per utterance of the corpus, by stage",
                  ["stage", "part", "peak at N MB", "peak at 4N MB", "bytes per added utt"],
                  rows, torch.device("cpu"), "none", " ".join(["python", *sys.argv]),
                  f"N = {args.utts}; tracemalloc peaks of each part alone (Python and numpy "
                  "allocations, not the interpreter and libraries), synthetic inputs shaped "
                  "like the built-in corpus's (6 utterances a speaker, 44 phones an "
                  "utterance, 128-dim s-vectors, 200-dim i-vectors, 80-dim FBank).")


if __name__ == "__main__":
    main()
