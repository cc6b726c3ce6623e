"""The backend seam: one protocol every model backend satisfies, and one function that opens a
model for a backend.

Everything above the models (the engines, ``StarEffect``, ``StarChain``, ``render_offline``,
texture sources, the studio) takes an :class:`AudioModel` and never asks which backend it is.
Two backends exist:

* ``torch``: :class:`TorchModel`, a ``StarVAE`` behind numpy-friendly calls;
* ``onnx``: ``star_plugin.export.runtime.OnnxVAE``, an export run by ONNX Runtime.

A new backend is one class with the attributes and methods of :class:`AudioModel` (and a
:class:`Streamer`), plus one branch in :func:`open_model`.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from .errors import ConfigError, StreamingError
from .guard import guard_offline_audio, refuse_nonfinite_latent
from .latent import Latent

BACKENDS = ("auto", "onnx", "torch")


@runtime_checkable
class Streamer(Protocol):
    """Stateful streaming of one model for a batch of independent streams (the engine's
    channels). ``encode`` and ``decode`` are the halves the engine morphs between; they do
    not guard (their caller is the boundary); ``process`` guards and is the whole model."""

    def reset(self) -> None:
        """Back to silence."""

    def encode(self, block: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Audio (b, ch, n) -> (mean, logsigma) (b, C, f) of the hops it completes (f >= 0)."""

    def decode(self, frames: np.ndarray) -> np.ndarray:
        """Latent frames (b, C, f) -> f * hop raw decoder samples (before the synthesis delay)."""

    def process(self, block: np.ndarray) -> np.ndarray:
        """One block in, one block of the same length out, ``latency_samples`` late."""


@runtime_checkable
class AudioModel(Protocol):
    """What the runtime needs of a STAR-VAE, whatever runs it.

    Audio is (batch, audio_channels, samples) float32 at ``sample_rate``; latents are
    (batch, latent_channels, frames). ``encode`` returns a ``Latent`` (torch tensors);
    ``decode`` returns numpy for numpy input and torch for a ``Latent`` or a tensor."""

    backend: str  # "torch" | "onnx"
    name: str
    sample_rate: int
    hop: int
    audio_channels: int
    latent_channels: int
    structure_channels: int
    synthesis_delay: int
    latency_samples: int
    causal: bool

    def encode(self, audio) -> Latent:
        ...

    def decode(self, z, num_samples: Optional[int] = None):
        ...

    def streamer(self, batch: int = 1) -> Streamer:
        ...


