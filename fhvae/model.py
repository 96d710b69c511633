"""The FHVAE network (paper Table 1, Fig. 2): two LSTM encoders, an LSTM decoder, a mu2 table.

Only the networks live here; every loss term is in objective.py. All recurrences are single
`nn.LSTM` calls so cuDNN runs them as one kernel; nothing loops over time in Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

# Log-variances are squashed into this range so that exp() can never overflow or
# collapse to zero during long runs (the bound is loose: std from 1.8e-4 to 5.5e3).
LOGVAR_MIN = -17.0
LOGVAR_MAX = 17.0


@dataclass
class ModelConfig:
    """Shapes of the networks; defaults are the paper's (section 4.2)."""

    feat_dim: int = 80
    seg_len: int = 20
    z1_dim: int = 32
    z2_dim: int = 32
    hidden: int = 256
    num_layers: int = 2
    num_seqs: int = 2000          # K: rows of the mu2 table (sequence batch size)
    sigma2_z2: float = 0.25       # variance of p(z2 | mu2)
    lstm_forget_bias: float = 0.0  # initial forget-gate bias of every LSTM (the reference's
                                   # TF cells start at 1.0; 0.0 keeps PyTorch's init)

    def to_dict(self) -> dict:
        return asdict(self)


def bound_logvar(raw: torch.Tensor) -> torch.Tensor:
    """Map an unbounded head output smoothly into [LOGVAR_MIN, LOGVAR_MAX]."""
    half = (LOGVAR_MAX - LOGVAR_MIN) / 2
    return LOGVAR_MIN + half + half * torch.tanh(raw / half)


class GaussianHead(nn.Module):
    """Affine heads predicting the mean and (bounded) log-variance of a diagonal Gaussian."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.mean = nn.Linear(in_dim, out_dim)
        self.logvar = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(h), bound_logvar(self.logvar(h))


class SegmentEncoder(nn.Module):
    """Stacked LSTM over a segment; the last hidden state of every layer feeds the heads."""

    def __init__(self, in_dim: int, hidden: int, num_layers: int, z_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=num_layers, batch_first=True)
        self.head = GaussianHead(hidden * num_layers, z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, (h_n, _) = self.lstm(x)                       # h_n: (layers, B, hidden)
        h = h_n.transpose(0, 1).reshape(x.shape[0], -1)  # (B, layers * hidden)
        return self.head(h)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One sample from N(mu, exp(logvar)), differentiable in mu and logvar."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


@dataclass
class FHVAEOutput:
    """Everything the objective needs from one forward pass over a segment batch."""

    z1_mu: torch.Tensor
    z1_logvar: torch.Tensor
    z1: torch.Tensor
    z2_mu: torch.Tensor
    z2_logvar: torch.Tensor
    z2: torch.Tensor
    x_mu: torch.Tensor
    x_logvar: torch.Tensor


class FHVAE(nn.Module):
    """Encoders q(z2|x), q(z1|x,z2), decoder p(x|z1,z2) and the K x z2_dim mu2 table."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.z2_encoder = SegmentEncoder(cfg.feat_dim, cfg.hidden, cfg.num_layers, cfg.z2_dim)
        self.z1_encoder = SegmentEncoder(cfg.feat_dim + cfg.z2_dim, cfg.hidden, cfg.num_layers,
                                         cfg.z1_dim)
        self.decoder_lstm = nn.LSTM(cfg.z1_dim + cfg.z2_dim, cfg.hidden,
                                    num_layers=cfg.num_layers, batch_first=True)
        self.decoder_head = GaussianHead(cfg.hidden, cfg.feat_dim)
        self.mu2 = nn.Parameter(torch.zeros(cfg.num_seqs, cfg.z2_dim))
        if cfg.lstm_forget_bias:
            self._init_forget_bias(cfg.lstm_forget_bias)

    def _init_forget_bias(self, value: float) -> None:
        """Forget-gate pre-activations start at `value` (PyTorch gate order: i, f, g, o;
        the input-side bias holds it, the hidden-side one is zeroed) so that early in
        training the cells keep their state over the segment."""
        with torch.no_grad():
            for lstm in (m for m in self.modules() if isinstance(m, nn.LSTM)):
                for layer in range(lstm.num_layers):
                    h = lstm.hidden_size
                    getattr(lstm, f"bias_ih_l{layer}")[h:2 * h].fill_(value)
                    getattr(lstm, f"bias_hh_l{layer}")[h:2 * h].zero_()

    def encode_z2(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, F) -> mean, log-variance of q(z2|x), each (B, z2_dim)."""
        return self.z2_encoder(x)

    def encode_z1(self, x: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, F), z2: (B, z2_dim) -> mean, log-variance of q(z1|x,z2)."""
        tiled = z2.unsqueeze(1).expand(-1, x.shape[1], -1)
        return self.z1_encoder(torch.cat([x, tiled], dim=-1))

    def decode(self, z1: torch.Tensor, z2: torch.Tensor,
               num_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x|z1,z2), each (B, T, F); the same [z1,z2] feeds every step."""
        steps = num_frames or self.cfg.seg_len
        z = torch.cat([z1, z2], dim=-1).unsqueeze(1).expand(-1, steps, -1)
        h, _ = self.decoder_lstm(z)
        return self.decoder_head(h)

    def forward(self, x: torch.Tensor, sample: bool = True) -> FHVAEOutput:
        """Encode and reconstruct a segment batch x: (B, T, F).

        With sample=False the posterior means replace the samples (deterministic
        evaluation); the objective uses sample=True (single-sample reparameterisation).
        """
        z2_mu, z2_logvar = self.encode_z2(x)
        z2 = reparameterize(z2_mu, z2_logvar) if sample else z2_mu
        z1_mu, z1_logvar = self.encode_z1(x, z2)
        z1 = reparameterize(z1_mu, z1_logvar) if sample else z1_mu
        x_mu, x_logvar = self.decode(z1, z2, x.shape[1])
        return FHVAEOutput(z1_mu, z1_logvar, z1, z2_mu, z2_logvar, z2, x_mu, x_logvar)
