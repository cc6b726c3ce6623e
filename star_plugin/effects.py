"""STAR as a Pedalboard-style effect: ``effect(audio, sample_rate, buffer_size=8192, reset=True)``.

Pedalboard's own conventions are followed so that a STAR effect drops in wherever a
Pedalboard plugin goes:

* ``reset=True`` (the default): the whole buffer is processed from silence and returned
  aligned and at full length (the engine's latency is compensated by flushing it with
  silence), like ``Pedalboard(...)(audio, sr)``.
* ``reset=False``: streaming. State carries over between calls, the output is aligned with
  the input, so the first calls return fewer samples while the latency fills (Pedalboard's
  latency-reporting plugins do the same); ``flush()`` returns what is still inside.
* The layout is detected like Pedalboard's: 1-D is mono, 2-D is (channels, samples) or
  (samples, channels), whichever dimension is smaller is channels; the output has the input's
  layout.

Pedalboard plugins are C++ objects and a ``pedalboard.Pedalboard`` cannot hold a Python
effect, so ``chain.StarChain`` is the container that mixes the two.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Optional

import numpy as np

from .backend import open_streaming_model
from .engine import MAX_BLOCK, StreamingEngine
from .errors import ConfigError
from .guard import MAX_BUFFER_SIZE
from .morph import MorphParams, rename_legacy_keys, resolve_texture_source
from .streaming import drop_leading


def to_channels_first(audio) -> "tuple[np.ndarray, str]":
    """Any Pedalboard-style buffer -> ((channels, n) float32, layout tag to undo it)."""
    x = np.asarray(audio)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"audio must be a float32 or float64 array, got {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if x.ndim == 1:
        return x[None], "mono"
    if x.ndim != 2:
        raise ValueError(f"audio must be 1-D or 2-D (channels and samples), got shape {x.shape}")
    if x.shape[1] == 0 or (x.shape[0] != 0 and x.shape[0] <= x.shape[1]):  # empty: (ch, 0)
        return x, "channels-first"
    return x.T, "channels-last"


def from_channels_first(x: np.ndarray, layout: str) -> np.ndarray:
    if layout == "mono":
        return x[0]
    return x if layout == "channels-first" else np.ascontiguousarray(x.T)


def check_buffer_size(buffer_size, name: str = "buffer_size") -> int:
    """An integer in 1..MAX_BUFFER_SIZE, checked before anything reaches Pedalboard."""
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer)) \
            or not 1 <= buffer_size <= MAX_BUFFER_SIZE:
        raise ConfigError(f"{name} must be an integer in 1..{MAX_BUFFER_SIZE}, "
                          f"got {buffer_size!r}")
    return int(buffer_size)


def _whole_rate(sample_rate) -> int:
    """A sample rate in whole Hz (44100.0 is fine); NaN, 44100.5, True or "44100" are a
    ValueError saying so (NaN reached ``int()`` with its own puzzling message)."""
    ok = (isinstance(sample_rate, numbers.Real) and not isinstance(sample_rate, bool)
          and math.isfinite(sample_rate) and float(sample_rate).is_integer())
    if not ok:
        raise ValueError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


class PedalboardConvention:
    """``effect(audio, sample_rate, buffer_size=8192, reset=True)`` with Pedalboard's layout
    detection, over a subclass's ``process_channels_first((channels, n), ...)``."""

    def process(self, input_array, sample_rate: float, buffer_size: int = 8192,
                reset: bool = True) -> np.ndarray:
        x, layout = to_channels_first(input_array)
        return from_channels_first(self.process_channels_first(x, sample_rate, buffer_size,
                                                               reset), layout)

    def __call__(self, input_array, sample_rate: float, buffer_size: int = 8192,
                 reset: bool = True) -> np.ndarray:
        return self.process(input_array, sample_rate, buffer_size, reset)

    def process_channels_first(self, x: np.ndarray, sample_rate: float,
                               buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        raise NotImplementedError


class StarEffect(PedalboardConvention):
    """A STAR-VAE latent morph as an effect in a chain.

    ``model``: bundled name, model directory, ``StarVAE`` or an opened model of either
    backend (``star_plugin.backend.open_model``: ``TorchModel``, ``OnnxVAE``); ``preset``: a
    morph preset name or file (its parameters are the starting point, ``params`` overrides);
    ``texture_source``: what the texture amounts move towards: an audio file path, audio
    (numpy/torch, 1-D or (channels, samples); at ``texture_sample_rate``, default the
    model's), an ``(audio, rate)`` pair, or a ``Latent``; encoded once, here.
    ``texture=`` is its deprecated name (an array there means latent frames, as it did).
    """

    def __init__(self, model="default", params: Optional[MorphParams] = None,
                 texture_source=None, preset: Optional[str] = None, backend: str = "auto", *,
                 texture_sample_rate: Optional[int] = None, texture=None):
        if preset is not None:
            from .morph_presets import load_preset

            loaded = load_preset(preset)
            params = params or loaded.params
        # Load (and for ONNX, export) once: the engines made per sample rate share it.
        self.model = open_streaming_model(model, backend)
        backend = self.model.backend
        self.params = (params or MorphParams()).validate()
        # where the texture came from, if a file (a chain saves it as its texture_source)
        source = texture_source if texture is None else texture
        self.texture_file: Optional[str] = (os.fspath(source) if isinstance(
            source, (str, os.PathLike)) else None)
        self.texture_source = resolve_texture_source(self.model, texture_source, texture,
                                                     texture_sample_rate, "StarEffect")
        self.backend, self.preset = backend, preset
        self.texture_prompt: Optional[str] = None  # ... or the prompt that generated it
        self.generator: Optional[str] = None
        self._engine: Optional[StreamingEngine] = None
        self._pending_skip = 0  # latency samples still to drop from the stream's start

    @property
    def texture(self):
        """Deprecated: ``texture_source`` (the encoded source latent)."""
        import warnings

        warnings.warn("StarEffect.texture is deprecated, use texture_source",
                      DeprecationWarning, stacklevel=2)
        return self.texture_source

    def __repr__(self) -> str:
        p = self.params
        return (f"StarEffect(structure_amount={p.structure_amount}, "
                f"texture_amount={p.texture_amount}, temperature={p.temperature}, "
                f"mode={p.mode!r}, mix={p.mix}, output_gain_db={p.output_gain_db}, "
                f"backend={self.backend!r})")

    @property
    def engine(self) -> Optional[StreamingEngine]:
        return self._engine

    def set(self, **changes) -> None:
        """Change morph parameters; smoothed if audio is streaming through. The old names
        ``structure``/``texture`` work, with a DeprecationWarning."""
        changes = rename_legacy_keys(changes, "StarEffect.set()", warn=True)
        self.params = MorphParams.from_dict({**self.params.to_dict(), **changes})
        if self._engine is not None:
            self._engine.morph.set(**changes)

    def latency(self, sample_rate: int, channels: int = 1) -> int:
        return self._engine_for(sample_rate, channels).latency_samples

    def _engine_for(self, sample_rate, channels: int) -> StreamingEngine:
        rate = _whole_rate(sample_rate)
        e = self._engine
        if e is None or e.sample_rate != rate or e.channels != channels:
            e = StreamingEngine(self.model, rate, channels, backend=self.backend,
                                params=self.params, texture_source=self.texture_source)
            self._engine = e
            self._pending_skip = e.latency_samples
        return e

    def reset(self) -> None:
        if self._engine is not None:
            self._engine.reset()
            self._pending_skip = self._engine.latency_samples

    def _run(self, x: np.ndarray, buffer_size: int) -> np.ndarray:
        engine = self._engine
        outs = [engine.process(x[:, i:i + buffer_size]) for i in range(0, x.shape[1], buffer_size)]
        y = np.concatenate(outs, axis=1) if outs else x[:, :0].copy()
        y, self._pending_skip = drop_leading(y, self._pending_skip)
        return y

    def process_channels_first(self, x: np.ndarray, sample_rate: float,
                               buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        """``process`` for a (channels, n) float32 array, with no layout guessing."""
        buffer_size = min(check_buffer_size(buffer_size), MAX_BLOCK)
        engine = self._engine_for(sample_rate, x.shape[0])
        if reset:
            self.reset()
            n = x.shape[1]
            tail = np.zeros((x.shape[0], engine.latency_samples), np.float32)
            y = self._run(np.concatenate([x, tail], axis=1), buffer_size)[:, :n]
            self.reset()
        else:
            y = self._run(x, buffer_size)
        return np.ascontiguousarray(y)

    def flush(self, buffer_size: int = 8192) -> np.ndarray:
        """End a ``reset=False`` stream: the samples still inside, (channels, k), then reset.
        Whatever has been fed, ``latency_samples`` of silence push the rest out."""
        if self._engine is None:
            return np.zeros((1, 0), np.float32)
        e = self._engine
        y = self._run(np.zeros((e.channels, e.latency_samples), np.float32),
                      min(buffer_size, MAX_BLOCK))
        self.reset()
        return y
