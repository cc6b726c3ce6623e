"""The exported graphs, as thin torch modules around the one ``StarVAE`` that
``torch.onnx.export`` traces. They add only what a graph needs and Python control flow gives the
eager model for free: in-graph padding, states as flat named tensors, and a guard for calls that
complete no frame (ONNX Runtime's Conv rejects zero-length outputs, and ``If`` is not allowed).

Sizes are read with ``_length`` (a tensor, so the trace records Shape ops, not constants).

Graphs (b = batch, C = latent channels, ch = audio channels):

* ``encoder``: audio (b, ch, n >= 1) -> mean, logsigma (b, C, ceil((n + delay) / hop)), like
  ``StarVAE.encode`` (right-padded with silence).
* ``decoder``: latent (b, C, f >= 1) -> audio (b, ch, f * hop - delay), like ``StarVAE.decode``.
* ``encoder_stream``: audio (b, ch, n >= 1), ``state_in.input`` (the pending samples of an
  incomplete hop, 0..hop-1 of them) and ``state_in.encoder.*`` -> mean, logsigma of the
  frames completed (0 or more), ``state_out.*``. Like ``StarVAE.stream_posterior``.
* ``decoder_stream``: latent (b, C, f >= 0), ``state_in.decoder.*`` -> the raw decoder output
  (b, ch, f * hop) (its first ``delay`` samples ever precede time zero), ``state_out.*``.
  Like ``StarVAE.stream_decode``.
"""
from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from star_plugin.streaming import flatten_state, frames_to_encode, hops_in, unflatten_state
from star_plugin.vae import StarVAE, split_posterior

STATE_IN, STATE_OUT = "state_in.", "state_out."


def _length(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch._shape_as_tensor(x)[dim]


def _keep_unless(valid: torch.Tensor, new: Dict[str, torch.Tensor], old: List[torch.Tensor],
                 names: List[str]) -> List[torch.Tensor]:
    """The new states where the call did real work, the old ones where it completed nothing."""
    return [torch.where(valid, new[name], before) for name, before in zip(names, old)]


class EncoderGraph(nn.Module):
    def __init__(self, model: StarVAE):
        super().__init__()
        self.model = model

    def forward(self, audio):
        m = self.model
        frames = frames_to_encode(_length(audio), m.hop, m.synthesis_delay)
        padded = F.pad(audio, (0, m.hop + m.synthesis_delay))[..., : frames * m.hop]
        return m.posterior(padded)


class DecoderGraph(nn.Module):
    def __init__(self, model: StarVAE):
        super().__init__()
        self.model = model

    def forward(self, latent):
        return self.model.decoder(latent)[..., self.model.synthesis_delay:]


class EncoderStreamGraph(nn.Module):
    """(audio, pending, *encoder states) -> (mean, logsigma, pending, *encoder states)."""

    def __init__(self, model: StarVAE, names: List[str]):
        super().__init__()
        self.model, self.names = model, names  # names relative to the encoder state

    def forward(self, audio, pending, *states):
        m = self.model
        buffer = torch.cat([pending, audio], dim=-1)
        frames = hops_in(_length(buffer), m.hop)
        # With no complete frame, run one frame of silence and keep the old states.
        computed = torch.clamp(frames, min=1)
        padded = F.pad(buffer, (0, m.hop))[..., : computed * m.hop]
        stats, new = m.encoder.step(padded, unflatten_state(dict(zip(self.names, states))))
        mean, logsigma = split_posterior(stats[..., :frames])
        kept = _keep_unless(frames > 0, flatten_state(new), list(states), self.names)
        return (mean, logsigma, buffer[..., frames * m.hop:], *kept)


class DecoderStreamGraph(nn.Module):
    """(latent frames, *decoder states) -> (raw audio, *decoder states)."""

    def __init__(self, model: StarVAE, names: List[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, latent, *states):
        m = self.model
        frames = _length(latent)
        computed = torch.clamp(frames, min=1)
        padded = F.pad(latent, (0, 1))[..., :computed]
        audio, new = m.decoder.step(padded, unflatten_state(dict(zip(self.names, states))))
        kept = _keep_unless(frames > 0, flatten_state(new), list(states), self.names)
        return (audio[..., : frames * m.hop], *kept)


def stream_state_names(model: StarVAE, part: str) -> List[str]:
    """Flat state names of the encoder or decoder, in graph order."""
    return list(flatten_state(getattr(model, part).init_state(1)))


class MorphGraph(nn.Module):
    """The frame-wise latent morph (``star_plugin.morph``), as the ``morph`` graph.

    Inputs (b = batch, C = latent channels, f = frames, N = noise table length):

    * ``mean``, ``logsigma`` (b, C, f): the encoder's posterior of the input's frames;
    * ``source`` (1 or b, C, f): the texture source frame for each frame (the host picks it by
      the source mode: loop, hold, mean, match); zeros when there is no source;
    * ``controls`` (3, f): per frame, already smoothed by the host: structure amount, texture
      amount, temperature (amounts 0 when there is no source);
    * ``gain`` (C, f): per-channel gains per frame (smoothed);
    * ``first_frame`` (1,) int64: the index of the first frame since the stream began;
    * ``noise_table`` (C, N): the standard-normal table the temperature draws from, frame i
      using column i mod N. It is an *overridable initializer*: the export stores the table of
      ``MorphParams.seed`` 0, which a host may omit; Python feeds the table of its own seed.

    Output ``z`` (b, C, f): with amount a = structure amount on channels [0, K) and texture
    amount on [K, C), temperature t only on the texture channels [K, C),

        z = ((1 - a) * (mean + t * exp(logsigma) * noise) + a * source) * gain

    evaluated in float32 in the same order as ``LatentMorph.apply``.
    """

    def __init__(self, channels: int, structure_channels: int):
        super().__init__()
        structure = torch.arange(channels) < structure_channels
        self.register_buffer("structure", structure[:, None], persistent=False)

    def forward(self, mean, logsigma, source, controls, gain, first_frame, noise_table):
        frames = _length(mean)
        index = torch.remainder(first_frame + torch.arange(frames), _length(noise_table))
        noise = torch.index_select(noise_table, 1, index)
        amount = torch.where(self.structure, controls[0:1], controls[1:2])
        temperature = torch.where(self.structure, torch.zeros_like(controls[2:3]),
                                  controls[2:3])
        z = mean + temperature * torch.exp(logsigma) * noise
        z = (1.0 - amount) * z + amount * source
        return z * gain
