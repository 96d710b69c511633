"""Robust-ASR probe (fhvae/evaluate/asr_probe.py) on FBank that is a one-hot code of the
phone: FBank-based inputs must then be 100% right in every condition, rare phones merge into
"other", and the training-side z1 is exactly what stage 4's extractor would write."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fhvae.evaluate.asr_probe import (INPUTS, MIN_PHONE_FRAMES, OTHER, _training_frames,
                                      labelled_rows, run_asr_probe, skip_reason, splice)
from fhvae.evaluate.inputs import EvalSet
from fhvae.evaluate.report import asr_section
from fhvae.features.mvn import MVN
from fhvae.inference import extract_latents
from fhvae.io.datadir import PHONE_CTM, DataDir
from fhvae.io.labels import read_ctm_frame_labels
from fhvae.io.tables import write_table
from fhvae.io.text_table import write_kv
from fhvae.model import FHVAE, ModelConfig

PHONES = ("a", "b", "c", "d", "e", "rare")
DIM = len(PHONES)
SEG = 5


def write_dir(root: Path, conditions: list[tuple[str, str]], seed: int) -> dict[str, np.ndarray]:
    """A data dir with one 160-frame utterance per (noise, channel); FBank = 3 x one-hot of
    the frame's phone (+ small noise); `rare` appears in one 3-frame run of every 4th utt."""
    rng = np.random.default_rng(seed)
    feats, ctm, spk, noise, channel = {}, [], [], [], []
    for i, (n, c) in enumerate(conditions):
        utt = f"{root.name}-{i:03d}"
        runs = [(int(rng.integers(5)), int(rng.integers(3, 9))) for _ in range(40)]
        if i % 4 == 0:
            runs[5] = (5, 3)
        cls = np.concatenate([np.full(length, p) for p, length in runs])[:160]
        start = 0
        for p, length in runs:
            end = min(start + length, len(cls))
            if end > start:   # frame t's centre (t + 1.25) * 10 ms lies in [t + 0.75, t + 1.75)
                ctm.append(f"{utt} 1 {(start + 0.75) * 0.01:.4f} {(end - start) * 0.01:.4f} "
                           f"{PHONES[p]} x\n")
            start = end
        x = rng.normal(0, 0.1, (len(cls), DIM))
        x[np.arange(len(cls)), cls] += 3
        feats[utt] = x.astype(np.float32)
        spk.append((utt, f"spk{i % 3}"))
        noise.append((utt, n))
        channel.append((utt, c))
    write_kv(root / "utt2spk", spk)
    write_kv(root / "utt2noise", noise)
    write_kv(root / "utt2channel", channel)
    (root / PHONE_CTM).write_text("".join(ctm))
    write_table(root / "feats.ark", root / "feats.scp", sorted(feats.items()))
    return feats


@pytest.fixture
def setup(tmp_path):
    torch.manual_seed(0)
    model = FHVAE(ModelConfig(feat_dim=DIM, seg_len=SEG, z1_dim=3, z2_dim=2, hidden=8,
                              num_layers=1, num_seqs=4)).eval()
    mvn = MVN(np.zeros(DIM, np.float32), np.ones(DIM, np.float32))
    train = tmp_path / "train"
    train.mkdir()
    write_dir(train, [("clean", "close")] * 8 + [("babble", "close"), ("clean", "far")] * 2, 1)
    test = tmp_path / "test"
    test.mkdir()
    conds = [("clean", "close"), ("babble", "far"), ("white", "close"), ("clean", "telephone")]
    feats = write_dir(test, conds * 2, 2)
    utts = sorted(feats)
    latents = dict(extract_latents(model, mvn, ((u, feats[u]) for u in utts),
                                   torch.device("cpu")))
    factors = {"speaker": dict(l.split() for l in (test / "utt2spk").read_text().splitlines()),
               "noise": dict(l.split() for l in (test / "utt2noise").read_text().splitlines()),
               "channel": dict(l.split() for l in (test / "utt2channel").read_text().splitlines())}
    evalset = EvalSet(utts=utts, factors=factors, z1={u: latents[u].z1 for u in utts},
                      z2={u: latents[u].z2 for u in utts}, svector={}, phone_class=None)
    return model, mvn, train, test, evalset, feats


