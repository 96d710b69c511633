"""Re-combination score (fhvae/evaluate/recombination.py) on synthetic FBank where speaker, noise,
channel and phone class each own a few feature dimensions, so classifiers on real segments
are perfect: "decoded" segments that are B's real segments must score B's factors 100% and
A's content 0%, and the other way round."""

import numpy as np
import pytest
import torch

from fhvae.evaluate.inputs import EvalSet
from fhvae.evaluate.probes import split_utterances
from fhvae.evaluate.recombination import (check_decoded, choose_pairs, draw_segments,
                                          score_recombination)
from fhvae.features.mvn import MVN
from fhvae.inference import cut_segments
from fhvae.io.labels import NO_LABEL
from fhvae.model import FHVAE, ModelConfig

SEG = 5
SPEAKERS, NOISES, CHANNELS, CLASSES = 4, ("clean", "white"), ("close", "far"), 3
DIM = SPEAKERS + len(NOISES) + len(CHANNELS) + CLASSES


def make_evalset(seed: int = 0) -> tuple[EvalSet, dict[str, np.ndarray]]:
    """4 speakers x 4 utterances of 40-52 frames: one-hot codes of the speaker, noise, channel
    and per-frame phone class (runs of 2-6 frames) plus a little noise."""
    rng = np.random.default_rng(seed)
    factors = {"speaker": {}, "noise": {}, "channel": {}}
    feats, phone = {}, {}
    for s in range(SPEAKERS):
        for u in range(4):
            utt = f"s{s}-u{u}"
            n, c = u % 2, (u // 2) % 2
            factors["speaker"][utt], factors["noise"][utt] = f"s{s}", NOISES[n]
            factors["channel"][utt] = CHANNELS[c]
            num = int(rng.integers(40, 53))
            cls = np.repeat(rng.integers(CLASSES, size=num), rng.integers(2, 7, size=num))[:num]
            x = rng.normal(0, 0.2, (num, DIM))
            x[:, s] += 3
            x[:, SPEAKERS + n] += 3
            x[:, SPEAKERS + len(NOISES) + c] += 3
            x[np.arange(num), DIM - CLASSES + cls] += 3
            feats[utt] = x.astype(np.float32)
            phone[utt] = np.array([f"c{k}" for k in cls], dtype=object)
            phone[utt][-1] = NO_LABEL
    utts = sorted(feats)
    return EvalSet(utts=utts, factors=factors, z1={}, z2={}, svector={}, phone_class=phone), feats


IDENTITY = MVN(np.zeros(DIM, np.float32), np.ones(DIM, np.float32))


@pytest.fixture
def prepared():
    evalset, feats = make_evalset()
    fit_utts, pair_utts = split_utterances(evalset.utt2spk, seed=1)
    fit = cut_segments({u: feats[u] for u in fit_utts}, IDENTITY, SEG)
    segs = draw_segments(feats, IDENTITY, choose_pairs(evalset, pair_utts, 1, 60), SEG, seed=2)
    return evalset, feats, fit, segs


def test_pairs_differ_in_speaker_and_condition(prepared):
    evalset, _, _, segs = prepared
    for a, b in segs.pairs:
        assert evalset.utt2spk[a] != evalset.utt2spk[b]
        assert evalset.factors["noise"][a] != evalset.factors["noise"][b]
        assert evalset.factors["channel"][a] != evalset.factors["channel"][b]
    a, b = segs.pairs[0]
    start_a, start_b = segs.starts[0]
    assert start_a % SEG == 0 and start_b % SEG == 0
    np.testing.assert_array_equal(segs.real_b[0], prepared[1][b][start_b:start_b + SEG])


def test_real_b_as_decoded_carries_b_factors_and_b_content(prepared):
    evalset, feats, fit, segs = prepared
    checks = {c.test: c for c in check_decoded(evalset, fit, segs, segs.real_b)}
    for factor in ("speaker", "noise", "channel"):
        check = checks[f"{factor}: B's rather than A's"]
        assert check.num == 60 and check.chance == 0.5
        assert check.acc_decoded == 1.0 and check.acc_real == 1.0
    differ = checks["phone class: A's rather than B's"]
    assert differ.acc_decoded == 0.0 and differ.acc_real == 1.0
    # A's frame classes are matched only where B's frame happens to have the same class
    truth = [np.concatenate([evalset.phone_class[p[i]][s[i]:s[i] + SEG]
                             for p, s in zip(segs.pairs, segs.starts)]) for i in (0, 1)]
    labelled = truth[0] != NO_LABEL
    plain = checks["phone class of A's frames"]
    assert plain.num == labelled.sum() and plain.acc_real == 1.0
    assert plain.acc_decoded == pytest.approx(np.mean(truth[0][labelled] == truth[1][labelled]))
    assert differ.num == np.sum(labelled & (truth[1] != NO_LABEL) & (truth[0] != truth[1]))
    # chance: the most frequent class of the classifier's (real, fit-side) frames, on A's frames
    fit_labels = np.concatenate([evalset.phone_class[fit.utts[u]][s:s + SEG]
                                 for u, s in zip(fit.utt, fit.start)])
    values, counts = np.unique(fit_labels[fit_labels != NO_LABEL].astype(str), return_counts=True)
    assert plain.chance == pytest.approx(np.mean(truth[0][labelled] == values[np.argmax(counts)]))


def test_real_a_as_decoded_carries_a_factors_and_a_content(prepared):
    evalset, _, fit, segs = prepared
    checks = {c.test: c for c in check_decoded(evalset, fit, segs, segs.real_a)}
    assert checks["speaker: B's rather than A's"].acc_decoded == 0.0
    assert checks["noise: B's rather than A's"].acc_decoded == 0.0
    assert checks["phone class of A's frames"].acc_decoded == 1.0
    assert checks["phone class: A's rather than B's"].acc_decoded == 1.0


def test_score_recombination_runs_the_model_on_seeded_pairs():
    evalset, feats = make_evalset()
    torch.manual_seed(0)
    model = FHVAE(ModelConfig(feat_dim=DIM, seg_len=SEG, z1_dim=3, z2_dim=2, hidden=8,
                              num_layers=1, num_seqs=4))
    score = score_recombination(evalset, feats, model, IDENTITY, seed=4, num_pairs=30)
    assert (score.num_pairs, score.num_fit_utts, score.num_pair_utts) == (30, 8, 8)
    assert [c.test for c in score.checks] == [
        "speaker: B's rather than A's", "noise: B's rather than A's",
        "channel: B's rather than A's", "phone class of A's frames",
        "phone class: A's rather than B's"]
    assert all(c.acc_real == 1.0 for c in score.checks)
    assert score_recombination(evalset, feats, model, IDENTITY, seed=4, num_pairs=30) == score
    evalset.phone_class = None
    del evalset.factors["channel"]
    tests = [c.test for c in score_recombination(evalset, feats, model, IDENTITY, 4, 30).checks]
    assert tests == ["speaker: B's rather than A's", "noise: B's rather than A's"]


def test_no_score_when_no_speaker_has_a_second_utterance():
    evalset, feats = make_evalset()
    first = [u for u in evalset.utts if u.endswith("-u0")]
    single = EvalSet(utts=first, factors={f: {u: lab[u] for u in first}
                                          for f, lab in evalset.factors.items()},
                     z1={}, z2={}, svector={}, phone_class=evalset.phone_class)
    model = FHVAE(ModelConfig(feat_dim=DIM, seg_len=SEG, z1_dim=3, z2_dim=2, hidden=8,
                              num_layers=1, num_seqs=4))
    assert score_recombination(single, feats, model, IDENTITY, seed=0) is None
