"""EER/minDCF, trial lists and scoring back-ends on hand-worked and synthetic numbers."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_curve

from fhvae.errors import FhvaeError
from fhvae.evaluate.metrics import compute_eer, compute_min_dcf, error_rates
from fhvae.evaluate.scoring import CosineBackend, LdaPldaBackend, cosine, score_trials
from fhvae.evaluate.trials import Trial, make_trials, read_trials, write_trials

TARGET = [0.9, 0.8, 0.4]
NONTARGET = [0.7, 0.3, 0.2, 0.1]


def test_eer_hand_example():
    # Accept if score >= t. (P_fa, P_miss) points: (0,1) (0,2/3) (0,1/3) (1/4,1/3) (1/4,0) ...
    # The curve crosses P_miss = P_fa on the vertical step at P_fa = 1/4 -> EER 25 %.
    assert compute_eer(TARGET, NONTARGET) == pytest.approx(25.0)


def test_min_dcf_hand_example():
    # p=0.01: costs 0.01*P_miss + 0.99*P_fa over the points; best is (P_miss 1/3, P_fa 0):
    # 0.01/3, normalised by min(0.01, 0.99) -> 1/3.
    assert compute_min_dcf(TARGET, NONTARGET, 0.01) == pytest.approx(1 / 3)
    # p=0.5: best is (P_miss 0, P_fa 1/4): 0.5*0.25 / 0.5 = 0.25.
    assert compute_min_dcf(TARGET, NONTARGET, 0.5) == pytest.approx(0.25)


@pytest.mark.parametrize("target, nontarget, eer", [
    ([0.5, 0.5], [0.5, 0.5, 0.5], 50.0),          # all scores equal
    ([2.0, 3.0], [0.0, 1.0, 1.9], 0.0),           # perfectly separated
    ([0.5], [0.1, 0.9], 50.0),                    # single target between nontargets
    ([0.0], [1.0, 2.0], 100.0),                   # perfectly wrong
])
def test_eer_edge_cases(target, nontarget, eer):
    assert compute_eer(target, nontarget) == pytest.approx(eer)


def test_min_dcf_bounds():
    assert compute_min_dcf([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert compute_min_dcf([0.5, 0.5], [0.5, 0.5]) == pytest.approx(1.0)   # trivial system


def test_error_rates_match_sklearn_roc_with_ties():
    rng = np.random.default_rng(0)
    target = np.round(rng.normal(1.0, 1.0, 300), 1)    # rounding creates many ties
    nontarget = np.round(rng.normal(0.0, 1.0, 500), 1)
    labels = np.r_[np.ones(300), np.zeros(500)]
    fpr, tpr, _ = roc_curve(labels, np.r_[target, nontarget], drop_intermediate=False)
    p_miss, p_fa = error_rates(target, nontarget)
    np.testing.assert_allclose(p_fa, fpr)
    np.testing.assert_allclose(p_miss, 1 - tpr)
    eer = compute_eer(target, nontarget)
    assert 25 < eer < 38       # d' = 1 Gaussians: about 31 %


def test_metrics_reject_empty_or_nan():
    with pytest.raises(FhvaeError, match="nontarget"):
        compute_eer([1.0], [])
    with pytest.raises(FhvaeError, match="non-finite"):
        compute_eer([np.nan], [0.0])


def _utt2spk(num_spk=4, utts_per_spk=4):
    return {f"s{s}-u{u}": f"s{s}" for s in range(num_spk) for u in range(utts_per_spk)}


def test_make_trials_balanced_deterministic_no_self():
    utt2spk = _utt2spk()
    utt2spk["lonely-u0"] = "lonely"                 # a one-utterance speaker: no target trial
    trials = make_trials(utt2spk, seed=3, max_targets_per_utt=2)
    assert trials == make_trials(utt2spk, seed=3, max_targets_per_utt=2)
    assert trials != make_trials(utt2spk, seed=4, max_targets_per_utt=2)
    targets = [t for t in trials if t.is_target]
    assert len(targets) == len(trials) - len(targets) > 0
    pairs = {frozenset((t.enroll, t.test)) for t in trials}
    assert len(pairs) == len(trials)                # no repeated pair, no self-trial
    assert all(len(p) == 2 for p in pairs)
    assert all((utt2spk[t.enroll] == utt2spk[t.test]) == t.is_target for t in trials)
    assert all(t.enroll in utt2spk and t.test in utt2spk for t in trials)
    per_test = [sum(t.test == u for t in targets) for u in utt2spk]
    assert max(per_test) == 2 and "lonely-u0" not in {t.test for t in trials}
    # without the cap every one of the C(4,2) = 6 same-speaker pairs per speaker is used once
    all_targets = [t for t in make_trials(utt2spk, seed=3) if t.is_target]
    assert len(all_targets) == 4 * 6


def test_trials_roundtrip_and_unknown_utterance(tmp_path):
    utt2spk = _utt2spk(2, 3)
    trials = make_trials(utt2spk, seed=0)
    path = tmp_path / "trials"
    write_trials(path, trials)
    assert path.read_text().splitlines()[0].split()[2] in ("target", "nontarget")
    assert read_trials(path, utt2spk.keys()) == trials
    path.write_text("s0-u0 s0-u1 target\ns0-u0 ghost nontarget\n")
    with pytest.raises(FhvaeError, match=r"trials:2: unknown utterance 'ghost'"):
        read_trials(path, utt2spk.keys())
    path.write_text("s0-u0 s0-u1 maybe\n")
    with pytest.raises(FhvaeError, match=r"trials:1: expected"):
        read_trials(path, utt2spk.keys())


def test_cosine_known_values():
    np.testing.assert_allclose(cosine(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]),
                                      np.array([[0.0, 3.0], [2.0, 2.0], [-2.0, 0.0]])),
                               [0.0, 1.0, -1.0])
    backend = CosineBackend().fit(np.array([[1.0, 1.0], [3.0, 1.0]]), ["a", "b"])   # mean (2, 1)
    emb = {"e": np.array([3.0, 1.0]), "t": np.array([2.0, 2.0]), "u": np.array([4.0, 1.0])}
    scores, is_target = score_trials(backend, emb, [Trial("e", "t", False), Trial("e", "u", True)])
    np.testing.assert_allclose(scores, [0.0, 1.0])
    np.testing.assert_array_equal(is_target, [False, True])


def _speaker_data(rng, num_spk, per_spk, dim=6, spread=2.0):
    centres = rng.normal(0, spread, (num_spk, dim))
    x = np.repeat(centres, per_spk, axis=0) + rng.normal(0, 1.0, (num_spk * per_spk, dim))
    return x, np.repeat([f"spk{k}" for k in range(num_spk)], per_spk)


def test_lda_plda_is_exact_two_covariance_llr_and_separates_speakers():
    rng = np.random.default_rng(1)
    x_train, spk_train = _speaker_data(rng, 40, 8)
    backend = LdaPldaBackend(lda_dim=4).fit(x_train, spk_train)
    x_test, spk_test = _speaker_data(rng, 10, 4)
    e, t = x_test[:1], x_test[1:2]
    # brute-force LLR with the fitted covariances
    total = np.linalg.inv(backend.total_inv)
    joint = np.linalg.inv(backend.joint_inv)
    pe, pt = backend._project(e)[0], backend._project(t)[0]
    brute = (multivariate_normal(np.zeros(8), joint).logpdf(np.r_[pe, pt])
             - multivariate_normal(np.zeros(4), total).logpdf(pe)
             - multivariate_normal(np.zeros(4), total).logpdf(pt))
    assert backend.score(e, t)[0] == pytest.approx(brute, rel=1e-6)
    assert backend.score(t, e)[0] == pytest.approx(brute, rel=1e-6)     # symmetric
    utt2spk = {f"u{i}": s for i, s in enumerate(spk_test)}
    emb = {f"u{i}": v for i, v in enumerate(x_test)}
    trials = make_trials(utt2spk, seed=0)
    scores, is_target = score_trials(backend, emb, trials)
    assert compute_eer(scores[is_target], scores[~is_target]) < 15.0
    cos_scores, _ = score_trials(CosineBackend().fit(x_train, spk_train), emb, trials)
    assert compute_eer(cos_scores[is_target], cos_scores[~is_target]) < 25.0


def test_lda_plda_with_a_collapsed_dimension():
    """A latent dimension that never varies (posterior collapse) leaves LDA one direction
    short; the PLDA must be fitted in the dimension LDA actually returns."""
    rng = np.random.default_rng(2)
    x_train, spk_train = _speaker_data(rng, 40, 8)
    x_train[:, 3] = 1.5
    backend = LdaPldaBackend().fit(x_train, spk_train)
    assert backend.total_inv.shape == (5, 5)        # 6 dimensions, one constant
    x_test, spk_test = _speaker_data(rng, 10, 4)
    x_test[:, 3] = 1.5
    scores, is_target = score_trials(backend, {f"u{i}": v for i, v in enumerate(x_test)},
                                     make_trials({f"u{i}": s for i, s in enumerate(spk_test)}, 0))
    assert np.isfinite(scores).all() and compute_eer(scores[is_target], scores[~is_target]) < 15.0


def test_lda_plda_needs_repeated_speakers():
    with pytest.raises(FhvaeError, match="at least 2 training speakers"):
        LdaPldaBackend().fit(np.eye(3), ["a", "b", "c"])


# ------------------------------------------------- cross-checks on random numbers
def _eer_reference(target, nontarget):
    """EER from sklearn's ROC: P_miss where it equals P_fa on the linearly interpolated
    curve (P_fa - P_miss rises strictly from -1 to 1 over the thresholds)."""
    labels = np.r_[np.ones(len(target)), np.zeros(len(nontarget))]
    fpr, tpr, _ = roc_curve(labels, np.r_[target, nontarget], drop_intermediate=False)
    fnr = 1.0 - tpr
    return 100.0 * float(np.interp(0.0, fpr - fnr, fpr))


def _min_dcf_brute_force(target, nontarget, p_target):
    """Every threshold tried: each distinct score, and one above them all."""
    target, nontarget = np.asarray(target), np.asarray(nontarget)
    best = np.inf
    for t in np.r_[np.unique(np.r_[target, nontarget]), np.inf]:
        cost = p_target * np.mean(target < t) + (1 - p_target) * np.mean(nontarget >= t)
        best = min(best, cost)
    return best / min(p_target, 1 - p_target)


@pytest.mark.parametrize("seed", range(6))
def test_eer_and_min_dcf_match_independent_computations(seed):
    rng = np.random.default_rng(seed)
    num_t, num_n = rng.integers(5, 300, 2)
    target = rng.normal(rng.uniform(0, 3), rng.uniform(0.5, 2), num_t)
    nontarget = rng.normal(0.0, 1.0, num_n)
    if seed % 2:                                   # odd seeds: coarse scores, many ties
        target, nontarget = np.round(target, 1), np.round(nontarget, 1)
    assert compute_eer(target, nontarget) == pytest.approx(_eer_reference(target, nontarget),
                                                           abs=1e-9)
    for p in (0.01, 0.05, 0.5):
        assert compute_min_dcf(target, nontarget, p) == pytest.approx(
            _min_dcf_brute_force(target, nontarget, p), abs=1e-12)


def test_trial_weights_equal_repeated_trials():
    rng = np.random.default_rng(7)
    target, nontarget = rng.normal(1, 1, 40), rng.normal(0, 1, 90)
    w_t, w_n = rng.integers(0, 4, 40), rng.integers(0, 4, 90)
    assert compute_eer(target, nontarget, w_t, w_n) == pytest.approx(
        compute_eer(np.repeat(target, w_t), np.repeat(nontarget, w_n)), abs=1e-9)


@pytest.fixture
def plda_fit(monkeypatch):
    """Speakers y ~ N(0, B), utterances x = y + e, e ~ N(0, W), 4 per speaker. With length
    normalisation switched off (it is not linear), the back-end's two covariances must be
    A B A^T and A W A^T, A being its (linear) LDA map. Returns (fitted, true) pairs."""
    import fhvae.evaluate.scoring as scoring
    monkeypatch.setattr(scoring, "length_normalise", lambda x: x)
    rng = np.random.default_rng(3)
    dim, num_spk, per_spk = 3, 4000, 4
    rot = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    between = rot @ np.diag([2.0, 1.0, 0.5]) @ rot.T
    within = np.array([[1.0, 0.3, 0.0], [0.3, 0.8, -0.2], [0.0, -0.2, 0.6]])
    spk = rng.multivariate_normal(np.zeros(dim), between, num_spk)
    x = (np.repeat(spk, per_spk, axis=0)
         + rng.multivariate_normal(np.zeros(dim), within, num_spk * per_spk) + 5.0)
    backend = LdaPldaBackend(lda_dim=dim).fit(x, np.repeat(np.arange(num_spk), per_spk))
    a = (backend.lda.transform(np.eye(dim)) - backend.lda.transform(np.zeros((1, dim)))).T
    fitted_b = np.linalg.inv(backend.joint_inv)[:dim, dim:]
    fitted_w = np.linalg.inv(backend.total_inv) - fitted_b
    return {"between": (fitted_b, a @ between @ a.T), "within": (fitted_w, a @ within @ a.T)}


def _relative_error(fitted, true):
    return float(np.linalg.norm(fitted - true) / np.linalg.norm(true))


def test_plda_fit_recovers_the_within_speaker_covariance(plda_fit):
    assert _relative_error(*plda_fit["within"]) < 0.06     # sampling error here: ~0.03


def test_plda_fit_recovers_the_between_speaker_covariance(plda_fit):
    assert _relative_error(*plda_fit["between"]) < 0.06    # with W/n removed: ~0.013
