"""STAR-VAE: the one model definition used by training, export, the engine and the GUI.

Encoder: audio -> front end (waveform CNN, or STFT + frame CNN) -> bottleneck (Mamba stack or
plain CNN) at the latent rate -> (mean, logsigma). Decoder: the mirror image, ending in a
transposed-conv waveform stack or an inverse-STFT head.

Timing. A latent frame i covers input samples [i*hop, (i+1)*hop) and (causal models) sees
nothing later. The decoder's raw output trails the aligned reconstruction by
``synthesis_delay`` samples (inverse-STFT head: n_fft - stft_hop; waveform: 0). Hence the
streaming latency ``hop - 1 + synthesis_delay``: the first sample of a hop waits hop - 1
samples for its frame, then the synthesis delay.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import VAEConfig
from .errors import StreamingError
from .latent import Latent
from .layers import (ChannelNorm, Conv, ConvTranspose, Snake, conv_stack, convnext_block, decoder_block,
                     encoder_block)
from .mamba import MambaLayer, RMSNorm
from .spectral import ISTFTSynthesis, STFTAnalysis
from .pitch import CausalPitchTracker, PitchEncoder
from .synthesis import (HarmonicHead, HarmonicProjection, PeakLockedHead, PhaseVocoderHead,
                        init_head_projection)
from .streaming import (Streamable, StreamSequential, frames_to_encode, latency_fifo,
                        split_whole_hops, step_layers)

LOGSIGMA_RANGE = (-12.0, 4.0)


def split_posterior(stats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Encoder output (b, 2C, frames) -> (mean, logsigma), logsigma clamped to a sane range."""
    mean, logsigma = stats.chunk(2, dim=1)
    return mean, logsigma.clamp(*LOGSIGMA_RANGE)


def bottleneck(cfg: VAEConfig) -> StreamSequential:
    """The latent-rate sequence model: a Mamba stack (paper) or a plain residual CNN."""
    if cfg.bottleneck_layers == 0:
        return StreamSequential()
    if cfg.backbone == "mamba":
        layers = [MambaLayer(cfg.hidden, causal=cfg.causal, d_state=cfg.d_state, d_conv=cfg.d_conv,
                             expand=cfg.expand, scan_backend=cfg.scan_backend)
                  for _ in range(cfg.bottleneck_layers)]
        return StreamSequential(*layers, RMSNorm(cfg.hidden))
    return conv_stack(cfg.hidden, cfg.bottleneck_layers, kernel=3, causal=cfg.causal)


class PerChannel(Streamable):
    """Run a mono module on each audio channel: (b, ch, t) <-> (b*ch, 1, t)."""

    def __init__(self, inner: Streamable, channels: int):
        super().__init__()
        self.inner, self.channels = inner, channels

    def _fold(self, x):
        b = x.shape[0]
        return x.reshape(b * self.channels, x.shape[1] // self.channels, x.shape[-1]), b

    def _unfold(self, y, b):
        return y.reshape(b, self.channels * y.shape[1], y.shape[-1])

    def forward(self, x):
        x, b = self._fold(x)
        return self._unfold(self.inner(x), b)

    def init_state(self, batch, device=None, dtype=None):
        return self.inner.init_state(batch * self.channels, device, dtype)

    def step(self, x, state):
        x, b = self._fold(x)
        y, state = self.inner.step(x, state)
        return self._unfold(y, b), state


class SpectralFeatures(nn.Module):
    """(re, im) -> [log magnitude, sqrt-compressed re, im]: a compressed view of the spectrum
    that keeps the phase (needed to rebuild the waveform). The log magnitude is mapped to
    about [-1.2, 1.4] (a 1e-3 floor, loud tonal peaks near 30)."""

    def forward(self, x):
        re, im = x.chunk(2, dim=1)
        mag = torch.sqrt(re * re + im * im + 1e-10)
        squash = torch.rsqrt(mag + 1e-4)
        level = (torch.log(mag + 1e-3) + 2.0) / 4.0
        return torch.cat([level, re * squash, im * squash], dim=1)


class PolarToComplex(nn.Module):
    """(log magnitude, phase) -> (re, im), magnitude capped as in Vocos. A zero log magnitude
    means a quiet bin (e^-3): an untrained decoder starts near silence, not at full scale."""

    def forward(self, x):
        logmag, phase = x.chunk(2, dim=1)
        mag = torch.exp((logmag - 3.0).clamp(max=6.0))
        return torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1)


