"""The STAR regulariser: a channel-wise KL weight field (DESIGN.md section 1).

    L_STAR = sum_{c=1..C} beta_c * KL( q(z_c | x) || N(0, 1) )
    beta_c = beta_min + (beta_max - beta_min) * ((c - 1) / (C - 1)) ** gamma,   gamma > 1

Low-index channels get a small beta (high capacity: structure), high-index channels a large one
(low capacity: texture). Latents are ``(batch, C, frames)``; the encoder outputs ``mu`` and
``logsigma`` (log standard deviation) of the same shape.

Units used throughout: KL in nats per latent *frame* (averaged over batch and frames), for
the loss, the logs and the bit rate alike. The reconstruction losses are means, so a per-frame
KL keeps its weight independent of the crop length (v1 summed over frames, which made one nat on
a texture channel cost ~40x more with 1-s crops and left the texture channels unused).

* ``kl_per_channel``     -- nats per sequence (summed over frames), kept for analysis.
* ``kl_nats_per_frame``  -- nats per latent frame, per channel: what the regulariser weights.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch

from .errors import ConfigError

CURVES = ("star", "linear", "step", "uniform")

_LN2 = math.log(2.0)


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return value


def _star_curve(channels: int, beta_min: float, beta_max: float, gamma: float) -> torch.Tensor:
    """beta_min + (beta_max - beta_min) * ((c-1)/(C-1))**gamma, in float64 for exactness."""
    if channels == 1:
        return torch.tensor([beta_min], dtype=torch.float64)
    pos = torch.arange(channels, dtype=torch.float64) / (channels - 1)  # (c-1)/(C-1), c = 1..C
    return beta_min + (beta_max - beta_min) * pos ** gamma


def beta_field(
    channels: int,
    curve: str = "star",
    beta_min: float = 1e-4,
    beta_max: float = 1e-1,
    gamma: float = 3.0,
    step_fraction: float = 0.5,
    beta: float | None = None,
) -> torch.Tensor:
    """Per-channel KL weights, shape ``(channels,)``, float32.

    Curves:

    * ``"star"``    -- ``beta_min + (beta_max - beta_min) * ((c-1)/(C-1))**gamma``; needs gamma > 1.
    * ``"linear"``  -- the same with gamma = 1 (``gamma`` is ignored).
    * ``"step"``    -- ``beta_min`` for the first ``round(step_fraction * C)`` channels, ``beta_max``
                       for the rest (Python's ``round``: halves go to the even integer).
    * ``"uniform"`` -- every channel gets ``beta`` if given, otherwise the *mean* of the "star"
                       field with the same beta_min / beta_max / gamma. The mean rule makes the
                       uniform (vanilla VAE) baseline carry the same total KL weight
                       ``sum_c beta_c`` as STAR, so the ablation compares the *shape* of the
                       field, not its overall strength.

    With ``channels == 1`` the star and linear curves return ``[beta_min]`` (no division by zero).
    ``beta`` is only meaningful for ``curve="uniform"``; passing it with another curve is an error.
    Invalid arguments raise :class:`ConfigError` naming the argument and the allowed values.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ConfigError(f"channels must be an integer >= 1, got {channels!r}")
    if not isinstance(curve, str) or curve not in CURVES:
        raise ConfigError(f"curve must be one of {', '.join(map(repr, CURVES))}, got {curve!r}")
    beta_min = _check_number("beta_min", beta_min)
    beta_max = _check_number("beta_max", beta_max)
    gamma = _check_number("gamma", gamma)
    step_fraction = _check_number("step_fraction", step_fraction)
    if beta_min < 0:
        raise ConfigError(f"beta_min must be >= 0, got {beta_min!r}")
    if beta_max < beta_min:
        raise ConfigError(f"beta_max must be >= beta_min ({beta_min!r}), got {beta_max!r}")
    if beta is not None:
        if curve != "uniform":
            raise ConfigError(
                f"beta={beta!r} only applies to curve='uniform' (got curve={curve!r}); "
                "use beta_min/beta_max for the other curves or leave beta as None"
            )
        beta = _check_number("beta", beta)
        if beta < 0:
            raise ConfigError(f"beta must be >= 0, got {beta!r}")

    if curve == "star":
        if gamma <= 1:
            raise ConfigError(f"gamma must be > 1 for curve='star', got {gamma!r} "
                              "(use curve='linear' for gamma = 1)")
        field = _star_curve(channels, beta_min, beta_max, gamma)
    elif curve == "linear":
        field = _star_curve(channels, beta_min, beta_max, 1.0)
    elif curve == "step":
        if not 0.0 <= step_fraction <= 1.0:
            raise ConfigError(f"step_fraction must be in [0, 1], got {step_fraction!r}")
        n_low = round(step_fraction * channels)
        field = torch.full((channels,), beta_max, dtype=torch.float64)
        field[:n_low] = beta_min
    else:  # uniform
        if beta is None:
            if gamma <= 1:
                raise ConfigError(
                    f"gamma must be > 1 for curve='uniform' without beta (its value is the mean "
                    f"of the star field), got {gamma!r}; or pass beta explicitly"
                )
            beta = float(_star_curve(channels, beta_min, beta_max, gamma).mean())
        field = torch.full((channels,), beta, dtype=torch.float64)
    return field.to(torch.float32)


def _check_mu_logsigma(mu: torch.Tensor, logsigma: torch.Tensor) -> None:
    if mu.shape != logsigma.shape:
        raise ValueError(f"mu shape {tuple(mu.shape)} must equal logsigma shape "
                         f"{tuple(logsigma.shape)}")
    if mu.dim() != 3:
        raise ValueError(f"mu and logsigma must be (batch, channels, frames), got shape "
                         f"{tuple(mu.shape)}")


def kl_per_element(mu: torch.Tensor, logsigma: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, sigma^2) || N(0, 1) ) per element, in nats, with sigma = exp(logsigma).

    0.5 * (mu^2 + sigma^2 - log sigma^2 - 1). This is the textbook form *with* the 0.5;
    stable-audio-tools' VAE bottleneck omits the 0.5, so its KL numbers are twice ours.
    """
    # sigma^2 = exp(2 logsigma), log sigma^2 = 2 logsigma: no log/exp round trip.
    return 0.5 * (mu.pow(2) + torch.exp(2.0 * logsigma) - 2.0 * logsigma - 1.0)


def kl_per_channel(mu: torch.Tensor, logsigma: torch.Tensor) -> torch.Tensor:
    """KL per channel, shape ``(C,)``, in nats per sequence: summed over frames, mean over batch.

    ``mu``, ``logsigma``: ``(batch, C, frames)``.
    """
    _check_mu_logsigma(mu, logsigma)
    return kl_per_element(mu, logsigma).sum(dim=2).mean(dim=0)


def kl_nats_per_frame(mu: torch.Tensor, logsigma: torch.Tensor) -> torch.Tensor:
    """KL per channel, shape ``(C,)``, in nats per latent frame: mean over batch and frames."""
    _check_mu_logsigma(mu, logsigma)
    return kl_per_element(mu, logsigma).mean(dim=(0, 2))


def rate_bits_per_second(
    kl_nats_per_frame_per_channel: torch.Tensor | Sequence[float], frame_rate: float
) -> float:
    """Information rate in bits/s: ``sum_c KL_c / ln 2 * frame_rate``.

    ``kl_nats_per_frame_per_channel``: per-channel KL in nats per frame (as returned by
    :func:`kl_nats_per_frame`); ``frame_rate``: latent frames per second (e.g. 44100 / 2048).
    """
    if isinstance(frame_rate, bool) or not isinstance(frame_rate, (int, float)) \
            or not math.isfinite(frame_rate) or frame_rate <= 0:
        raise ValueError(f"frame_rate must be a positive number of frames per second, "
                         f"got {frame_rate!r}")
    kl = torch.as_tensor(kl_nats_per_frame_per_channel, dtype=torch.float64).detach()
    return float(kl.sum().cpu()) / _LN2 * float(frame_rate)


def kl_to_fitted_gaussian(mu: torch.Tensor, logsigma: torch.Tensor) -> torch.Tensor:
    """Per-channel KL, nats per frame, of each posterior against a Gaussian fitted to all of
    them (the aggregate posterior's mean and variance), shape ``(C,)``.

    The KL to N(0, 1) counts a channel whose means drift away from 0 as information even when
    it says the same thing in every frame; against the fitted Gaussian only what varies from
    frame to frame counts, so this rate is what an entropy coder would actually pay.
    """
    _check_mu_logsigma(mu, logsigma)
    mu, logsigma = mu.double(), logsigma.double()
    var_post = torch.exp(2.0 * logsigma)
    centre = mu.mean(dim=(0, 2), keepdim=True)
    spread = (mu - centre).pow(2).mean(dim=(0, 2), keepdim=True) + var_post.mean(dim=(0, 2),
                                                                                   keepdim=True)
    kl = 0.5 * (torch.log(spread) - 2.0 * logsigma + (var_post + (mu - centre).pow(2)) / spread - 1)
    return kl.mean(dim=(0, 2)).float()


class StarRegularizer(torch.nn.Module):
    """``loss = weight * sum_c beta_c * KL_c`` with KL_c in nats per frame.

    The beta field is a non-persistent buffer: it moves with ``.to(device)`` but is not saved in
    state dicts, because it is fully determined by the config (:meth:`to_config`); changing the
    curve for an ablation never clashes with a checkpoint.

    ``forward(mu, logsigma, weight=1.0)`` returns ``(loss, stats)``; ``weight`` scales the whole
    term (KL warm-up). ``stats`` (all detached):

    * ``"kl_per_channel"``: tensor ``(C,)``, KL in nats per frame (for logging and bit rate);
    * ``"kl_total"``: float, the sum over channels of the above (nats per frame);
    * ``"star_loss"``: float, the unweighted ``sum_c beta_c * KL_c`` (nats per frame).
    """

    beta: torch.Tensor

    def __init__(
        self,
        channels: int,
        curve: str = "star",
        beta_min: float = 1e-4,
        beta_max: float = 1e-1,
        gamma: float = 3.0,
        step_fraction: float = 0.5,
        beta: float | None = None,
    ) -> None:
        super().__init__()
        field = beta_field(channels, curve, beta_min, beta_max, gamma, step_fraction, beta)
        self.channels = channels
        self.curve = curve
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self.gamma = float(gamma)
        self.step_fraction = float(step_fraction)
        self.uniform_beta = None if beta is None else float(beta)
        self.register_buffer("beta", field, persistent=False)

    def forward(
        self, mu: torch.Tensor, logsigma: torch.Tensor, weight: float = 1.0
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        _check_mu_logsigma(mu, logsigma)
        if mu.shape[1] != self.channels:
            raise ValueError(f"latent has {mu.shape[1]} channels, StarRegularizer was built for "
                             f"{self.channels}")
        kl_frame = kl_per_element(mu, logsigma).mean(dim=(0, 2))  # (C,) nats per frame
        star = (self.beta.to(kl_frame.dtype) * kl_frame).sum()
        loss = weight * star
        kl_frame = kl_frame.detach()
        stats = {
            "kl_per_channel": kl_frame,
            "kl_total": float(kl_frame.sum()),
            "star_loss": float(star.detach()),
        }
        return loss, stats

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, curve={self.curve!r}, beta_min={self.beta_min}, "
                f"beta_max={self.beta_max}, gamma={self.gamma}")

    def to_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :meth:`from_config` turns back into an equal module."""
        return {
            "channels": self.channels,
            "curve": self.curve,
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "gamma": self.gamma,
            "step_fraction": self.step_fraction,
            "beta": self.uniform_beta,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StarRegularizer":
        """Build from a dict as written by :meth:`to_config`; only ``channels`` is required."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"STAR regulariser config must be a dict, got {type(config).__name__}")
        allowed = ("channels", "curve", "beta_min", "beta_max", "gamma", "step_fraction", "beta")
        unknown = sorted(set(config) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown STAR regulariser config key(s) {unknown}; "
                              f"allowed: {', '.join(allowed)}")
        if "channels" not in config:
            raise ConfigError("STAR regulariser config is missing 'channels'")
        return cls(**dict(config))
