"""The ``Latent`` type: a STAR latent that knows where structure ends and texture begins."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch


@dataclass
class Latent:
    """Posterior of a STAR-VAE: ``mean`` and ``logsigma`` shaped (batch, channels, frames).

    Channels ``[0, structure_channels)`` form the structure subspace (low beta: pitch,
    formants, rhythm); ``[structure_channels, channels)`` the texture subspace (high beta).
    ``num_samples`` is the length of the audio it came from, at ``sample_rate``.
    """

    mean: torch.Tensor
    logsigma: Optional[torch.Tensor]
    structure_channels: int
    sample_rate: int
    hop: int
    num_samples: Optional[int] = None

    def __post_init__(self):
        if self.mean.dim() != 3:
            raise ValueError(f"latent mean must be (batch, channels, frames), got {tuple(self.mean.shape)}")
        if self.logsigma is not None and self.logsigma.shape != self.mean.shape:
            raise ValueError("latent logsigma must have the shape of the mean")
        if not 0 <= self.structure_channels <= self.channels:
            raise ValueError(f"structure_channels {self.structure_channels} outside 0..{self.channels}")

    @property
    def channels(self) -> int:
        return self.mean.shape[1]

    @property
    def frames(self) -> int:
        return self.mean.shape[2]

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def structure(self) -> torch.Tensor:
        return self.mean[:, : self.structure_channels]

    @property
    def texture(self) -> torch.Tensor:
        return self.mean[:, self.structure_channels:]

    @property
    def sigma(self) -> torch.Tensor:
        if self.logsigma is None:
            return torch.zeros_like(self.mean)
        return self.logsigma.exp()

    def sample(self, temperature: float = 1.0, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A draw z = mean + temperature * sigma * eps from the posterior."""
        if self.logsigma is None or temperature == 0:
            return self.mean
        eps = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype,
                          device=self.mean.device)
        return self.mean + temperature * self.sigma * eps

    def with_mean(self, mean: torch.Tensor) -> "Latent":
        return replace(self, mean=mean, logsigma=None)

    def swap_texture(self, other: "Latent") -> "Latent":
        """This latent's structure with ``other``'s texture (frames looped/cut to fit; a batch
        of 1 serves every item, else the batches must match)."""
        if not isinstance(other, Latent):
            raise TypeError(f"swap_texture takes a Latent, got {type(other).__name__}; wrap "
                            "frames as latent.with_mean(frames)")
        if other.channels != self.channels or other.structure_channels != self.structure_channels:
            raise ValueError("latents come from different models (channel layouts differ)")
        if (other.sample_rate, other.hop) != (self.sample_rate, self.hop):
            raise ValueError(f"latents come from different models ({other.sample_rate} Hz, hop "
                             f"{other.hop} vs {self.sample_rate} Hz, hop {self.hop})")
        if other.frames == 0:
            raise ValueError("the texture latent has no frames")
        batch, other_batch = self.mean.shape[0], other.mean.shape[0]
        if other_batch not in (1, batch):
            raise ValueError(f"the texture latent has batch {other_batch}; give 1 (used for "
                             f"every item) or {batch} like this latent")
        texture = other.texture
        if other_batch != batch:
            texture = texture.expand(batch, -1, -1)
        reps = -(-self.frames // max(1, texture.shape[-1]))
        texture = texture.repeat(1, 1, max(1, reps))[..., : self.frames]
        return self.with_mean(torch.cat([self.structure, texture], dim=1))