def build_encoder(cfg: VAEConfig) -> StreamSequential:
    c, h = cfg.causal, cfg.hidden
    if cfg.family == "waveform":
        widths = [min(cfg.width * 2 ** i, cfg.max_width) for i in range(len(cfg.strides) + 1)]
        front = [Conv(cfg.audio_channels, widths[0], 7, causal=c)]
        front += [encoder_block(widths[i], widths[i + 1], s, causal=c)
                  for i, s in enumerate(cfg.strides)]
        front += [Snake(widths[-1]), Conv(widths[-1], h, 3, causal=c)]
    else:
        bins = cfg.n_fft // 2 + 1
        front = [PerChannel(StreamSequential(STFTAnalysis(cfg.n_fft, cfg.stft_hop),
                                             SpectralFeatures()), cfg.audio_channels),
                 Conv(3 * bins * cfg.audio_channels, h, 1, causal=c),
                 conv_stack(h, cfg.frame_layers, kernel=3, causal=c)]
        for s in cfg.frame_strides:
            if s > 1:
                front += [Snake(h), Conv(h, h, 2 * s, stride=s, causal=c)]
    layers = [*front, bottleneck(cfg), Conv(h, 2 * cfg.latent_channels, 1, causal=c)]
    if cfg.pitch_channel is None:
        return StreamSequential(*layers)
    tracker = CausalPitchTracker(cfg.sample_rate, cfg.hop)
    return PitchEncoder(layers, tracker, cfg.pitch_channel, cfg.latent_channels)


def spectral_synthesis(cfg: VAEConfig) -> list:
    """The frame-rate decoder and its head. v1: residual units, a 1x1 conv to (log magnitude,
    phase) and an inverse STFT. v2: causal ConvNeXt blocks and the phase-vocoder head, with
    or without the f0-driven harmonic comb. v3: the same blocks and the peak-locked head
    (residual + comb magnitudes, phase from the magnitude's peaks)."""
    c, h, ch = cfg.causal, cfg.hidden, cfg.audio_channels
    bins = cfg.n_fft // 2 + 1
    if cfg.head == "istft":
        body = [conv_stack(h, cfg.frame_layers, kernel=3, causal=c), Snake(h)]
        head = StreamSequential(PolarToComplex(), ISTFTSynthesis(cfg.n_fft, cfg.stft_hop))
        return [*body, Conv(h, 2 * bins * ch, 1, causal=c), PerChannel(head, ch)]
    body = ([conv_stack(h, cfg.frame_layers, kernel=3, causal=c)] if cfg.decoder_blocks == 0
            else [convnext_block(h, causal=c) for _ in range(cfg.decoder_blocks)])
    if cfg.head == "peak-locked":
        head = PeakLockedHead(cfg.n_fft, cfg.stft_hop, cfg.sample_rate, cfg.harmonics)
        projection = HarmonicProjection(h, bins, head.extra_channels, ch,  # residual | envelope, f0
                                        cfg.head_hidden)
        return [*body, ChannelNorm(h), projection, PerChannel(head, ch)]
    if cfg.head == "harmonic":
        head = HarmonicHead(cfg.n_fft, cfg.stft_hop, cfg.sample_rate, cfg.harmonics,
                            code_input=cfg.pitch_channel is not None,
                            learned_phase=cfg.learned_phase)
        projection = HarmonicProjection(h, 3 * bins, head.extra_channels, ch, cfg.head_hidden)
    else:
        head = PhaseVocoderHead(cfg.n_fft, cfg.stft_hop, learned_phase=cfg.learned_phase)
        projection = Conv(h, 3 * bins * ch, 1, causal=c)
    init_head_projection(projection.conv, bins, ch)
    return [*body, ChannelNorm(h), projection, PerChannel(head, ch)]


