"""Numbers of every objective term against closed forms, torch.distributions and hand sums."""

import math

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from fhvae.model import FHVAE, FHVAEOutput, ModelConfig
from fhvae.objective import (LOG_2PI, discriminative_logits, fhvae_loss, kl_normal, log_normal,
                             map_mu2, segment_lower_bound)

TINY = ModelConfig(feat_dim=6, seg_len=5, z1_dim=3, z2_dim=4, hidden=8, num_layers=2,
                   num_seqs=7)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_log_normal_matches_torch_distributions():
    g = _gen()
    x, mu, logvar = (torch.randn(4, 5, 6, generator=g) for _ in range(3))
    expected = Normal(mu, torch.exp(0.5 * logvar)).log_prob(x).sum(dim=(1, 2))
    got = log_normal(x, mu, logvar)
    assert got.shape == (4,)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_log_normal_standard_normal_at_zero():
    got = log_normal(torch.zeros(2, 3), torch.zeros(()), torch.zeros(()))
    torch.testing.assert_close(got, torch.full((2,), -1.5 * LOG_2PI))


def test_kl_normal_matches_torch_kl_divergence():
    g = _gen(1)
    q_mu, q_lv, p_mu, p_lv = (torch.randn(5, 7, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(q_mu, torch.exp(0.5 * q_lv)),
                             Normal(p_mu, torch.exp(0.5 * p_lv))).sum(dim=1)
    torch.testing.assert_close(kl_normal(q_mu, q_lv, p_mu, p_lv), expected, rtol=1e-5, atol=1e-5)


def test_kl_normal_matches_monte_carlo():
    # KL = E_q[log q - log p]; with 1e5 samples the standard error is ~0.3% of a unit-size KL,
    # so the closed form must lie within 5 standard errors of the estimate.
    g = _gen(2)
    q_mu = torch.tensor([[0.3, -1.0, 0.5]])
    q_lv = torch.tensor([[-0.5, 0.2, 0.0]])
    p_mu = torch.tensor([[0.0, 0.5, -0.5]])
    p_lv = torch.tensor([[0.4, -0.3, 0.1]])
    n = 100_000
    z = q_mu + torch.randn(n, 3, generator=g) * torch.exp(0.5 * q_lv)
    diff = (log_normal(z, q_mu.expand(n, 3), q_lv.expand(n, 3))
            - log_normal(z, p_mu.expand(n, 3), p_lv.expand(n, 3)))
    stderr = diff.std() / math.sqrt(n)
    closed = kl_normal(q_mu, q_lv, p_mu, p_lv)[0]
    assert abs(diff.mean() - closed) < 5 * stderr
    assert stderr < 0.01


def test_kl_normal_is_zero_when_q_equals_p():
    g = _gen(3)
    mu, lv = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    torch.testing.assert_close(kl_normal(mu, lv, mu, lv), torch.zeros(3))


def test_map_mu2_hand_computed():
    got = map_mu2(torch.tensor([[1.0, 2.0], [3.0, 0.0]]), torch.tensor([3, 0]), 0.25)
    expected = torch.tensor([[1 / 3.25, 2 / 3.25], [12.0, 0.0]])
    torch.testing.assert_close(got, expected)


def test_discriminative_logits_equals_naive_broadcast():
    g = _gen(4)
    z2_mu, table = torch.randn(9, 4, generator=g), torch.randn(13, 4, generator=g)
    naive = -((z2_mu[:, None, :] - table[None, :, :]) ** 2).sum(-1) / (2 * 0.25)
    got = discriminative_logits(z2_mu, table, 0.25)
    assert got.shape == (9, 13)
    torch.testing.assert_close(got, naive, rtol=1e-5, atol=1e-4)


def test_discriminative_logits_stay_float32_under_autocast():
    # Far from the origin ||a||^2 and ||b||^2 are ~3200: a bf16 matmul would be off by ~10.
    g = _gen(5)
    z2_mu = 10 + torch.randn(8, 32, generator=g)
    table = 10 + torch.randn(6, 32, generator=g)
    exact = discriminative_logits(z2_mu, table, 0.25)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = discriminative_logits(z2_mu, table, 0.25)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, exact)


def _output(**values) -> FHVAEOutput:
    return FHVAEOutput(**{name: torch.as_tensor(v, dtype=torch.float32)
                          for name, v in values.items()})


