"""Mamba (S6) blocks in the channels-first layout, with an explicit inference state.

``MambaMixer`` follows mamba-ssm's ``mamba_simple.Mamba``: in_proj -> depthwise causal conv
-> SiLU -> data-dependent (delta, B, C) -> selective scan -> gate -> out_proj. Its state is
``{"conv": (b, d_inner, d_conv - 1), "ssm": (b, d_inner, d_state)}``; ``forward`` is ``step``
from the zero state, so offline and streamed outputs are the same computation.
``BiMamba`` adds a second mixer that reads the sequence backwards (not streamable).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .errors import StreamingError
from .scan import selective_scan
from .streaming import Streamable


class RMSNorm(nn.Module):
    """RMS normalisation over the channel dimension of (batch, channels, time)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.eps = eps

    def forward(self, x):
        scale = torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return x * scale * self.weight[None, :, None]


class MambaMixer(Streamable):
    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, scan_backend: str = "auto"):
        super().__init__()
        d_inner = expand * d_model
        self.d_inner, self.d_state, self.d_conv = d_inner, d_state, d_conv
        self.dt_rank = math.ceil(d_model / 16)
        self.scan_backend = scan_backend
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, bias=True)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        # Initial step sizes log-uniform in [dt_min, dt_max], stored through softplus^-1.
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        # S4D-real initialisation: A = -(1..N) for every channel.
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def init_state(self, batch, device=None, dtype=None):
        return {
            "conv": torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device, dtype=dtype),
            "ssm": torch.zeros(batch, self.d_inner, self.d_state, device=device, dtype=dtype),
        }

    def forward(self, x):
        y, _ = self.step(x, self.init_state(x.shape[0], x.device, x.dtype))
        return y

    def step(self, x, state):
        """x: (batch, d_model, L) -> (batch, d_model, L), carrying conv and SSM state."""
        if x.shape[-1] == 0:
            return x, state
        xz = self.in_proj(x.transpose(1, 2)).transpose(1, 2)          # (b, 2*d_inner, L)
        u, z = xz.chunk(2, dim=1)
        full = torch.cat([state["conv"], u], dim=-1)
        u = F.silu(self.conv1d(full))
        new_conv = full[..., full.shape[-1] - (self.d_conv - 1):]
        proj = self.x_proj(u.transpose(1, 2))                           # (b, L, r + 2N)
        dt, B, C = torch.split(proj, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)          # bias added in the scan
        A = -torch.exp(self.A_log.float())
        y, h = selective_scan(u, delta, A, B.transpose(1, 2), C.transpose(1, 2), D=self.D.float(),
                              z=z, delta_bias=self.dt_proj.bias.float(), h0=state["ssm"],
                              softplus=True, backend=self.scan_backend)
        out = self.out_proj(y.transpose(1, 2)).transpose(1, 2)
        return out, {"conv": new_conv, "ssm": h}


BIDIRECTIONAL_MESSAGE = ("a bidirectional Mamba reads the future and cannot stream; "
                         "use a causal model (config causal=true) for real time")


class BiMamba(Streamable):
    """Bidirectional mixer: a forward and a backward Mamba, summed (the paper's encoder)."""

    def __init__(self, d_model: int, **kwargs):
        super().__init__()
        self.forward_mixer = MambaMixer(d_model, **kwargs)
        self.backward_mixer = MambaMixer(d_model, **kwargs)

    def forward(self, x):
        return self.forward_mixer(x) + self.backward_mixer(x.flip(-1)).flip(-1)

    def init_state(self, batch, device=None, dtype=None):
        raise StreamingError(BIDIRECTIONAL_MESSAGE)

    def step(self, x, state):
        raise StreamingError(BIDIRECTIONAL_MESSAGE)


class MambaLayer(Streamable):
    """Pre-norm residual layer: x + mixer(norm(x))."""

    def __init__(self, d_model: int, causal: bool = True, **kwargs):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.mixer = MambaMixer(d_model, **kwargs) if causal else BiMamba(d_model, **kwargs)

    def forward(self, x):
        return x + self.mixer(self.norm(x))

    def init_state(self, batch, device=None, dtype=None):
        return self.mixer.init_state(batch, device, dtype)

    def step(self, x, state):
        y, state = self.mixer.step(self.norm(x), state)
        return x + y, state
