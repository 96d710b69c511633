"""The FHVAE training objective (paper eqs. 2-5) as pure functions of tensors.

Every term is computed in float32 even when the networks run under bf16/fp16 autocast:
the sums over 20 x 80 frame dimensions and the ||a||^2 - 2ab + ||b||^2 expansion of the
discriminative distances lose too much precision in 8-bit mantissas. The float32 cost is
O(B * (T * F + K * D)), negligible next to the LSTMs.

Nothing here calls .item() or otherwise synchronises with the device, so a training step
stays asynchronous on a GPU; metrics are returned as detached tensors.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fhvae.model import FHVAE, FHVAEOutput

LOG_2PI = math.log(2.0 * math.pi)


def _sum_but_first(t: Tensor) -> Tensor:
    """Sum over every dimension except the batch dimension -> (B,)."""
    return t.reshape(t.shape[0], -1).sum(dim=1)


def log_normal(x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(x; mu, exp(logvar)) of a diagonal Gaussian, summed over all dims but the first."""
    x, mu, logvar = x.float(), mu.float(), logvar.float()
    elem = -0.5 * (LOG_2PI + logvar + (x - mu).pow(2) * torch.exp(-logvar))
    return _sum_but_first(elem.expand(torch.broadcast_shapes(x.shape, mu.shape, logvar.shape)))


def kl_normal(q_mu: Tensor, q_logvar: Tensor, p_mu: Tensor, p_logvar: Tensor) -> Tensor:
    """KL(N(q_mu, exp(q_logvar)) || N(p_mu, exp(p_logvar))) in closed form, summed per row."""
    q_mu, q_logvar = q_mu.float(), q_logvar.float()
    p_mu, p_logvar = torch.as_tensor(p_mu).float(), torch.as_tensor(p_logvar).float()
    elem = 0.5 * (p_logvar - q_logvar
                  + (torch.exp(q_logvar) + (q_mu - p_mu).pow(2)) * torch.exp(-p_logvar) - 1.0)
    return _sum_but_first(elem.expand(torch.broadcast_shapes(q_mu.shape, q_logvar.shape)))


def map_mu2(z2_mu_sum: Tensor, num_segs: Tensor, sigma2: float) -> Tensor:
    """MAP estimate of mu2 per sequence: sum_n mu_z2(x_n) / (N + sigma2).

    This is the posterior mean of mu2 under p(mu2) = N(0, I) and p(z2|mu2) = N(mu2, sigma2 I),
    used both to reset the K-row cache and to extract s-vectors of unseen utterances.
    """
    return z2_mu_sum.float() / (num_segs.to(torch.float32).unsqueeze(-1) + sigma2)


def discriminative_logits(z2_mu: Tensor, mu2_table: Tensor, sigma2: float) -> Tensor:
    """(B, K) logits -||z2_mu_b - mu2_k||^2 / (2 sigma2) of the sequence classifier (eq. 4).

    Expanded as ||a||^2 - 2 a.b + ||b||^2 so that memory is O(B K), not O(B K D), and the
    work is one matmul; autocast is disabled so the expansion cannot cancel catastrophically.
    """
    with torch.autocast(device_type=z2_mu.device.type, enabled=False):
        a, b = z2_mu.float(), mu2_table.float()
        sq = (a.pow(2).sum(dim=1, keepdim=True) + b.pow(2).sum(dim=1)).addmm(a, b.t(), alpha=-2.0)
        return sq * (-0.5 / sigma2)


def segment_lower_bound(x: Tensor, out: FHVAEOutput, mu2: Tensor, num_segs: Tensor,
                        sigma2: float) -> dict[str, Tensor]:
    """Per-segment terms of the segment variational lower bound (eq. 3), each (B,).

    mu2: (B, D) the table row of each segment's sequence; num_segs: (B,) its sequence's N_i,
    which spreads log p(mu2_i) evenly over the sequence's segments.
    """
    log_px = log_normal(x, out.x_mu, out.x_logvar)
    kl_z1 = kl_normal(out.z1_mu, out.z1_logvar, torch.zeros(()), torch.zeros(()))
    kl_z2 = kl_normal(out.z2_mu, out.z2_logvar, mu2, torch.tensor(math.log(sigma2)))
    log_pmu2 = log_normal(mu2, torch.zeros(()), torch.zeros(())) / num_segs.to(torch.float32)
    lb = log_px - kl_z1 - kl_z2 + log_pmu2
    return {"lb": lb, "log_px": log_px, "kl_z1": kl_z1, "kl_z2": kl_z2, "log_pmu2": log_pmu2}


def _core(model: nn.Module) -> FHVAE:
    """The FHVAE inside a DistributedDataParallel (or similar) wrapper, or the model itself."""
    return getattr(model, "module", model)


def fhvae_loss(model: nn.Module, x: Tensor, seq_idx: Tensor, seq_num_segs: Tensor,
               alpha: float = 10.0) -> tuple[Tensor, dict[str, Tensor]]:
    """Negative discriminative segment lower bound (eq. 5) averaged over a segment batch.

    x: (B, T, F) normalised segments; seq_idx: (B,) row of the mu2 table of each segment's
    sequence; seq_num_segs: (K,) N_k of every table row. The model is called through its
    wrapper (so DDP hooks run); the mu2 table is read from the wrapped FHVAE.
    Returns the loss and detached batch means: loss, lb, log_px, kl_z1, kl_z2, log_pmu2,
    log_qy, acc.
    """
    core = _core(model)
    sigma2 = core.cfg.sigma2_z2
    out = model(x)
    terms = segment_lower_bound(x, out, core.mu2[seq_idx], seq_num_segs[seq_idx], sigma2)
    logits = discriminative_logits(out.z2_mu, core.mu2, sigma2)
    log_qy = torch.log_softmax(logits, dim=1).gather(1, seq_idx.unsqueeze(1)).squeeze(1)
    loss = -(terms["lb"] + alpha * log_qy).mean()
    metrics = {"loss": loss.detach()}
    metrics.update({name: value.detach().mean() for name, value in terms.items()})
    metrics["log_qy"] = log_qy.detach().mean()
    metrics["acc"] = (logits.detach().argmax(dim=1) == seq_idx).float().mean()
    return loss, metrics