def test_segment_lower_bound_known_values():
    x = torch.zeros(2, 2, 3)
    out = _output(z1_mu=[[1.0, 0.0], [0.0, 0.0]], z1_logvar=torch.zeros(2, 2), z1=torch.zeros(2, 2),
                  z2_mu=[[0.5, 0.0], [0.0, 0.0]], z2_logvar=torch.full((2, 2), math.log(0.25)),
                  z2=torch.zeros(2, 2),
                  x_mu=torch.zeros(2, 2, 3), x_logvar=torch.zeros(2, 2, 3))
    mu2 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    terms = segment_lower_bound(x, out, mu2, torch.tensor([4, 2]), 0.25)
    # log N(0; 0, 1) over 6 dims; KL(N(1,1)||N(0,1)) = 0.5; KL(N(0.5,.25)||N(0,.25)) = 0.5,
    # KL(N(0,.25)||N(1,.25)) = 2; log N(mu2; 0, I) / N.
    expected = {
        "log_px": [-3 * LOG_2PI, -3 * LOG_2PI],
        "kl_z1": [0.5, 0.0],
        "kl_z2": [0.5, 2.0],
        "log_pmu2": [-LOG_2PI / 4, (-LOG_2PI - 0.5) / 2],
    }
    for name, values in expected.items():
        torch.testing.assert_close(terms[name], torch.tensor(values), msg=name)
    torch.testing.assert_close(
        terms["lb"], terms["log_px"] - terms["kl_z1"] - terms["kl_z2"] + terms["log_pmu2"])


class _FixedModel(nn.Module):
    """Stands in for FHVAE: returns a hand-built output, owns a hand-set mu2 table."""

    def __init__(self, out: FHVAEOutput, table: torch.Tensor):
        super().__init__()
        self.cfg = ModelConfig(z2_dim=table.shape[1], num_seqs=table.shape[0])
        self.mu2 = nn.Parameter(table)
        self.out = out

    def forward(self, x):
        return self.out


def test_fhvae_loss_log_qy_and_total_hand_computed():
    out = _output(z1_mu=torch.zeros(2, 2), z1_logvar=torch.zeros(2, 2), z1=torch.zeros(2, 2),
                  z2_mu=[[0.0, 0.0], [1.0, 0.0]], z2_logvar=torch.zeros(2, 2), z2=torch.zeros(2, 2),
                  x_mu=torch.zeros(2, 1, 1), x_logvar=torch.zeros(2, 1, 1))
    model = _FixedModel(out, torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    x = torch.zeros(2, 1, 1)
    seq_idx = torch.tensor([0, 1])
    loss, metrics = fhvae_loss(model, x, seq_idx, torch.tensor([2, 5, 1]), alpha=10.0)
    # logits = -2 d^2: row 0 -> [0, -2, -8], row 1 -> [-2, 0, -10]
    log_qy = torch.tensor([-math.log(1 + math.exp(-2) + math.exp(-8)),
                           -math.log(math.exp(-2) + 1 + math.exp(-10))])
    torch.testing.assert_close(metrics["log_qy"], log_qy.mean())
    # kl_z2 = 0.5 * (log .25 - 0 + (1 + 0) / .25 - 1) per dim = 0.5 * (3 + log .25) * 2
    kl_z2 = (3 + math.log(0.25))
    lb = torch.tensor([-0.5 * LOG_2PI - kl_z2 - LOG_2PI / 2,
                       -0.5 * LOG_2PI - kl_z2 + (-LOG_2PI - 0.5) / 5])
    torch.testing.assert_close(metrics["lb"], lb.mean())
    torch.testing.assert_close(loss, -(lb + 10 * log_qy).mean())
    torch.testing.assert_close(metrics["loss"], loss.detach())
    assert metrics["acc"].item() == 1.0
    assert all(not m.requires_grad for m in metrics.values())
    assert set(metrics) == {"loss", "lb", "log_px", "kl_z1", "kl_z2", "log_pmu2", "log_qy", "acc"}


def test_fhvae_loss_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = FHVAE(TINY)
    with torch.no_grad():
        model.mu2.normal_()
    x = torch.randn(10, TINY.seg_len, TINY.feat_dim)
    seq_idx = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4, 5])   # row 6 unused
    loss, _ = fhvae_loss(model, x, seq_idx, torch.tensor([2, 1, 3, 1, 2, 1, 4]))
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
    used = model.mu2.grad[:6].abs().sum(dim=1)
    assert (used > 0).all()


def test_fhvae_loss_through_a_wrapper_matches_the_bare_model():
    class Wrapper(nn.Module):          # the shape of DistributedDataParallel: .module + forward
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return self.module(x)

    torch.manual_seed(1)
    model = FHVAE(TINY)
    x = torch.randn(4, TINY.seg_len, TINY.feat_dim)
    args = (x, torch.tensor([0, 1, 1, 3]), torch.full((7,), 2))
    torch.manual_seed(2)
    bare, _ = fhvae_loss(model, *args)
    torch.manual_seed(2)
    wrapped, _ = fhvae_loss(Wrapper(model), *args)
    torch.testing.assert_close(bare, wrapped)
