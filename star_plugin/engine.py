"""The real-time engine: host blocks in, host blocks out, with latent morphing in between.

    host block (channels, n) at the host rate
      -> NaN/Inf replaced by 0 (never reaches the model state)
      -> streaming resampler to the model rate (soxr, only when the rates differ)
      -> model encoder, streamed (host channels are the batch: they stay independent)
      -> LatentMorph on each completed latent frame
      -> model decoder, streamed; its first synthesis_delay samples dropped
      -> streaming resampler back to the host rate
      -> output FIFO, primed with latency_samples zeros -> n samples out

soxr's streaming resampler is delay-compensated (its output equals a one-shot resampling of
everything so far, only emitted later), and the model's aligned output equals its input's
reconstruction, so the whole chain outputs the processed input *aligned*, just not yet all
of it. The FIFO priming is the most the chain can lag behind: computed once at construction
by running the same resamplers and the model's hop framing on one-sample blocks (emission
depends only on sample counts), so output never runs dry and is delayed by exactly
``latency_samples`` for any block sequence.

Per block the engine does no file I/O, no logging and no model loading; the ONNX backend
streams through preallocated, IO-bound state buffers. Parameters (``engine.morph.set``) may
change from another thread; the morph glides to them frame by frame.
"""
from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np

from .backend import BACKENDS, onnx_available, open_model, open_streaming_model, resolve_backend
from .errors import ConfigError
from .guard import MAX_RATE, MIN_RATE, BlockGuard, as_float_pcm
from .morph import (LatentMorph, MorphParams, resolve_texture_source,
                    texture_source_latent)
from .streaming import SampleFIFO, drop_leading

# BACKENDS, onnx_available, resolve_backend (star_plugin.backend) and SampleFIFO
# (star_plugin.streaming) are re-exported: they lived here before the backend seam.
__all__ = ["BACKENDS", "LATENCY_PROBE_S", "MAX_BLOCK", "RESAMPLE_QUALITIES", "RESAMPLE_QUALITY",
           "SampleFIFO", "StreamingEngine", "onnx_available", "render_offline",
           "resolve_backend"]

MAX_BLOCK = 8192
# soxr's linear-phase "LQ" recipe: its streaming lag is a quarter of "HQ"'s (44.1 <-> 48 kHz:
# 10.7 vs 37.6 ms there and back) with aliasing still at -111 dB and a flat passband to
# 16 kHz; it rolls off above (-3.6 dB at 18 kHz), where the model's output holds ~0.1% of its
# energy. Minimum/intermediate phase saves little lag and shifts the phase, so the wet signal
# would no longer line up with the dry one (docs/ENGINE.md, "Latency per host rate").
RESAMPLE_QUALITY = "LQ"
RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
LATENCY_PROBE_S = 3.0  # how long the resamplers are replayed to find their worst lag


def morph_kernel(model):
    """The model's own morph formula when it has one (an ONNX export's ``morph`` graph, shared
    with the native engine), else None: ``LatentMorph`` applies it in numpy."""
    return getattr(model, "morph_kernel", None)


def _check_host_rate(sample_rate, default: int) -> int:
    """A whole number of Hz in 8000..384000 (None: the model's rate); 44100.5 is refused,
    not truncated."""
    if sample_rate is None:
        return int(default)
    ok = (not isinstance(sample_rate, bool) and isinstance(sample_rate, (int, float, np.integer,
                                                                          np.floating))
          and math.isfinite(sample_rate) and float(sample_rate).is_integer())
    if not ok or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise ConfigError(f"sample_rate must be a whole number of Hz in {MIN_RATE}.."
                          f"{MAX_RATE}, got {sample_rate!r}")
    return int(sample_rate)


def _check_quality(quality) -> str:
    """One of soxr's recipes (linear phase), by name."""
    if not isinstance(quality, str) or quality.upper() not in RESAMPLE_QUALITIES:
        raise ConfigError(f"resample_quality must be one of {', '.join(RESAMPLE_QUALITIES)}, "
                          f"got {quality!r}")
    return quality.upper()


