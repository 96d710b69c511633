"""Stage 5's memory. The robust-ASR probe labels the frames of a few hundred training
utterances from the training set's phone CTM: it must hold the segments of those utterances
only, not of every utterance of the CTM (44 an utterance, 7.6 kB as tuples, before the
fix): the peak traced allocation of reading the labels of a fixed 20 utterances grows by
less than BUDGET bytes for each utterance the CTM gains from N to 4N. The speaker
bootstrap must not hold a weight per resample and trial (8 kB a trial at the default 1,000
resamples, before the fix): its peak stays within 1.5x from R to 10R resamples."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np

from fhvae.evaluate.bootstrap import bootstrap_metrics
from fhvae.io.labels import read_ctm_frame_labels

NUM_UTTS = 500           # N utterances in the CTM; the larger one has 4N
PHONES_PER_UTT = 44      # as the built-in corpus (3-5 s utterances)
WANTED = 20              # utterances whose labels are asked for, the same at N and 4N
BUDGET = 100             # bytes per utterance of the CTM (measured: 0; before the fix 7.6 kB)


def write_ctm(path: Path, num_utts: int) -> None:
    path.write_text("".join(f"tr{k:05d}-001 1 {p * 0.0909:.4f} 0.0909 ax sonorant\n"
                            for k in range(num_utts) for p in range(PHONES_PER_UTT)))


def peak_bytes(call: Callable[[], object]) -> int:
    """The peak traced allocation while `call` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def labels_of_a_few(ctm: Path) -> None:
    num_frames = {f"tr{k:05d}-001": 400 for k in range(WANTED)}
    assert sorted(read_ctm_frame_labels(ctm, num_frames, column="phone")) == sorted(num_frames)


def test_frame_labels_of_a_few_utterances_hold_only_their_segments(tmp_path):
    peaks = []
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        write_ctm(tmp_path / f"{num_utts}.ctm", num_utts)
        peaks.append(peak_bytes(lambda: labels_of_a_few(tmp_path / f"{num_utts}.ctm")))
    per_utt = (peaks[1] - peaks[0]) / (3 * NUM_UTTS)
    print(f"frame labels of {WANTED} utterances: {per_utt:.0f} bytes per utterance of the CTM")
    assert per_utt < BUDGET, f"{per_utt:.0f} bytes per utterance"


def test_the_bootstrap_holds_no_weight_per_resample_and_trial():
    rng = np.random.default_rng(0)
    num_trials, speakers = 2000, [f"s{i:02d}" for i in range(40)]
    enroll = [speakers[i] for i in rng.integers(0, 40, num_trials)]
    is_target = rng.random(num_trials) < 0.5
    test = [a if t else speakers[i] for a, t, i in zip(enroll, is_target,
                                                      rng.integers(0, 40, num_trials))]
    is_target = np.array([a == b for a, b in zip(enroll, test)])
    scores = rng.normal(size=(3, num_trials)) + is_target
    peaks = [peak_bytes(lambda: bootstrap_metrics(scores, is_target, enroll, test, r, seed=1))
             for r in (100, 1000)]
    print(f"bootstrap: {peaks[0] / 1e6:.1f} MB at 100 resamples, {peaks[1] / 1e6:.1f} MB at 1000")
    assert peaks[1] < 1.5 * peaks[0], peaks
