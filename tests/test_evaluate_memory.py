"""Stage 5's robust-ASR probe labels the frames of a few hundred training utterances from
the training set's phone CTM: it must hold the segments of those utterances only, not of
every utterance of the CTM (44 an utterance, 7.6 kB as tuples, before the fix). The peak
traced allocation of reading the labels of a fixed 20 utterances grows by less than
BUDGET bytes for each utterance the CTM gains from N to 4N."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from fhvae.io.labels import read_ctm_frame_labels

NUM_UTTS = 500           # N utterances in the CTM; the larger one has 4N
PHONES_PER_UTT = 44      # as the built-in corpus (3-5 s utterances)
WANTED = 20              # utterances whose labels are asked for, the same at N and 4N
BUDGET = 100             # bytes per utterance of the CTM (measured: 0; before the fix 7.6 kB)


def write_ctm(path: Path, num_utts: int) -> None:
    path.write_text("".join(f"tr{k:05d}-001 1 {p * 0.0909:.4f} 0.0909 ax sonorant\n"
                            for k in range(num_utts) for p in range(PHONES_PER_UTT)))


def peak_bytes(ctm: Path) -> int:
    num_frames = {f"tr{k:05d}-001": 400 for k in range(WANTED)}
    tracemalloc.start()
    try:
        labels = read_ctm_frame_labels(ctm, num_frames, column="phone")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert sorted(labels) == sorted(num_frames)


def test_frame_labels_of_a_few_utterances_hold_only_their_segments(tmp_path):
    peaks = []
    for num_utts in (NUM_UTTS, 4 * NUM_UTTS):
        write_ctm(tmp_path / f"{num_utts}.ctm", num_utts)
        peaks.append(peak_bytes(tmp_path / f"{num_utts}.ctm"))
    per_utt = (peaks[1] - peaks[0]) / (3 * NUM_UTTS)
    print(f"frame labels of {WANTED} utterances: {per_utt:.0f} bytes per utterance of the CTM")
    assert per_utt < BUDGET, f"{per_utt:.0f} bytes per utterance"