class StreamingEngine:
    """Real-time STAR processing of (channels, n) float32 blocks at any host rate.

    ``texture_source``: what the texture amounts move towards: an audio file path, audio
    (numpy/torch, 1-D or (channels, samples)) at the host rate, an ``(audio, rate)`` pair, or
    a ``Latent``; encoded once, here. ``texture=`` (latent frames) is its deprecated name.

    Threads: ``process`` and ``reset`` take one lock, so an engine shared by several threads
    serialises their calls (a second thread waits for the first; an ONNX Runtime streamer's
    bound state buffers were corrupted, even to a segfault, by two threads at once). The
    blocks of all threads then form one stream in the order the lock admitted them.
    ``morph.set`` and ``set_texture_source`` take no lock: the audio thread never waits for
    them. Uncontended, the lock costs well under a microsecond per block.
    """

    def __init__(self, model="default", sample_rate: Optional[int] = None, channels: int = 1,
                 backend: str = "auto", params: Optional[MorphParams] = None,
                 texture_source=None, resample_quality: str = RESAMPLE_QUALITY, *,
                 texture=None):
        self.resample_quality = _check_quality(resample_quality)
        self._lock = threading.Lock()
        self.model = m = open_streaming_model(model, backend)
        self.backend = m.backend
        self.model_rate = int(m.sample_rate)
        self.sample_rate = _check_host_rate(sample_rate, self.model_rate)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ConfigError(f"channels must be a positive integer, got {channels!r}")
        self.channels = channels
        if m.audio_channels != 1:
            raise ConfigError("the engine runs mono models (each host channel is processed on "
                              f"its own); this model has {m.audio_channels} channels")
        self.hop = m.hop
        self.synthesis_delay = m.synthesis_delay
        self.latent_channels = m.latent_channels
        self.structure_channels = m.structure_channels
        self.core = m.streamer(channels)
        source = resolve_texture_source(m, texture_source, texture, self.sample_rate,
                                        "StreamingEngine")
        self.morph = LatentMorph(self.latent_channels, self.structure_channels,
                                 self.model_rate / self.hop, params, source,
                                 kernel=morph_kernel(m))
        self._guard = BlockGuard("StreamingEngine.process")
        self.latency_samples = self._measure_latency()
        self.reset()

    def set_texture_source(self, texture_source) -> None:
        """Swap the texture source (a path, audio at the host rate, an (audio, rate) pair or
        a Latent); it is encoded here, so call it off the audio thread. The swap is atomic."""
        self.morph.set_source(texture_source_latent(self.model, texture_source,
                                                    self.sample_rate))

    # ----------------------------------------------------------------- set-up
    def _resamplers(self):
        import soxr

        if self.sample_rate == self.model_rate:
            return None, None
        return (soxr.ResampleStream(self.sample_rate, self.model_rate, self.channels,
                                    dtype="float32", quality=self.resample_quality),
                soxr.ResampleStream(self.model_rate, self.sample_rate, self.channels,
                                    dtype="float32", quality=self.resample_quality))

    def _measure_latency(self) -> int:
        """The most the chain's output can lag its input, in host samples.

        Without resampling that is the model's own latency. With it, the whole chain is
        replayed on silence for a few seconds, counting samples only (emission depends only
        on sample counts): host chunks of ``probe`` samples into the input resampler, the
        model's hop framing (it emits ``hop`` aligned samples per completed hop, minus its
        synthesis delay: at most ``model.latency_samples`` behind), the output resampler. The
        worst lag seen, plus ``probe`` (within a chunk the lag grows by at most the chunk).
        Replaying the chain rather than adding each stage's worst lag counts once the time a
        resampler holds samples back while the model waits for the rest of a hop anyway."""
        model_latency = int(self.model.latency_samples)
        rs_in, rs_out = self._resamplers()
        if rs_in is None:
            return model_latency
        probe, hop = 8, self.hop
        held_back = model_latency - (hop - 1)  # model samples behind the last whole hop
        zeros = np.zeros((probe, self.channels), np.float32)
        fed = out = at_model = done = 0
        worst = 0
        for _ in range(int(LATENCY_PROBE_S * self.sample_rate) // probe):
            fed += probe
            at_model += rs_in.resample_chunk(zeros).shape[0]
            ready = max(0, at_model // hop * hop - held_back)
            if ready > done:
                out += rs_out.resample_chunk(np.zeros((ready - done, self.channels),
                                                      np.float32)).shape[0]
                done = ready
            worst = max(worst, fed - out)
        return worst + probe + 1

    def reset(self) -> None:
        """Back to silence: states, resamplers, FIFO and the morph's frame counter."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.core.reset()
        self.morph.reset()
        self._rs_in, self._rs_out = self._resamplers()
        self._skip = self.synthesis_delay
        self._fifo = SampleFIFO(self.channels, self.latency_samples + 2 * MAX_BLOCK,
                                primed=self.latency_samples)
        self.underruns = 0  # blocks the chain could not fill (never, if the latency is right)
        self._dry = SampleFIFO(self.channels, self.latency_samples + 2 * MAX_BLOCK,
                               primed=self.latency_samples)
        self._mix_gains = None  # set by the first block: it starts at its targets

    # ----------------------------------------------------------------- processing
    def guard_block(self, block) -> np.ndarray:
        """The host block as (channels, n) float32, past the streaming guard: integer PCM
        scaled to [-1, 1], NaN/Inf -> 0, |x| clamped to 1e4 (``star_plugin.guard``), so one
        bad block never poisons the model state. Counted in ``sanitized_samples``; warned
        once per engine."""
        x = as_float_pcm(block)
        if x.ndim == 1 and self.channels == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] != self.channels:
            raise ValueError(f"block must be (channels={self.channels}, n) float32, got shape "
                             f"{tuple(x.shape)}")
        if x.shape[1] > MAX_BLOCK:
            raise ValueError(f"block has {x.shape[1]} samples; the engine takes at most "
                             f"{MAX_BLOCK} per call")
        return self._guard(x)

    @property
    def sanitized_samples(self) -> int:
        """Samples the guard replaced (NaN/Inf) or clamped (|x| > 1e4) since construction."""
        return self._guard.fixed

    def _model_block(self, x: np.ndarray) -> np.ndarray:
        """Model-rate (channels, m) -> aligned model-rate output (channels, k)."""
        mean, logsigma = self.core.encode(np.ascontiguousarray(x[:, None, :]))
        if mean.shape[-1] == 0:
            return np.zeros((self.channels, 0), np.float32)
        z = self.morph.apply(mean, logsigma)
        raw = self.core.decode(np.ascontiguousarray(z, dtype=np.float32))[:, 0, :]
        raw, self._skip = drop_leading(raw, self._skip)
        return raw

    def process(self, block) -> np.ndarray:
        """(channels, n) float32 at the host rate -> (channels, n), latency_samples late.
        Safe to call from several threads: calls are serialised (class docstring)."""
        with self._lock:
            return self._process(block)

    def _process(self, block) -> np.ndarray:
        x = self.guard_block(block)
        n = x.shape[1]
        if n == 0:
            return x.copy()
        dry = x
        if self._rs_in is not None:
            x = self._rs_in.resample_chunk(np.ascontiguousarray(x.T)).T
        y = self._model_block(x) if x.shape[1] else np.zeros((self.channels, 0), np.float32)
        if self._rs_out is not None and y.shape[1]:
            y = self._rs_out.resample_chunk(np.ascontiguousarray(y.T)).T
        self._fifo.push(y)
        out, short = self._fifo.pop(n)
        if short:
            self.underruns += 1
        return self._mix_output(out, dry)

    def _mix_output(self, wet: np.ndarray, dry: np.ndarray) -> np.ndarray:
        """Dry/wet ``mix`` and ``output_gain_db`` (MorphParams). The dry signal comes out of
        its own FIFO, delayed by ``latency_samples`` like the wet one, so they line up. A
        parameter change ramps linearly over the block (no click); the first block after a
        reset starts at the parameters' values (nothing sounded before it)."""
        self._dry.push(dry)
        delayed, _ = self._dry.pop(wet.shape[1])
        params = self.morph.params
        target = np.array([params.mix * params.output_gain,
                           (1.0 - params.mix) * params.output_gain], np.float32)
        if self._mix_gains is None:  # nothing has sounded since reset(): no ramp
            self._mix_gains = target
        if np.array_equal(target, self._mix_gains):
            if target[0] == 1.0 and target[1] == 0.0:
                return wet
            return target[0] * wet + target[1] * delayed
        ramp = np.linspace(0.0, 1.0, wet.shape[1] + 1, dtype=np.float32)[1:]
        gains = self._mix_gains[:, None] + (target - self._mix_gains)[:, None] * ramp
        self._mix_gains = target
        return (gains[0] * wet + gains[1] * delayed).astype(np.float32)


def render_offline(model, audio: np.ndarray, sample_rate: int,
                   params: Optional[MorphParams] = None, texture_source=None,
                   resample_quality: str = RESAMPLE_QUALITY, *, texture=None,
                   backend: Optional[str] = None) -> np.ndarray:
    """Bounce: the engine's output for a whole (channels, n) signal, computed offline (whole
    file encode, the same frame-by-frame morph, whole decode) and aligned (no latency).
    Equals ``StreamingEngine.process`` block by block, delayed by ``latency_samples``.
    ``model``: a name, directory, ``StarVAE`` or opened model of either backend
    (``star_plugin.backend.open_model``; ``backend`` None keeps it as given).
    ``texture_source`` as for ``StreamingEngine`` (audio arrays at ``sample_rate``)."""
    from .convert import fold_for_model, unfold_from_model

    resample_quality = _check_quality(resample_quality)
    model = open_model(model, backend)
    x = as_float_pcm(audio, "audio")
    if x.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError("audio has no samples; render_offline needs at least one")
    x = BlockGuard("render_offline")(x)  # the engine's guard (bounce == real time), warned
    batch, layout = fold_for_model(x, sample_rate, model.sample_rate, model.audio_channels,
                                   resample_quality)
    source = resolve_texture_source(model, texture_source, texture, sample_rate,
                                    "render_offline")
    morph = LatentMorph(model.latent_channels, model.structure_channels,
                        model.sample_rate / model.hop, params, source, kernel=morph_kernel(model))
    latent = model.encode(batch)
    z = morph.apply(latent.mean.numpy(), latent.logsigma.numpy())
    y = unfold_from_model(model.decode(z, num_samples=batch.shape[-1]), layout, resample_quality)
    params = morph.params  # dry/wet and output gain, as the engine applies them
    wet, dry = np.float32(params.mix * params.output_gain), np.float32(
        (1.0 - params.mix) * params.output_gain)
    if wet != 1.0 or dry != 0.0:
        y = wet * y + dry * x
    return np.ascontiguousarray(y, dtype=np.float32)