def build_decoder(cfg: VAEConfig) -> StreamSequential:
    c, h = cfg.causal, cfg.hidden
    layers = [Conv(cfg.latent_channels, h, 3, causal=c), bottleneck(cfg)]
    if cfg.family == "waveform":
        widths = [min(cfg.width * 2 ** i, cfg.max_width) for i in range(len(cfg.strides) + 1)]
        layers += [Conv(h, widths[-1], 7, causal=c)]
        for i, s in reversed(list(enumerate(cfg.strides))):
            layers.append(decoder_block(widths[i + 1], widths[i], s, causal=c))
        layers += [Snake(widths[0]), Conv(widths[0], cfg.audio_channels, 7, causal=c)]
    else:
        bins = cfg.n_fft // 2 + 1
        for s in reversed(cfg.frame_strides):
            if s > 1:
                layers += [Snake(h), ConvTranspose(h, h, 2 * s, s, causal=c)]
        layers += spectral_synthesis(cfg)
    if cfg.head in ("harmonic", "peak-locked") and cfg.pitch_channel is not None:
        return PitchDecoder(layers, cfg.pitch_channel, int(math.prod(cfg.frame_strides)),
                            cfg.audio_channels)
    return Decoder(*layers)


class Decoder(StreamSequential):
    """The decoder stack; its last layer is the synthesis head."""

    def head_input(self, z: torch.Tensor) -> torch.Tensor:
        """What the head is given for latents z (training losses read it)."""
        return _run(self.layers[:-1], z)