class TorchStreamer:
    """A ``StarVAE``'s streaming halves with the state kept here (numpy in, numpy out)."""

    def __init__(self, module, batch: int = 1):
        self.module, self.batch = module, batch
        self.reset()

    def reset(self) -> None:
        self.state = self.module.init_state(self.batch)

    def encode(self, block: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            mean, logsigma, self.state = self.module.stream_posterior(torch.from_numpy(block),
                                                                     self.state)
        return mean.numpy(), logsigma.numpy()

    def decode(self, frames: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            audio, self.state = self.module.stream_decode(torch.from_numpy(frames), self.state)
        return audio.numpy()

    def process(self, block: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out, self.state = self.module.stream(torch.from_numpy(np.ascontiguousarray(block)),
                                                 self.state)
        return out.numpy()


class TorchModel:
    """A ``StarVAE`` as an :class:`AudioModel` (``module`` is the StarVAE itself)."""

    backend = "torch"

    def __init__(self, module):
        self.module = module
        config = module.config
        self.config = config
        self.name = config.name
        self.sample_rate, self.hop = int(module.sample_rate), int(module.hop)
        self.audio_channels = int(config.audio_channels)
        self.latent_channels = int(config.latent_channels)
        self.structure_channels = int(config.structure_channels)
        self.synthesis_delay = int(module.synthesis_delay)
        self.latency_samples = int(module.latency_samples)
        self.causal = bool(config.causal)

    def __repr__(self) -> str:
        return f"TorchModel({self.name!r})"

    def encode(self, audio) -> Latent:
        import torch

        if not isinstance(audio, torch.Tensor):
            audio = torch.from_numpy(np.ascontiguousarray(audio))
        audio = guard_offline_audio(audio, f"model '{self.name}' encode")
        with torch.inference_mode():
            return self.module.encode(audio)

    def decode(self, z, num_samples: Optional[int] = None):
        import torch

        as_numpy = isinstance(z, np.ndarray)
        refuse_nonfinite_latent(z.mean if isinstance(z, Latent) else z,
                                f"model '{self.name}' decode")
        if as_numpy:
            z = torch.from_numpy(np.ascontiguousarray(z))
        with torch.inference_mode():
            audio = self.module.decode(z, num_samples=num_samples)
        return audio.numpy() if as_numpy else audio

    def streamer(self, batch: int = 1) -> TorchStreamer:
        return TorchStreamer(require_causal(self).module, batch)


def require_causal(model: AudioModel) -> AudioModel:
    """``model``, or a clear error when it is bidirectional (it reads the future)."""
    if not model.causal:
        raise StreamingError(f"model '{model.name}' is bidirectional and cannot stream; use a "
                             "causal model in the engine")
    return model


def onnx_available() -> bool:
    """Whether the onnx extra (onnx + onnxruntime) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def resolve_backend(backend: str) -> str:
    """'auto' -> 'onnx' when the onnx extra is installed (the real-time backend), else
    'torch'."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "onnx" if onnx_available() else "torch"
    return backend


def onnx_session_model(module):
    """A causal ``StarVAE`` -> an ``OnnxVAE`` holding its exported graphs in memory (the
    temporary files are deleted once the sessions are built)."""
    from .export.exporter import export_model
    from .export.runtime import OnnxVAE

    directory = tempfile.mkdtemp(prefix="star-engine-onnx-")
    try:
        export_model(module, directory, scan_body="scan")
        return OnnxVAE(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _is_name(model) -> bool:
    return isinstance(model, (str, bytes)) or hasattr(model, "__fspath__")


def open_model(model="default", backend: Optional[str] = None) -> AudioModel:
    """``model`` as an :class:`AudioModel` of ``backend``.

    ``model``: a bundled name or model directory (loaded as a ``StarVAE``), a ``StarVAE``, or
    a model already opened (a ``TorchModel``, an ``OnnxVAE``). ``backend``: None keeps what
    ``model`` is (names load with torch); 'torch', 'onnx' or 'auto' (ONNX when installed). A
    torch model asked for 'onnx' is exported (in memory); an ONNX export cannot become torch.
    An opened model of the asked backend is returned as it is, so opening twice is free."""
    from .vae import StarVAE

    wanted = None if backend is None else resolve_backend(backend)
    if _is_name(model):
        from .model_io import load_vae

        model = load_vae(model)
    if isinstance(model, StarVAE):
        model = TorchModel(model)
    if not isinstance(model, AudioModel):
        raise ConfigError(f"model must be a bundled name, a model directory, a StarVAE or an "
                          f"opened model (OnnxVAE), got {type(model).__name__}")
    if wanted is None or wanted == model.backend:
        return model
    if wanted == "onnx":
        return onnx_session_model(require_causal(model).module)
    raise ConfigError("backend 'torch' needs a PyTorch model (a name, directory or StarVAE), "
                      "not an ONNX export")


def open_streaming_model(model, backend: str = "auto") -> AudioModel:
    """:func:`open_model` for a real-time engine: the model must be causal."""
    return require_causal(open_model(model, backend))


__all__ = ["AudioModel", "BACKENDS", "Streamer", "TorchModel", "TorchStreamer",
           "onnx_available", "onnx_session_model", "open_model", "open_streaming_model",
           "require_causal", "resolve_backend"]
