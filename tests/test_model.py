"""Shapes, bounded variances, decoder tiling and determinism of the FHVAE network."""

import pytest
import torch

from fhvae.model import (FHVAE, LOGVAR_MAX, LOGVAR_MIN, ModelConfig, bound_logvar,
                         reparameterize)

CFG = ModelConfig(feat_dim=6, seg_len=5, z1_dim=3, z2_dim=4, hidden=8, num_layers=2,
                  num_seqs=7)


def _model(seed: int = 0) -> FHVAE:
    torch.manual_seed(seed)
    return FHVAE(CFG)


@pytest.mark.parametrize("frames", [CFG.seg_len, 9, 1])
def test_output_shapes(frames):
    out = _model()(torch.randn(3, frames, CFG.feat_dim))
    for name, dim in [("z1", CFG.z1_dim), ("z2", CFG.z2_dim)]:
        for suffix in ("_mu", "_logvar", ""):
            assert getattr(out, name + suffix).shape == (3, dim), name + suffix
    assert out.x_mu.shape == out.x_logvar.shape == (3, frames, CFG.feat_dim)


def test_mu2_table_shape_and_parameter():
    model = _model()
    assert model.mu2.shape == (CFG.num_seqs, CFG.z2_dim)
    assert any(p is model.mu2 for p in model.parameters())


def test_decode_tiles_the_same_input_over_time():
    # The decoder input is constant over time and the LSTM is causal, so a shorter decode is
    # exactly the prefix of a longer one; the default length is seg_len.
    model = _model()
    z1, z2 = torch.randn(2, CFG.z1_dim), torch.randn(2, CFG.z2_dim)
    with torch.no_grad():
        short_mu, short_lv = model.decode(z1, z2, 4)
        long_mu, long_lv = model.decode(z1, z2, 11)
        default_mu, _ = model.decode(z1, z2)
    assert long_mu.shape == (2, 11, CFG.feat_dim)
    assert default_mu.shape == (2, CFG.seg_len, CFG.feat_dim)
    torch.testing.assert_close(short_mu, long_mu[:, :4])
    torch.testing.assert_close(short_lv, long_lv[:, :4])
    assert not torch.allclose(long_mu[:, 0], long_mu[:, -1])   # the state evolves over time


def test_logvars_stay_bounded_for_huge_inputs():
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50)
        out = model(torch.randn(4, CFG.seg_len, CFG.feat_dim) * 1e6)
    for lv in (out.z1_logvar, out.z2_logvar, out.x_logvar):
        assert torch.isfinite(lv).all()
        assert lv.min() >= LOGVAR_MIN and lv.max() <= LOGVAR_MAX
    assert torch.isfinite(out.z1).all() and torch.isfinite(out.z2).all()


def test_bound_logvar_limits_and_centre():
    got = bound_logvar(torch.tensor([-1e9, 0.0, 1e9, 3.0]))
    assert got[0] == LOGVAR_MIN and got[2] == LOGVAR_MAX
    assert got[1] == pytest.approx((LOGVAR_MIN + LOGVAR_MAX) / 2)
    assert got[3] == pytest.approx(3.0, abs=0.05)     # near-identity around the centre


def test_reparameterize_moments():
    torch.manual_seed(0)
    mu = torch.full((200_000,), 2.0)
    logvar = torch.full((200_000,), 2 * torch.log(torch.tensor(0.5)).item())
    z = reparameterize(mu, logvar)
    assert z.mean().item() == pytest.approx(2.0, abs=0.01)
    assert z.std().item() == pytest.approx(0.5, abs=0.01)


def test_determinism_with_seed():
    x = torch.randn(3, CFG.seg_len, CFG.feat_dim)
    a, b = _model(7), _model(7)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    torch.manual_seed(11)
    out_a = a(x)
    torch.manual_seed(11)
    out_b = b(x)
    assert torch.equal(out_a.x_mu, out_b.x_mu) and torch.equal(out_a.z1, out_b.z1)
    torch.manual_seed(12)
    assert not torch.equal(a(x).z2, out_a.z2)          # sampling does draw new noise


def test_sample_false_uses_posterior_means():
    model = _model()
    x = torch.randn(2, CFG.seg_len, CFG.feat_dim)
    out = model(x, sample=False)
    assert torch.equal(out.z1, out.z1_mu) and torch.equal(out.z2, out.z2_mu)
    again = model(x, sample=False)
    assert torch.equal(out.x_mu, again.x_mu)


def test_config_round_trip():
    assert ModelConfig(**CFG.to_dict()) == CFG
