"""Text -> audio: the prompt's token states, an ODE from noise to a STAR latent, the VAE's
decoder. ``store.load_generator`` gives the bundled default or a generator directory;
``texture.texture_from_prompt`` a generated texture source for the morph engine."""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import ConfigError
from ..latent import Latent
from .flow import SOLVERS, guided_velocity, integrate
from .model import StarGen
from .text import TextEncoder, check_prompt

MAX_VARIATIONS = 16
# The default settings (the speed target is measured at these; CLI and bench use them too).
DEFAULT_STEPS, DEFAULT_CFG, DEFAULT_SOLVER = 16, 3.0, "midpoint"


class Generator:
    """A trained ``StarGen``, the STAR-VAE whose latents it models, and the text encoder."""

    def __init__(self, model: StarGen, vae, text: Optional[TextEncoder] = None):
        if model.config.latent_channels != vae.config.latent_channels:
            raise ConfigError(f"generator makes {model.config.latent_channels}-channel latents "
                              f"but the VAE has {vae.config.latent_channels}")
        self.model, self.vae = model.eval(), vae.eval()
        self.text = text or TextEncoder(model.config.max_text_tokens)

    @property
    def sample_rate(self) -> int:
        return self.vae.sample_rate

    @property
    def max_seconds(self) -> float:
        return (self.model.config.max_frames * self.vae.hop - self.vae.synthesis_delay) \
            / self.vae.sample_rate

    def frames_for(self, seconds) -> int:
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise ConfigError(f"seconds must be a number, got {seconds!r}") from None
        if not math.isfinite(seconds) or seconds <= 0 or seconds > self.max_seconds:
            raise ConfigError(f"seconds must be in (0, {self.max_seconds:.1f}] for this "
                              f"generator, got {seconds}")
        if int(round(seconds * self.vae.sample_rate)) < 1:  # would write a 0-sample file
            raise ConfigError(f"seconds must be at least one sample (1/{self.vae.sample_rate} "
                              f"s), got {seconds}")
        # enough frames that the decoder's output (less its synthesis delay) covers them
        samples = int(round(seconds * self.vae.sample_rate)) + self.vae.synthesis_delay
        frames = max(1, -(-samples // self.vae.hop))
        if frames > self.model.config.max_frames:
            raise ConfigError(f"seconds must be in (0, {self.max_seconds:.1f}] for this "
                              f"generator, got {seconds}")
        return frames

    def generate_latent(self, prompt: Union[str, Sequence[str]], seconds: float = 4.0,
                        steps: int = DEFAULT_STEPS, cfg: float = DEFAULT_CFG, seed: int = 0,
                        variations: int = 1, solver: str = DEFAULT_SOLVER,
                        progress: Optional[Callable[[int, int], None]] = None) -> Latent:
        """One prompt, or a list of prompts generated together (one batch: faster per sound);
        ``variations`` per prompt, prompt-major. The latent's batch is
        ``len(prompts) * variations``."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ConfigError("give at least one prompt")
        prompts = [check_prompt(p) for p in prompts]
        if not isinstance(variations, int) or not 1 <= variations <= MAX_VARIATIONS:
            raise ConfigError(f"variations must be an integer in 1..{MAX_VARIATIONS}, "
                              f"got {variations!r}")
        if not 0.0 <= float(cfg) <= 20.0:
            raise ConfigError(f"cfg must be in 0..20, got {cfg}")
        if solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
            raise ConfigError(f"seed must be an integer in 0..2**63-1, got {seed!r}")
        frames = self.frames_for(seconds)
        states, mask = self.text.encode([p for p in prompts for _ in range(variations)])
        g = torch.Generator().manual_seed(int(seed))
        z0 = torch.randn(len(prompts) * variations, self.model.config.latent_channels, frames,
                         generator=g)
        with torch.inference_mode():
            z = integrate(guided_velocity(self.model, float(cfg), states, mask), z0, steps,
                          solver, progress)
            z = self.model.denormalise(z)
        return Latent(z, None, structure_channels=self.vae.structure_channels,
                      sample_rate=self.vae.sample_rate, hop=self.vae.hop,
                      num_samples=int(round(float(seconds) * self.vae.sample_rate)))

    def generate(self, prompt: Union[str, Sequence[str]], seconds: float = 4.0,
                 **kwargs) -> np.ndarray:
        """-> (prompts * variations, channels, samples) float32 at ``sample_rate``."""
        latent = self.generate_latent(prompt, seconds, **kwargs)
        with torch.inference_mode():
            audio = self.vae.decode(latent.mean, num_samples=latent.num_samples)
        return audio.numpy().astype(np.float32)
