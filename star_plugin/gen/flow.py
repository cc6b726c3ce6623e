"""Rectified flow on STAR latents: the training loss and the ODE samplers.

Path: ``z_t = (1 - t) z_0 + t z_1`` with ``z_0 ~ N(0, I)`` (noise) and ``z_1`` the data
latent, so the target velocity is ``z_1 - z_0``; ``logit(t) ~ N(0, 1)`` concentrates training
on the middle of the path. Text is dropped with probability ``text_dropout`` so that one model
gives both the conditional and unconditional velocities for classifier-free guidance:
``v = v_uncond + cfg * (v_cond - v_uncond)`` (cfg 0: the prompt is ignored; 1: plain
conditional).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import ConfigError

SOLVERS = ("euler", "midpoint", "heun")


def flow_loss(model, z1: torch.Tensor, text_states=None, text_mask=None, audio_mask=None,
              text_dropout: float = 0.1, generator: Optional[torch.Generator] = None):
    """Mean squared velocity error over the real (unpadded) latent frames."""
    b = z1.shape[0]
    device = z1.device
    z0 = torch.randn(z1.shape, generator=generator, device=device, dtype=z1.dtype)
    t = torch.sigmoid(torch.randn(b, generator=generator, device=device))
    zt = (1 - t[:, None, None]) * z0 + t[:, None, None] * z1
    drop = torch.rand(b, generator=generator, device=device) < text_dropout
    v = model(zt, t, text_states, text_mask, audio_mask, drop_text=drop)
    err = (v - (z1 - z0)).pow(2)
    if audio_mask is None:
        return err.mean()
    weight = audio_mask[:, None, :].to(err.dtype)
    return (err * weight).sum() / (weight.sum() * z1.shape[1]).clamp(min=1)


def guided_velocity(model, cfg_scale: float, text_states, text_mask, audio_mask=None):
    """v(z, t) with classifier-free guidance; conditional and unconditional in one batch."""
    def velocity(z, t):
        b = z.shape[0]
        tt = t.expand(b)
        if text_states is None or cfg_scale == 0.0:
            return model(z, tt, None, None, audio_mask)
        if cfg_scale == 1.0:
            return model(z, tt, text_states, text_mask, audio_mask)
        drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])
        both = model(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([text_states] * 2),
                     torch.cat([text_mask] * 2),
                     None if audio_mask is None else torch.cat([audio_mask] * 2),
                     drop_text=drop.to(z.device))
        cond, uncond = both[:b], both[b:]
        return uncond + cfg_scale * (cond - uncond)
    return velocity


def integrate(velocity: Callable, z0: torch.Tensor, steps: int, solver: str = "midpoint",
              progress: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Solve dz/dt = v(z, t) from t=0 (noise) to t=1 (data) in ``steps`` uniform steps."""
    if solver not in SOLVERS:
        raise ConfigError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ConfigError(f"steps must be an integer in 1..1000, got {steps!r}")
    z = z0
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.tensor([i * dt], device=z.device)
        v = velocity(z, t)
        if solver == "euler":
            z = z + dt * v
        elif solver == "midpoint":
            z = z + dt * velocity(z + 0.5 * dt * v, t + 0.5 * dt)
        else:  # heun: average the slopes at both ends
            z_end = z + dt * v
            z = z + 0.5 * dt * (v + velocity(z_end, t + dt))
        if progress is not None:
            progress(i + 1, steps)
    return z
