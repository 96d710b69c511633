"""Back-end adaptation with unlabelled data (Kaldi's in-domain mean and ivector-adapt-plda),
checked against independent numpy computations on generated data."""

import numpy as np
import pytest

from fhvae.errors import FhvaeError
from fhvae.evaluate.scoring import (Adaptation, CosineBackend, LdaPldaBackend, LdaWccnBackend,
                                    PldaAdaptConfig, adapt_backend, adapt_plda_covariances,
                                    cosine)
from fhvae.evaluate.verification import BACKENDS, backend_label


def random_spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.2 * np.eye(dim)


def kaldi_route(mean, within, between, adapt, cfg):
    """PldaUnsupervisedAdaptor::UpdatePlda step by step: whiten the total covariance (here
    with its symmetric inverse square root), eigen-decompose the adaptation covariance in
    that space, add the scaled excess on the diagonal, transform back."""
    adapt_mean = adapt.mean(axis=0)
    variance = (adapt - adapt_mean).T @ (adapt - adapt_mean) / len(adapt)
    diff = adapt_mean - mean
    variance = variance + cfg.mean_diff_scale * np.outer(diff, diff)
    values, vectors = np.linalg.eigh(within + between)
    whiten = vectors @ np.diag(values ** -0.5) @ vectors.T
    s, p = np.linalg.eigh(whiten @ variance @ whiten.T)
    to_proj = p.T @ whiten
    w_proj, b_proj = to_proj @ within @ to_proj.T, to_proj @ between @ to_proj.T
    for i, value in enumerate(s):
        if value > 1.0:
            w_proj[i, i] += (value - 1.0) * cfg.within_covar_scale
            b_proj[i, i] += (value - 1.0) * cfg.between_covar_scale
    back = np.linalg.inv(to_proj)
    return adapt_mean, back @ w_proj @ back.T, back @ b_proj @ back.T


@pytest.mark.parametrize("cfg", [PldaAdaptConfig(), PldaAdaptConfig(0.3, 0.7, 0.0)])
def test_adapted_covariances_equal_kaldis_computation(cfg):
    rng = np.random.default_rng(0)
    dim = 6
    within, between = random_spd(rng, dim), random_spd(rng, dim)
    mean = rng.normal(size=dim)
    spread = np.linalg.cholesky(3.0 * random_spd(rng, dim))
    adapt = rng.normal(size=(500, dim)) @ spread.T + mean + 0.5
    got = adapt_plda_covariances(mean, within, between, adapt, cfg)
    want = kaldi_route(mean, within, between, adapt, cfg)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


def test_excess_variance_is_shared_out_and_smaller_variance_left_alone():
    within, between = np.diag([1.0, 1.0, 1.5]), np.diag([1.0, 1.0, 0.5])   # total 2 I
    z = np.random.default_rng(1).normal(size=(1000, 3))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / len(z))).T      # sample covariance I
    adapt = z * np.sqrt([8.0, 3.0, 0.5])                                # exactly these
    _, w, b = adapt_plda_covariances(np.zeros(3), within, between, adapt, PldaAdaptConfig())
    # direction 0: 4x the model's total 2, the excess 8 - 2 split 0.75 / 0.25, so the
    # adapted total is the adaptation data's variance; direction 1: 1.5x, excess 1;
    # direction 2 has less variance than the model expects and stays as it was
    np.testing.assert_allclose(w, np.diag([1 + 0.75 * 6, 1 + 0.75 * 1, 1.5]), atol=1e-9)
    np.testing.assert_allclose(b, np.diag([1 + 0.25 * 6, 1 + 0.25 * 1, 0.5]), atol=1e-9)


def speakers_data(rng, num_spk, per_spk, dim, shift=0.0, scale=1.0, centres=None):
    centres = rng.normal(0, 2, (num_spk, dim)) if centres is None else centres
    x = np.repeat(centres, per_spk, axis=0) + rng.normal(0, 1, (num_spk * per_spk, dim))
    labels = [f"s{k}" for k in range(num_spk) for _ in range(per_spk)]
    return shift + scale * x, labels


@pytest.mark.parametrize("backend", [CosineBackend, LdaWccnBackend, LdaPldaBackend])
def test_adaptation_data_from_the_training_distribution_barely_moves_scores(backend):
    rng = np.random.default_rng(2)
    train, labels = speakers_data(rng, 1000, 4, 8)
    adapt, _ = speakers_data(rng, 1000, 4, 8)                 # other speakers, same domain
    test, _ = speakers_data(rng, 50, 2, 8)
    enroll, probe = test[0::2], test[1::2]
    plain = backend().fit(train, labels)
    before = plain.score(enroll, probe)
    after = adapt_backend(plain, adapt, Adaptation("adapt", backends=BACKENDS)).score(enroll,
                                                                                  probe)
    # the sample's covariance exceeds the model's in some directions by chance alone
    assert np.corrcoef(before, after)[0, 1] > 0.98
    assert np.max(np.abs(after - before)) < 0.15 * np.ptp(before)


