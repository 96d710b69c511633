"""The augmentation probe's scoring: accuracies per condition, the share of the gap closed
and speaker-bootstrap weights, against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fhvae.evaluate.augment_probe import (INPUTS, Frames, eval_conditions, read_frames,
                                          score_table, speaker_weights)
from fhvae.features.mvn import MVN
from fhvae.io.tables import write_table


def test_speaker_weights_count_draws_of_whole_speakers():
    spk = np.array(["a", "a", "b", "c", "c", "c"])
    w = speaker_weights(spk, 50, seed=1)
    assert w.shape == (50, 6)
    for row in w:
        assert row[0] == row[1] and row[3] == row[4] == row[5]      # a speaker moves whole
        assert row[0] + row[2] + row[3] == 3                        # 3 draws of 3 speakers


def test_score_table_accuracy_and_gap_closed():
    utt = np.array(["u1"] * 4 + ["u2"] * 4 + ["u3"] * 4)
    test = Frames({n: np.zeros((12, 1)) for n in INPUTS}, np.array(["p"] * 12),
                  np.array(["s1"] * 4 + ["s2"] * 4 + ["s3"] * 4), utt)
    conditions = [("home", {"u1"}, False), ("noisy", {"u2"}, True), ("far", {"u3"}, True)]
    correct = {"clean": np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0], float),
               "+FHVAE": np.array([1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0], float),
               "+real": np.array([1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1], float)}
    table = score_table("FBank", correct, test, conditions, 200, seed=0)
    acc = {r.name: r.acc for r in table.conditions}
    assert acc["home"] == {"clean": 1.0, "+FHVAE": 0.75, "+real": 1.0}
    assert acc["noisy"] == {"clean": 0.0, "+FHVAE": 0.25, "+real": 0.75}
    assert acc["far"] == {"clean": 0.25, "+FHVAE": 0.5, "+real": 1.0}
    # mean gain of (b) (0.25, 0.25) over mean gain of (c) (0.75, 0.75)
    assert abs(table.closure - 0.25 / 0.75) < 1e-12
    lo, hi = table.closure_interval
    assert lo <= table.closure <= hi
    noisy = next(r for r in table.conditions if r.name == "noisy")
    assert noisy.interval["b-a"] == (0.25, 0.25)          # one speaker: every resample agrees


def test_conditions_and_frames_of_a_data_dir(tmp_path):
    utts = ["s1-a", "s1-b", "s2-a"]
    (tmp_path / "utt2spk").write_text("s1-a s1\ns1-b s1\ns2-a s2\n")
    (tmp_path / "utt2noise").write_text("s1-a clean\ns1-b white\ns2-a clean\n")
    (tmp_path / "utt2channel").write_text("s1-a close\ns1-b close\ns2-a far\n")
    rng = np.random.default_rng(0)
    write_table(tmp_path / "f.ark", tmp_path / "feats.scp",
                [(u, rng.normal(size=(40, 80)).astype(np.float32)) for u in utts])
    # frame t's centre is 0.01 t + 0.0125 s: phones cover frames 0-19 ('a') and 20-29 ('b')
    (tmp_path / "phone_ali.ctm").write_text("".join(f"{u} 1 0.0 0.2 a x\n{u} 1 0.2 0.1 b y\n"
                                                    for u in utts))
    names = [(n, u, away) for n, u, away in eval_conditions(tmp_path)]
    assert names == [("clean, close", {"s1-a"}, False), ("noise = clean", {"s1-a", "s2-a"}, False),
                     ("noise = white", {"s1-b"}, True),
                     ("channel = close", {"s1-a", "s1-b"}, False),
                     ("channel = far", {"s2-a"}, True)]
    frames = read_frames(tmp_path, MVN(np.zeros(80, np.float32), np.ones(80, np.float32)), 20, 4)
    # 30 labelled frames per utterance, every 4th: 8; 4 spliced frames of 80 bins
    assert frames.x["FBank+CMVN spliced"].shape == (3 * 8, 4 * 80)
    assert list(frames.phone[:8]) == ["a"] * 5 + ["b"] * 3
    assert list(frames.spk) == ["s1"] * 16 + ["s2"] * 8
