"""Stage 5 verification pieces: the LDA + WCCN back-end, condition-matched trial lists,
condition labels, and probes of speaker-level factors split by speaker."""

import itertools

import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.evaluate.inputs import EvalSet
from fhvae.evaluate.probes import is_speaker_level, run_probes, split_speakers
from fhvae.evaluate.scoring import LdaWccnBackend
from fhvae.evaluate.trials import Trial, condition_matched_trials, restrict_to_matched
from fhvae.evaluate.verification import make_backend, utterance_conditions


def speakers_with_nuisance(num_spk, utts, dim, seed):
    """Embeddings = speaker centre + a strong shared nuisance direction + small noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (num_spk, dim))
    nuisance = np.zeros(dim)
    nuisance[0] = 1.0
    spk = np.repeat(np.arange(num_spk), utts)
    x = centres[spk] + 8.0 * rng.normal(0, 1, (spk.size, 1)) * nuisance \
        + 0.2 * rng.normal(0, 1, (spk.size, dim))
    return x, [f"s{k}" for k in spk]


def test_wccn_whitens_the_within_speaker_covariance_and_scores_cosine():
    x, labels = speakers_with_nuisance(30, 8, 6, seed=0)
    backend = LdaWccnBackend().fit(x, labels)
    proj = backend._project(x)
    idx = np.unique(labels, return_inverse=True)[1]
    resid = proj - np.stack([proj[idx == k].mean(0) for k in range(30)])[idx]
    within = resid.T @ resid / (len(labels) - 30)
    assert np.allclose(within, np.eye(within.shape[0]), atol=1e-4)
    a, b = x[:5], x[5:10]
    want = [float(p @ q / np.linalg.norm(p) / np.linalg.norm(q))
            for p, q in zip(backend._project(a), backend._project(b))]
    assert backend.score(a, b) == pytest.approx(want)
    # the nuisance direction dominates raw cosine; WCCN removes it
    test, test_labels = speakers_with_nuisance(30, 8, 6, seed=0)
    pairs = list(itertools.combinations(range(0, 240, 7), 2))
    same = np.array([test_labels[i] == test_labels[j] for i, j in pairs])
    scores = backend.score(test[[i for i, _ in pairs]], test[[j for _, j in pairs]])
    assert scores[same].mean() > 0.9 and scores[~same].mean() < 0.3


def test_make_backend_names():
    assert isinstance(make_backend("lda-wccn", None), LdaWccnBackend)
    with pytest.raises(FhvaeError, match="unknown back-end 'plda'"):
        make_backend("plda", None)


def brute_force_matched(utt2spk, utt2cond):
    utts = sorted(utt2spk)
    return [Trial(a, b, utt2spk[a] == utt2spk[b]) for a, b in itertools.combinations(utts, 2)
            if utt2cond[a] == utt2cond[b]]


def test_condition_matched_trials_are_every_same_condition_pair():
    rng = np.random.default_rng(1)
    utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(7) for u in range(5)}
    utt2cond = {u: f"noise={rng.choice(['clean', 'pink'])},channel={rng.choice(['a', 'b'])}"
                for u in utt2spk}
    want = brute_force_matched(utt2spk, utt2cond)
    assert condition_matched_trials(utt2spk, utt2cond, seed=0) == want
    # the given-list path keeps exactly the same-condition trials of that list
    mixed = [Trial(a, b, utt2spk[a] == utt2spk[b])
             for a, b in itertools.combinations(sorted(utt2spk), 2)]
    assert restrict_to_matched(mixed, utt2cond) == want


def test_condition_matched_trials_sample_nontargets_but_keep_every_target():
    utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(20) for u in range(4)}
    utt2cond = {u: "c" + str(int(u[-1]) % 2) for u in utt2spk}
    full = brute_force_matched(utt2spk, utt2cond)
    got = condition_matched_trials(utt2spk, utt2cond, seed=3, max_nontarget=100)
    assert [t for t in got if t.is_target] == [t for t in full if t.is_target]
    nontarget = [t for t in got if not t.is_target]
    assert len(nontarget) == 100 and set(nontarget) <= set(full)
    assert got == condition_matched_trials(utt2spk, utt2cond, seed=3, max_nontarget=100)
    assert got != condition_matched_trials(utt2spk, utt2cond, seed=4, max_nontarget=100)
    with pytest.raises(FhvaeError, match="condition-matched"):
        condition_matched_trials({"a-1": "a", "a-2": "a"}, {"a-1": "x", "a-2": "y"}, seed=0)


def test_utterance_conditions_join_noise_and_channel():
    factors = {"speaker": {"u1": "a", "u2": "a", "u3": "b"},
               "noise": {"u1": "clean", "u2": "pink", "u3": "clean"},
               "channel": {"u1": "tel", "u2": "tel"}, "gender": {"u1": "f"}}
    assert utterance_conditions(factors) == {"u1": "noise=clean,channel=tel",
                                             "u2": "noise=pink,channel=tel"}
    assert utterance_conditions({"speaker": {"u1": "a"}, "gender": {"u1": "f"}}) is None


def test_speaker_level_factor_probed_on_unseen_speakers():
    """z2 = a random centre per speaker, gender a random coin per speaker: gender can only be
    'predicted' by recognising a speaker seen in training, so on unseen speakers it is chance."""
    rng = np.random.default_rng(0)
    num_spk, utts, frames = 40, 4, 60
    utt2spk, gender, z1, z2 = {}, {}, {}, {}
    centres = rng.normal(0, 3, (num_spk, 8))
    coins = rng.integers(0, 2, num_spk)
    for s in range(num_spk):
        for u in range(utts):
            utt = f"s{s:02d}-u{u}"
            utt2spk[utt], gender[utt] = f"s{s:02d}", "fm"[coins[s]]
            z1[utt] = rng.normal(0, 1, (frames, 8))
            z2[utt] = centres[s] + 0.1 * rng.normal(0, 1, (frames, 8))
    evalset = EvalSet(utts=sorted(utt2spk), factors={"speaker": utt2spk, "gender": gender},
                      z1=z1, z2=z2, svector={}, phone_class=None)
    assert is_speaker_level(gender, utt2spk)
    assert not is_speaker_level({"s00-u0": "a", "s00-u1": "b"}, utt2spk)
    train, test = split_speakers(utt2spk, seed=1)
    assert not {utt2spk[u] for u in train} & {utt2spk[u] for u in test}
    results = {p.factor: p for p in run_probes(evalset, seed=1, stride=20)}
    assert results["gender"].split == "speaker" and results["speaker"].split == "utterance"
    assert results["speaker"].acc_z2 > 0.95          # speakers are easy to tell apart ...
    assert abs(results["gender"].acc_z2 - 0.5) < 0.2  # ... but gender is not learnable here


def test_trial_lists_without_same_condition_targets_keep_only_all_trials(tmp_path):
    from fhvae.evaluate.verification import load_trial_lists
    utt2spk = {"a-1": "a", "a-2": "a", "b-1": "b", "b-2": "b"}
    utt2cond = {"a-1": "noise=x", "a-2": "noise=y", "b-1": "noise=x", "b-2": "noise=y"}
    lists = load_trial_lists(tmp_path, utt2spk, utt2cond, None, seed=0, max_targets_per_utt=5,
                             max_matched_nontarget=100)
    assert [tl.name for tl in lists] == ["all"] and not (tmp_path / "trials_matched").exists()