def test_mean_adaptation_centres_with_the_adaptation_mean_only():
    rng = np.random.default_rng(3)
    train, labels = speakers_data(rng, 30, 4, 5)
    adapt, _ = speakers_data(rng, 30, 4, 5, shift=3.0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    mean_only = Adaptation("x", plda=False, backends=BACKENDS)
    cos = adapt_backend(CosineBackend().fit(train, labels), adapt, mean_only)
    np.testing.assert_allclose(cos.score(a, b), cosine(a - adapt.mean(0), b - adapt.mean(0)))
    plda = LdaPldaBackend().fit(train, labels)
    within, post_mean = plda.within.copy(), plda.post_mean.copy()
    adapt_backend(plda, adapt, mean_only)
    np.testing.assert_allclose(plda.mean, adapt.mean(0))
    np.testing.assert_array_equal(plda.within, within)          # the PLDA model is kept
    np.testing.assert_array_equal(plda.post_mean, post_mean)


def test_plda_adaptation_helps_on_a_shifted_wider_domain():
    """Target domain: shifted and with a larger within-speaker spread in its own directions.
    Adapting (mean + PLDA) with unlabelled target data must not be worse than not adapting."""
    rng = np.random.default_rng(4)
    dim = 10
    train, labels = speakers_data(rng, 200, 5, dim)
    extra = np.zeros(dim)
    extra[:3] = 4.0

    def target(num_spk, per_spk):
        x, lab = speakers_data(rng, num_spk, per_spk, dim, shift=5.0)
        return x + rng.normal(size=x.shape) * extra, lab

    adapt, _ = target(150, 4)
    test, test_labels = target(40, 4)
    idx = np.arange(len(test))
    pairs = np.array([(i, j) for i in idx for j in idx if i < j])
    is_target = np.array([test_labels[i] == test_labels[j] for i, j in pairs])

    def eer(scores):
        from fhvae.evaluate.metrics import compute_eer
        return compute_eer(scores[is_target], scores[~is_target])

    results = {}
    for name, adaptation in (("none", None), ("mean", Adaptation("t", plda=False)),
                             ("plda", Adaptation("t"))):
        backend = LdaPldaBackend().fit(train, labels)
        if adaptation:
            adapt_backend(backend, adapt, adaptation)
        results[name] = eer(backend.score(test[pairs[:, 0]], test[pairs[:, 1]]))
    assert results["mean"] < results["none"]
    assert results["plda"] <= results["mean"] + 0.5


def test_empty_adaptation_set_is_an_error():
    rng = np.random.default_rng(5)
    train, labels = speakers_data(rng, 10, 3, 4)
    with pytest.raises(FhvaeError, match="^data/empty: the adaptation set is empty$"):
        adapt_backend(LdaPldaBackend().fit(train, labels), np.zeros((0, 4)),
                      Adaptation("data/empty"))
    with pytest.raises(FhvaeError, match="scales must be >= 0"):
        adapt_plda_covariances(np.zeros(2), np.eye(2), np.eye(2), np.ones((3, 2)),
                               PldaAdaptConfig(-1.0))


def test_result_labels_say_what_was_adapted_to_which_set():
    assert backend_label("lda-plda", None) == "LDA + length norm + two-covariance PLDA"
    assert backend_label("lda-plda", Adaptation("data/dev_unseen")).endswith(
        "; adapted to data/dev_unseen (mean + PLDA)")
    every = Adaptation("d", backends=BACKENDS)
    assert backend_label("lda-wccn", every).endswith("adapted to d (mean)")
    assert backend_label("cosine", Adaptation("d", plda=False, backends=BACKENDS)) == \
        "cosine, adaptation-set mean subtracted; adapted to d (mean)"
    # by default only LDA + PLDA is adapted (the dev decision): the others keep their label
    assert backend_label("lda-wccn", Adaptation("d")) == "LDA + WCCN + cosine"


def test_back_ends_outside_the_adapted_ones_stay_as_fitted():
    rng = np.random.default_rng(7)
    train, labels = speakers_data(rng, 30, 4, 5)
    adapt, _ = speakers_data(rng, 30, 4, 5, shift=3.0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 5))
    for backend in (CosineBackend, LdaWccnBackend):
        plain = backend().fit(train, labels).score(a, b)
        kept = adapt_backend(backend().fit(train, labels), adapt, Adaptation("d")).score(a, b)
        np.testing.assert_array_equal(kept, plain)
    plain = LdaPldaBackend().fit(train, labels).score(a, b)
    assert not np.allclose(adapt_backend(LdaPldaBackend().fit(train, labels), adapt,
                                         Adaptation("d")).score(a, b), plain)


def test_scoring_with_an_empty_adaptation_table_names_the_set(tmp_path):
    from fhvae.evaluate.trials import Trial
    from fhvae.evaluate.verification import Embeddings, TrialList, score_embedding
    rng = np.random.default_rng(6)
    train, labels = speakers_data(rng, 10, 3, 4)
    vectors = Embeddings({f"u{i}": v for i, v in enumerate(train)},
                         {"a": train[0], "b": train[1]}, {})
    trials = TrialList("all", "all trials", tmp_path / "trials", "given",
                       [Trial("a", "b", True)])
    with pytest.raises(FhvaeError, match="^data/none: the adaptation set is empty$"):
        score_embedding("svector", vectors, {f"u{i}": s for i, s in enumerate(labels)},
                        [trials], ("cosine",), None, 0.01, tmp_path, Adaptation("data/none"))