def test_one_hot_fbank_is_recognised_in_every_condition(setup):
    model, mvn, train, test, evalset, feats = setup
    result = run_asr_probe(evalset, feats, model, mvn, train, test, seed=0, stride=2)
    assert result.num_train_utts == 8                   # the clean close-talk ones only
    assert result.num_merged == 1 and result.num_classes == 6   # a-e and "other" (= rare)
    names = [c.condition for c in result.conditions]
    assert names == ["clean, close (training condition)", "noise = babble", "noise = clean",
                     "noise = white", "channel = close", "channel = far", "channel = telephone"]
    assert [c.num_utts for c in result.conditions] == [2, 2, 4, 2, 4, 2, 2]
    for cond in result.conditions:
        assert list(cond.acc) == list(INPUTS)
        assert cond.acc["FBank"] == 1.0 and cond.acc["FBank+CMVN"] == 1.0, cond
        assert cond.acc["FBank spliced"] == 1.0 and cond.acc["FBank+CMVN spliced"] == 1.0
        assert 0.0 <= cond.acc["z1"] <= 1.0
    # chance: the most frequent training phone, on the condition's every 2nd labelled frame
    clean_close = [f"train-{i:03d}" for i in range(8)]
    phones = read_ctm_frame_labels(train / PHONE_CTM, {u: 160 for u in clean_close},
                                   column="phone")
    y = np.concatenate([phones[u][r] for u, r in labelled_rows(phones, clean_close, 2).items()])
    assert result.num_train_frames == y.size
    assert np.sum(y == "rare") < MIN_PHONE_FRAMES
    values, counts = np.unique(y, return_counts=True)
    majority = values[np.argmax(counts)]
    test_phones = read_ctm_frame_labels(test / PHONE_CTM, {u: 160 for u in evalset.utts},
                                        column="phone")
    ref = [u for u in evalset.utts if evalset.factors["noise"][u] == "clean"
           and evalset.factors["channel"][u] == "close"]
    y_ref = np.concatenate([test_phones[u][r]
                            for u, r in labelled_rows(test_phones, ref, 2).items()])
    assert result.conditions[0].num_frames == y_ref.size
    assert result.conditions[0].chance == pytest.approx(np.mean(y_ref == majority))
    assert OTHER not in values
    table = "".join(asr_section(result))
    assert ("| clean, close (training condition) | 2 | "
            f"{y_ref.size} | {100 * result.conditions[0].chance:.1f}% | ") in table
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| test condition")]
    assert len(rows) == 7 and all(r[6] == r[8] == r[9] == r[10] == "100.0%" for r in rows)
    assert "1 phones with fewer than 50" in table
    assert run_asr_probe(evalset, feats, model, mvn, train, test, seed=0, stride=2,
                         max_train_utts=3).num_train_utts == 3


def test_splice_takes_every_fifth_frame_of_the_z1_window_with_edges_repeated():
    feats = np.arange(30, dtype=np.float32)[:, None] * [1.0, -1.0]      # frame t: (t, -t)
    rows = np.array([0, 12, 29])
    got = splice(feats, rows, seg_len=20)
    # the 20-frame window of row t covers t-10 .. t+9 (clipped to the utterance): frames
    # t-10, t-5, t, t+5
    for row, t in zip(got, rows):
        frames = np.clip([t - 10, t - 5, t, t + 5], 0, 29)
        assert np.array_equal(row, np.stack([frames, -frames], axis=1).ravel()), t
    assert got.shape == (3, 8)
    assert np.array_equal(splice(feats, rows, seg_len=5), feats[rows])   # the grid keeps row t


def test_training_z1_is_what_the_extractor_writes(setup):
    model, mvn, train, _, _, _ = setup
    utts = ["train-000", "train-001"]
    inputs, phones = _training_frames(model, mvn, train, utts, stride=3)
    feats = dict(DataDir(train).feats(utts, DIM))
    labels = read_ctm_frame_labels(train / PHONE_CTM, {u: 160 for u in utts}, column="phone")
    rows = labelled_rows(labels, utts, 3)
    lat = dict(extract_latents(model, mvn, feats.items(), torch.device("cpu")))
    np.testing.assert_allclose(inputs["z1"], np.concatenate([lat[u].z1[rows[u]] for u in utts]),
                               rtol=1e-5, atol=1e-6)
    z2 = np.concatenate([lat[u].z2[rows[u]] for u in utts])
    np.testing.assert_allclose(inputs["z1+z2"][:, 3:], z2, atol=1e-6)
    np.testing.assert_allclose(inputs["z2"], z2, atol=1e-6)
    np.testing.assert_allclose(inputs["FBank"], np.concatenate([feats[u][rows[u]] for u in utts]))
    assert list(phones) == list(np.concatenate([labels[u][rows[u]] for u in utts]))


def test_skip_reasons(setup, tmp_path):
    _, _, train, test, _, _ = setup
    assert skip_reason(train, test) is None
    (test / PHONE_CTM).unlink()
    assert skip_reason(train, test) == (f"No {PHONE_CTM} in `{test}`: robust-ASR probe skipped.")
    (train / "utt2noise").write_text("train-000 babble\n")
    assert "is labelled clean and close" in skip_reason(train, train)


def test_too_few_training_frames_for_two_phones_gives_no_result(setup):
    """Every phone below MIN_PHONE_FRAMES merges into one class: no classifier can be fit."""
    model, mvn, train, test, evalset, feats = setup
    assert run_asr_probe(evalset, feats, model, mvn, train, test, seed=0, stride=40,
                         max_train_utts=1) is None
