"""i-vector training and extraction memory does not grow with the number of utterances:
the peak traced allocation (tracemalloc, numpy's arrays included) at 4N utterances stays
within 1.5x of that at N. Only the command lines are used, so this file also measures a
checkout of the code from before streaming (issue 31: there it grew about 3x)."""

from __future__ import annotations

import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from helpers import ROOT, clean_env, run

NUM_UTTS = 128          # N (a full block of statistics); the larger set has 4N
NUM_BINS = 20
# tiny model, UBM frames capped: what is left to grow is what each utterance costs
OPTS = ["--num-gauss", "4", "--ivector-dim", "3", "--num-iters", "2", "--ubm-iters", "2",
        "--num-ceps", "8", "--gaussian-min-count", "0", "--vad", "false",
        "--ubm-max-frames", "2000"]
# pre-imports everything (sklearn too), so the trace holds the run's own allocations only
PEAK = """
import sys, tracemalloc
from importlib import import_module
import sklearn.cluster, kaldiio
main = import_module(sys.argv[1]).main
tracemalloc.start()
assert main(sys.argv[2:]) == 0
print("peak", tracemalloc.get_traced_memory()[1])
"""


def write_utterances(path: Path, num_utts: int) -> None:
    """`num_utts` utterances of 150-250 frames, 4 per speaker."""
    rng = np.random.default_rng(num_utts)
    path.mkdir(parents=True)
    utts = [f"spk{k // 4:04d}-utt{k % 4}" for k in range(num_utts)]
    with kaldiio.WriteHelper(f"ark,scp:{path / 'feats.ark'},{path / 'feats.scp'}") as writer:
        for utt in utts:
            frames = int(rng.integers(150, 250))
            writer(utt, (rng.normal(0, 1, (frames, NUM_BINS)) + 8).astype(np.float32))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))


def peak_bytes(module: str, *args: Path | str) -> int:
    proc = run([sys.executable, "-c", PEAK, module, *map(str, args)], cwd=ROOT,
               env=clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.split("peak")[-1])


@pytest.mark.timeout(600)
def test_peak_memory_does_not_grow_with_the_number_of_utterances(tmp_path):
    peaks: dict[str, list[int]] = {"train": [], "extract": []}
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        data, exp = tmp_path / f"data{num_utts}", tmp_path / f"exp{num_utts}"
        write_utterances(data, num_utts)
        peaks["train"].append(peak_bytes("fhvae.bin.train_ivector", *OPTS, data, exp))
        peaks["extract"].append(peak_bytes("fhvae.bin.extract_ivector",
                                           tmp_path / f"exp{NUM_UTTS}" / "extractor.npz",
                                           data, exp / "iv"))
    report = {stage: f"{a / 1e6:.2f} MB at {NUM_UTTS}, {b / 1e6:.2f} MB at {4 * NUM_UTTS} "
              f"utterances ({b / a:.2f}x)" for stage, (a, b) in peaks.items()}
    print(report)
    for stage, (small, large) in peaks.items():
        assert large <= 1.5 * small, report[stage]
