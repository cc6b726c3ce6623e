"""The one configuration of a STAR-VAE, stored as ``config.json`` beside the weights."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import ConfigError

CONFIG_VERSION = 2
FAMILIES = ("waveform", "spectral")
HEADS = ("istft", "phase-vocoder", "harmonic", "peak-locked")
BACKBONES = ("mamba", "cnn")


@dataclass
class VAEConfig:
    """Architecture, audio format and STAR regulariser settings of one model.

    Families: ``waveform`` is the paper's model (strided residual CNN on samples, Snake
    activations); ``spectral`` is the real-time model (fixed STFT analysis, a CNN at the STFT
    frame rate, an inverse-STFT head with overlap-add, in the manner of Vocos). Backbones:
    ``mamba`` puts a Mamba stack at the latent rate; ``cnn`` a plain residual CNN (ablation).
    """

    name: str = "star-vae"
    family: str = "spectral"
    backbone: str = "mamba"
    causal: bool = True
    sample_rate: int = 44100
    audio_channels: int = 1
    latent_channels: int = 32
    structure_channels: int = 8  # K: channels [0, K) are structure, [K, C) texture
    # waveform family: base width and the downsampling strides (hop = product of strides)
    width: int = 32
    max_width: int = 512
    strides: List[int] = field(default_factory=lambda: [2, 4, 8, 8])
    # spectral family: STFT size and hop, then strides over STFT frames
    n_fft: int = 1024
    stft_hop: int = 256
    frame_strides: List[int] = field(default_factory=lambda: [4])
    frame_layers: int = 2
    # spectral decoder at the STFT frame rate: ``decoder_blocks`` causal ConvNeXt blocks (v2)
    # instead of ``frame_layers`` residual units (v1), and the synthesis head: ``istft`` (v1,
    # phase predicted per frame), ``phase-vocoder`` (v2, phase accumulated across frames) or
    # ``harmonic`` (v2 plus a comb of ``harmonics`` partials on a predicted f0, synthesis.py)
    # or ``peak-locked`` (v3: residual magnitude + comb magnitude, phase locked to the
    # magnitude's peaks; needs a pitch channel)
    decoder_blocks: int = 0
    head: str = "istft"
    harmonics: int = 64
    # harmonic and peak-locked heads: a hidden layer of this width beside the head's linear
    # projection (0: linear only). A linear map from ``hidden`` features spans at most
    # ``hidden`` shapes of log spectrum: at rank 192 the input's own magnitude renders at
    # pitched FSC 0.44, at rank 384 at 0.60 (benchmarks/oracle_rank.py)
    head_hidden: int = 0
    # phase-vocoder heads: the learned per-bin frequency corrections and phase offsets (True),
    # or the bare bin-centre advance (False; synthesis.PhaseVocoderHead)
    learned_phase: bool = True
    # a latent channel that is not learned but the causal YIN pitch code (pitch.PitchEncoder):
    # log2(f0 / 220 Hz), 0 when unvoiced; None: every channel learned
    pitch_channel: Optional[int] = None
    # bottleneck at the latent rate
    hidden: int = 256
    bottleneck_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    scan_backend: str = "auto"
    # STAR regulariser (see star_loss.beta_field)
    star: Dict[str, Any] = field(default_factory=lambda: {
        "curve": "star", "beta_min": 1e-4, "beta_max": 1e-1, "gamma": 3.0})
    version: int = CONFIG_VERSION

    def __post_init__(self):
        self.validate()

    # ----------------------------------------------------------------- derived values
    @property
    def hop(self) -> int:
        """Audio samples per latent frame."""
        if self.family == "waveform":
            return int(math.prod(self.strides))
        return self.stft_hop * int(math.prod(self.frame_strides))

    @property
    def latent_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def hop_rates(self) -> tuple:
        """Rates (Hz) at which frame-wise synthesis can buzz: the latent frame rate and, for
        the spectral family, the STFT hop rate (what ``metrics.hop_buzz`` looks at)."""
        if self.family == "waveform":
            return (self.latent_rate,)
        return (self.latent_rate, self.sample_rate / self.stft_hop)

    # ----------------------------------------------------------------- checks and JSON
    def validate(self) -> None:
        def need(cond, msg):
            if not cond:
                raise ConfigError(f"invalid model config: {msg}")

        need(self.family in FAMILIES, f"family must be one of {FAMILIES}, got {self.family!r}")
        need(self.backbone in BACKBONES,
             f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        need(isinstance(self.causal, bool), f"causal must be true or false, got {self.causal!r}")
        need(8000 <= int(self.sample_rate) <= 384000,
             f"sample_rate must be in 8000..384000, got {self.sample_rate}")
        need(1 <= self.audio_channels <= 2, f"audio_channels must be 1 or 2, got {self.audio_channels}")
        need(self.latent_channels >= 1, f"latent_channels must be >= 1, got {self.latent_channels}")
        need(0 <= self.structure_channels <= self.latent_channels,
             f"structure_channels must be in 0..latent_channels ({self.latent_channels}), "
             f"got {self.structure_channels}")
        need(all(int(s) >= 1 for s in self.strides), f"strides must be >= 1, got {self.strides}")
        need(all(int(s) >= 1 for s in self.frame_strides),
             f"frame_strides must be >= 1, got {self.frame_strides}")
        need(self.n_fft >= self.stft_hop >= 1 and self.n_fft % 2 == 0,
             f"need an even n_fft >= stft_hop >= 1, got n_fft={self.n_fft}, stft_hop={self.stft_hop}")
        need(self.head in HEADS, f"head must be one of {HEADS}, got {self.head!r}")
        need(isinstance(self.learned_phase, bool),
             f"learned_phase must be true or false, got {self.learned_phase!r}")
        need(isinstance(self.harmonics, int) and not isinstance(self.harmonics, bool)
             and 1 <= self.harmonics <= 512,
             f"harmonics must be an integer in 1..512, got {self.harmonics!r}")
        need(isinstance(self.head_hidden, int) and not isinstance(self.head_hidden, bool)
             and 0 <= self.head_hidden <= 4096,
             f"head_hidden must be an integer in 0..4096, got {self.head_hidden!r}")
        need(self.head_hidden == 0 or self.head in ("harmonic", "peak-locked"),
             f"head_hidden needs a harmonic or peak-locked head, not {self.head!r}")
        need(self.pitch_channel is None
             or (isinstance(self.pitch_channel, int) and not isinstance(self.pitch_channel, bool)
                 and 0 <= self.pitch_channel < self.latent_channels),
             f"pitch_channel must be null or a latent channel 0..{self.latent_channels - 1}, "
             f"got {self.pitch_channel!r}")
        need(self.head != "peak-locked" or self.pitch_channel is not None,
             "head 'peak-locked' needs a pitch_channel (its comb reads the latent pitch code)")
        need(isinstance(self.decoder_blocks, int) and self.decoder_blocks >= 0,
             f"decoder_blocks must be an integer >= 0, got {self.decoder_blocks!r}")
        need(self.hidden >= 1 and self.width >= 1, "hidden and width must be >= 1")
        need(self.bottleneck_layers >= 0, "bottleneck_layers must be >= 0")
        need(self.version <= CONFIG_VERSION,
             f"config version {self.version} is newer than this star_plugin understands "
             f"({CONFIG_VERSION}); upgrade star_plugin")

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "VAEConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid model config: {exc}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