class PitchDecoder(Decoder):
    """A decoder whose harmonic head also gets the latent pitch code directly: channel
    ``channel`` of z, held for the ``upsample`` head frames of each latent frame and appended
    to every audio channel's head input. Through the whole stack the f0 learned far too slowly
    (docs/SYNTHESIS.md); here the head only learns a bounded correction."""

    def __init__(self, layers, channel: int, upsample: int, audio_channels: int):
        super().__init__(*layers)
        self.channel, self.upsample, self.audio_channels = channel, upsample, audio_channels

    def _with_code(self, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, t, ch = features.shape[0], features.shape[-1], self.audio_channels
        per_channel = features.shape[1] // ch
        # held for each latent frame's head frames (expand + reshape: repeat_interleave
        # exports wrongly for a dynamic length)
        code = z[:, self.channel:self.channel + 1]
        code = code[..., None].expand(b, 1, code.shape[-1], self.upsample).reshape(b, 1, t)
        code = code[:, None].expand(b, ch, 1, t)
        return torch.cat([features.reshape(b, ch, per_channel, t), code],
                         dim=2).reshape(b, ch * (per_channel + 1), t)

    def head_input(self, z):
        return self._with_code(_run(self.layers[:-1], z), z)

    def forward(self, z):
        return self.layers[-1](self.head_input(z))

    def step(self, z, state):
        head = str(len(self.layers) - 1)
        body = {k: v for k, v in state.items() if k != head}
        features, new = step_layers(self.layers[:-1], z, body)
        audio, new[head] = self.layers[-1].step(self._with_code(features, z), state[head])
        return audio, new


def _run(layers, x):
    for layer in layers:
        x = layer(x)
    return x


class StarVAE(nn.Module):
    """A STAR-VAE. Audio tensors are (batch, audio_channels, samples) at ``sample_rate``."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config)
        self.decoder = build_decoder(config)

    # ------------------------------------------------------------------ timing facts
    @property
    def hop(self) -> int:
        return self.config.hop

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def latent_rate(self) -> float:
        return self.config.latent_rate

    @property
    def structure_channels(self) -> int:
        return self.config.structure_channels

    @property
    def synthesis_delay(self) -> int:
        """Read off the decoder's last layer: an overlap-add head's tail, else 0."""
        for module in self.decoder.modules():
            if isinstance(module, (ISTFTSynthesis, PhaseVocoderHead)):
                return module.delay
        return 0

    @property
    def latency_samples(self) -> int:
        return self.hop - 1 + self.synthesis_delay

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ offline
    def _check_audio(self, x: torch.Tensor, name: str = "audio") -> None:
        """Say clearly what the model takes: a float32 torch tensor (batch, channels, samples)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a float32 torch.Tensor (batch, "
                            f"{self.config.audio_channels}, samples), got {type(x).__name__}; "
                            "numpy: torch.from_numpy(x.astype('float32')) (integer PCM: divide "
                            "by 32768 first), or use star_plugin.convert.to_model_batch")
        weights = next(self.parameters(), None)
        if not x.is_floating_point() or (weights is not None and x.dtype != weights.dtype):
            want = weights.dtype if weights is not None else torch.float32
            raise TypeError(f"{name} must be {want} like the model's weights, got {x.dtype}; "
                            f"use x.to({want}) (integer PCM: scale to [-1, 1] first)")
        if x.dim() != 3 or x.shape[1] != self.config.audio_channels:
            raise ValueError(f"{name} must be (batch, {self.config.audio_channels}, samples), "
                             f"got shape {tuple(x.shape)}")

    def _pad_for_encoding(self, x: torch.Tensor) -> torch.Tensor:
        """Right-pad with silence so that every input sample gets a complete reconstruction
        (the synthesis delay) and the length is a whole number of hops."""
        frames = max(1, frames_to_encode(x.shape[-1], self.hop, self.synthesis_delay))
        return F.pad(x, (0, frames * self.hop - x.shape[-1]))

    def posterior(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mean, logsigma) of the frames of x; x length must be a multiple of hop."""
        return split_posterior(self.encoder(x))

    def encode(self, x: torch.Tensor) -> Latent:
        """Audio (batch, channels, samples) -> its posterior. NaN/Inf are cleaned with a
        warning and no samples at all is a ValueError (the CLI's rules, star_plugin.guard)."""
        from .guard import guard_offline_audio

        self._check_audio(x)
        x = guard_offline_audio(x, f"model '{self.config.name}' encode")
        mean, logsigma = self.posterior(self._pad_for_encoding(x))
        return Latent(mean, logsigma, self.structure_channels, self.sample_rate, self.hop,
                      num_samples=x.shape[-1])

    def decode(self, z, num_samples: Optional[int] = None) -> torch.Tensor:
        """Latent (or a (batch, C, frames) tensor) -> aligned audio.

        Returns frames*hop - synthesis_delay samples (all that are complete), or
        ``num_samples`` (default: the latent's own) when given.
        """
        if isinstance(z, Latent):
            num_samples = z.num_samples if num_samples is None else num_samples
            z = z.mean
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"latent must be a Latent or a float torch.Tensor (batch, "
                            f"{self.config.latent_channels}, frames), got {type(z).__name__}; "
                            "numpy: torch.from_numpy(z.astype('float32'))")
        if z.dim() != 3 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"latent must be (batch, {self.config.latent_channels}, frames), "
                             f"got shape {tuple(z.shape)}")
        from .guard import refuse_nonfinite_latent

        refuse_nonfinite_latent(z, f"model '{self.config.name}' decode")
        audio = self.decoder(z)[..., self.synthesis_delay:]
        if num_samples is not None:
            audio = audio[..., :num_samples]
        return audio

    def forward(self, x: torch.Tensor, sample: bool = True) -> Tuple[torch.Tensor, Latent]:
        """Training pass: reconstruction (same length as x) and the posterior."""
        audio, latent, _ = self.forward_with_head(x, sample)
        return audio, latent

    def forward_with_head(self, x: torch.Tensor, sample: bool = True):
        """Training pass that also returns what the synthesis head was given (b, values x bins
        x audio channels, STFT frames): the phase-vocoder head's per-bin frequency corrections
        can then be supervised directly (``phase_loss.head_frequency_distance``)."""
        latent = self.encode(x)
        z = latent.sample() if sample else latent.mean
        features = self.decoder.head_input(z)
        audio = self.decoder.layers[-1](features)[..., self.synthesis_delay:][..., :x.shape[-1]]
        return audio, latent, features

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x, sample=False)[0]

    # ------------------------------------------------------------------ streaming
    def _require_causal(self):
        if not self.config.causal:
            raise StreamingError(
                f"model '{self.config.name}' is bidirectional (causal=false): it reads the future "
                "and cannot stream; use a causal model for real time")

    def init_state(self, batch: int = 1, device=None, dtype=torch.float32) -> dict:
        """State of silence for :meth:`stream` (and its encoder/decoder halves)."""
        self._require_causal()
        ch = self.config.audio_channels
        return {
            "input": torch.zeros(batch, ch, 0, device=device, dtype=dtype),
            "encoder": self.encoder.init_state(batch, device, dtype),
            "decoder": self.decoder.init_state(batch, device, dtype),
            "output": torch.zeros(batch, ch, self.latency_samples, device=device, dtype=dtype),
            # raw decoder samples still to drop (they precede time zero of the aligned output)
            "skip": torch.tensor(self.synthesis_delay, dtype=torch.int64),
        }

    def stream_posterior(self, block: torch.Tensor, state: dict):
        """Audio block (any length) -> (mean, logsigma, state) of every hop it completes.
        No guard here: :meth:`stream` (or the engine in front) is the boundary that cleans
        blocks."""
        whole, pending = split_whole_hops(torch.cat([state["input"], block], dim=-1), self.hop)
        stats, enc_state = self.encoder.step(whole, state["encoder"])
        mean, logsigma = split_posterior(stats)
        return mean, logsigma, {**state, "input": pending, "encoder": enc_state}

    def _guard(self, block: torch.Tensor) -> torch.Tensor:
        """The streaming guard (``star_plugin.guard``): NaN/Inf -> 0 and |x| clamped to 1e4,
        so one bad block cannot poison the state; warned once per model."""
        from .guard import BlockGuard

        guard = self.__dict__.get("_stream_guard")
        if guard is None:
            guard = self.__dict__["_stream_guard"] = BlockGuard(f"model '{self.config.name}' "
                                                                "stream")
        return guard(block)

    def stream_encode(self, block: torch.Tensor, state: dict) -> Tuple[torch.Tensor, dict]:
        """Audio block (any length) -> the latent means of every hop it completes."""
        mean, _, state = self.stream_posterior(block, state)
        return mean, state

    def stream_decode(self, frames: torch.Tensor, state: dict) -> Tuple[torch.Tensor, dict]:
        """Latent frames -> frames*hop raw decoder samples (before the synthesis delay)."""
        audio, dec_state = self.decoder.step(frames, state["decoder"])
        return audio, {**state, "decoder": dec_state}

    def stream(self, block: torch.Tensor, state: dict) -> Tuple[torch.Tensor, dict]:
        """One host block in, one block of the same length out, ``latency_samples`` late.
        The block passes the streaming guard first."""
        self._check_audio(block, "block")
        frames, state = self.stream_encode(self._guard(block), state)
        audio, state = self.stream_decode(frames, state)
        out, queue, skip = latency_fifo(state["output"], audio, block.shape[-1],
                                        int(state["skip"]))
        return out, {**state, "output": queue, "skip": torch.tensor(skip, dtype=torch.int64)}
