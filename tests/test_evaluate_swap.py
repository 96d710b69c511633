"""Swap test (fhvae/evaluate/swap.py) on a tiny random model: the log-likelihoods and costs
against a per-segment computation with torch.distributions.Normal, and a planted decoder
that ignores z2."""

import numpy as np
import pytest
import torch
from torch.distributions import Normal

from fhvae.errors import FhvaeError
from fhvae.evaluate.swap import draw_other, run_swap_test
from fhvae.features.mvn import MVN
from fhvae.inference import cut_segments, decode_log_likelihood
from fhvae.model import FHVAE, ModelConfig

SEG = 5
DIM = 6


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = FHVAE(ModelConfig(feat_dim=DIM, seg_len=SEG, z1_dim=3, z2_dim=2, hidden=8,
                              num_layers=1, num_seqs=4)).eval()
    with torch.no_grad():   # larger decoder weights: swaps then cost nats, not millinats
        model.decoder_lstm.weight_ih_l0.mul_(4.0)
        model.decoder_head.mean.weight.mul_(4.0)
    rng = np.random.default_rng(0)
    mvn = MVN(rng.normal(0, 1, DIM).astype(np.float32), rng.uniform(0.5, 2, DIM).astype(np.float32))
    # 12 and 13 frames: 2 segments each (remainders unused); 4 frames: no segment at all
    feats = {"u1": rng.normal(0, 2, (12, DIM)), "u2": rng.normal(1, 2, (13, DIM)),
             "u3": rng.normal(-1, 2, (SEG, DIM)), "short": rng.normal(0, 1, (4, DIM))}
    return model, mvn, {k: v.astype(np.float32) for k, v in feats.items()}


def by_hand(model, x, z1, z2):
    """log p(x|z1,z2) of one normalised segment, one segment at a time."""
    with torch.no_grad():
        mu, logvar = model.decode(torch.from_numpy(z1)[None], torch.from_numpy(z2)[None], SEG)
        return float(Normal(mu[0], torch.exp(0.5 * logvar[0])).log_prob(torch.from_numpy(x)).sum())


def test_draw_other_never_returns_the_same_label():
    rng = np.random.default_rng(1)
    labels = np.array([0, 0, 1, 2, 2, 2])
    idx = draw_other(rng, labels, labels)
    assert (labels[idx] != labels).all()
    assert set(np.unique(np.concatenate([draw_other(rng, labels, labels) for _ in range(50)]))) \
        == set(range(6))


def test_swap_costs_match_a_per_segment_computation(tiny):
    model, mvn, feats = tiny
    result = run_swap_test(model, mvn, feats, seed=3, max_segments=100)   # all 5 segments
    assert (result.num_segments, result.num_utts, result.seg_len) == (5, 3, SEG)

    segs = cut_segments(feats, mvn, SEG)
    with torch.no_grad():
        x = torch.from_numpy(segs.x)
        z2 = model.encode_z2(x)[0].numpy()
        z1 = model.encode_z1(x, torch.from_numpy(z2))[0].numpy()
    own = np.array([by_hand(model, segs.x[i], z1[i], z2[i]) for i in range(5)])
    np.testing.assert_allclose(decode_log_likelihood(model, segs.x, z1, z2).numpy(), own,
                               rtol=1e-5)
    assert result.log_px_own == pytest.approx(own.mean(), rel=1e-5)

    means = {u: z2[segs.utt == u].mean(axis=0) for u in (1, 2, 3)}
    with_mean = np.array([by_hand(model, segs.x[i], z1[i], means[segs.utt[i]]) for i in range(5)])
    assert result.z2_utt_mean.mean == pytest.approx((own - with_mean).mean(), abs=1e-3)
    assert result.z2_utt_mean.stderr == pytest.approx((own - with_mean).std(ddof=1) / np.sqrt(5),
                                                      abs=1e-3)
    assert abs(result.z2_utt_mean.mean) > 0.01     # a random decoder does use z2
    # u3 has one segment, so its utterance mean is its own z2: no cost for that segment
    assert own[4] - with_mean[4] == pytest.approx(0, abs=1e-4)
    # the z1 and other-utterance swaps cost something for a random decoder, and the ratio is
    # the quotient of the two reported costs
    assert result.z1_swap.mean != 0 and result.z2_other_utt.mean != 0
    assert result.ratio == pytest.approx(result.z2_utt_mean.mean / result.z1_swap.mean)
    # seeded: the same numbers again
    assert run_swap_test(model, mvn, feats, seed=3, max_segments=100) == result


def test_decoder_that_ignores_z2_gives_zero_z2_cost(tiny):
    model, mvn, feats = tiny
    with torch.no_grad():
        model.decoder_lstm.weight_ih_l0[:, model.cfg.z1_dim:] = 0.0   # z2 inputs cut
    result = run_swap_test(model, mvn, feats, seed=0)
    assert result.z2_utt_mean.mean == pytest.approx(0, abs=1e-3)
    assert result.z2_other_utt.mean == pytest.approx(0, abs=1e-3)
    assert abs(result.z1_swap.mean) > 1.0
    assert result.ratio == pytest.approx(0, abs=1e-3)


def test_swap_test_needs_two_utterances(tiny):
    model, mvn, feats = tiny
    with pytest.raises(FhvaeError, match="two utterances of at least 5 frames"):
        run_swap_test(model, mvn, {"u1": feats["u1"], "short": feats["short"]}, seed=0)
    with pytest.raises(FhvaeError, match="the 1 sampled segments come from one utterance"):
        run_swap_test(model, mvn, feats, seed=0, max_segments=1)
