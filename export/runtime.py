"""ONNX Runtime backend: an export directory run like ``StarVAE`` (encode / decode / stream).

``OnnxVAE(directory)`` loads and checks every graph against ``manifest.json`` (clear errors for
missing, corrupt, mismatched or incompatible files), with 1 intra-op thread by default and the
CUDA execution provider when onnxruntime-gpu is installed (CPU otherwise).

Two streaming interfaces:

* ``init_state`` / ``stream`` / ``stream_posterior`` / ``stream_decode``: pure functions of a
  state dict, exactly like the PyTorch model (numpy or torch in, the same type out);
* ``streamer()``: an ``OnnxStreamer`` for real-time hosts. It owns two preallocated sets of
  state buffers bound once through IO binding (the graph reads one set and writes the other,
  then they swap), so a block allocates nothing for the states, and it skips the encoder call
  when a block completes no hop (the graph would only append the samples to its pending
  buffer).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from star_plugin.errors import ModelFileError
from star_plugin.guard import (BlockGuard, as_float_pcm, guard_offline_audio,
                               refuse_nonfinite_latent)
from star_plugin.latent import Latent
from star_plugin.streaming import frames_to_encode, hops_in, latency_fifo

from .graphs import STATE_IN, STATE_OUT
from .manifest import check_format_version, read_manifest

ENCODER_STATE_PREFIX, DECODER_STATE_PREFIX = "encoder.", "decoder."


def _require_ort():
    # ONNX Runtime 1.32 starts telemetry when it loads: a device id and a database under
    # ~/.cache/Microsoft/DeveloperTools/ in the user's home. Off unless the user set it.
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        import onnxruntime
    except ImportError:
        raise ModelFileError("running ONNX models needs onnxruntime: pip install "
                             "'star-plugin[onnx]' (or 'star-plugin[gpu]' for CUDA)") from None
    return onnxruntime


def default_providers() -> List[str]:
    """CUDA first when onnxruntime-gpu provides it, CPU always."""
    available = _require_ort().get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if p in available]
    return chosen + ["CPUExecutionProvider"]


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _as_audio(x, what: str = "audio") -> np.ndarray:
    """Audio as contiguous float32 numpy: integer PCM scaled to [-1, 1] (as ``StarEffect``
    and files do), so an int16 block is never ~30000x too loud."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(as_float_pcm(x, what))


def _like(x: np.ndarray, template):
    return torch.from_numpy(x) if isinstance(template, torch.Tensor) else x


class OnnxVAE:
    """A STAR-VAE export (``star export``) run by ONNX Runtime."""

    def __init__(self, directory, threads: int = 1, providers: Optional[Sequence[str]] = None):
        ort = _require_ort()
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        info = self.manifest["model"]
        self.name = info["name"]
        self.sample_rate, self.hop = int(info["sample_rate"]), int(info["hop"])
        self.latency_samples = int(info["latency_samples"])
        self.synthesis_delay = int(info["synthesis_delay"])
        self.audio_channels = int(info["audio_channels"])
        self.latent_channels = int(info["latent_channels"])
        self.structure_channels = int(info["structure_channels"])
        self.causal = bool(info["causal"])
        self.backend = "onnx"
        self.guard_block = BlockGuard(f"ONNX model '{self.name}' stream")
        self.providers = list(providers or default_providers())
        self.device = "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.sessions = {kind: self._open(ort, kind, spec, options)
                         for kind, spec in self.manifest["graphs"].items()}
        for needed in ("encoder", "decoder"):
            if needed not in self.sessions:
                raise ModelFileError(f"'{self.directory}/manifest.json' lists no {needed} graph")

    # ------------------------------------------------------------------ loading and checks
    def _open(self, ort, kind: str, spec: dict, options):
        path = self.directory / str(spec.get("file", ""))
        if not path.is_file():
            raise ModelFileError(f"ONNX graph '{path}' ({kind}) does not exist; re-export with "
                                 "`star export MODEL -o DIR`")
        try:
            session = ort.InferenceSession(os.fspath(path), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own types for protobuf/graph errors
            reason = str(exc).strip().splitlines()[0][:300]
            raise ModelFileError(f"'{path}' is not a loadable ONNX graph (corrupt, truncated or "
                                 f"not ONNX): {reason}") from None
        meta = session.get_modelmeta().custom_metadata_map
        fmt = meta.get("star_onnx_format", "")
        version = fmt.split()[-1] if fmt.startswith("star-onnx") else None
        check_format_version(version, meta.get("star_plugin_version"), str(path))
        self._check_against_manifest(path, session, spec)
        return session

    @staticmethod
    def _check_against_manifest(path: Path, session, spec: dict) -> None:
        graph_inputs = {i.name: i.shape for i in session.get_inputs()}
        graph_outputs = [o.name for o in session.get_outputs()]
        problems = []
        if list(graph_inputs) != list(spec.get("inputs", [])):
            problems.append(f"inputs {list(graph_inputs)} vs manifest {spec.get('inputs')}")
        if graph_outputs != list(spec.get("outputs", [])):
            problems.append(f"outputs {graph_outputs} vs manifest {spec.get('outputs')}")
        for state in spec.get("states", []):
            shape = graph_inputs.get(STATE_IN + state["name"])
            if shape is None:
                continue  # already reported as an input mismatch
            fixed = [(a, s) for a, s in enumerate(state["shape"])
                     if a not in state.get("dynamic_axes", [])]
            wrong = [a for a, s in fixed if not isinstance(shape[a], int) or shape[a] != s] \
                if len(shape) == len(state["shape"]) else ["rank"]
            if wrong:
                problems.append(f"state '{state['name']}' is {shape} in the graph but "
                                f"{state['shape']} in the manifest")
        if problems:
            raise ModelFileError(f"'{path}' does not match manifest.json: " + "; ".join(problems[:3]))

    def state_specs(self, kind: str) -> List[dict]:
        """The manifest's state entries (name, shape, batch multiple) of a streaming graph."""
        if kind not in self.sessions:
            raise ModelFileError(
                f"'{self.directory}' has no {kind} graph" + ("" if self.causal else
                                                             ": the model is bidirectional and "
                                                             "cannot stream"))
        return self.manifest["graphs"][kind]["states"]

    # ------------------------------------------------------------------ offline
    def posterior(self, audio) -> Tuple[np.ndarray, np.ndarray]:
        """(mean, logsigma) numpy arrays of audio (b, ch, n), like ``StarVAE.encode``."""
        x = _as_audio(audio)
        if x.ndim != 3 or x.shape[1] != self.audio_channels:
            raise ValueError(f"audio must be (batch, {self.audio_channels}, samples), got shape "
                             f"{tuple(x.shape)}")
        if x.shape[-1] == 0:  # the graph needs one sample; trim to the model's frame count
            frames = max(1, frames_to_encode(0, self.hop, self.synthesis_delay))
            mean, logsigma = self.posterior(np.zeros(x.shape[:2] + (1,), np.float32))
            return mean[..., :frames], logsigma[..., :frames]
        mean, logsigma = self.sessions["encoder"].run(None, {"audio": x})
        return mean, logsigma

    def encode(self, audio) -> Latent:
        """Audio (b, ch, n >= 1) -> ``Latent``; NaN/Inf and |x| > 1e4 are cleaned with a
        warning (the CLI's rule for files)."""
        audio = guard_offline_audio(_as_audio(audio), f"ONNX model '{self.name}' encode")
        mean, logsigma = self.posterior(audio)
        return Latent(torch.from_numpy(mean), torch.from_numpy(logsigma), self.structure_channels,
                      self.sample_rate, self.hop, num_samples=int(np.shape(audio)[-1]))

    def decode(self, z, num_samples: Optional[int] = None):
        """Latent (or (b, C, frames) tensor/array) -> aligned audio, like ``StarVAE.decode``."""
        template = z.mean if isinstance(z, Latent) else z
        if isinstance(z, Latent):
            num_samples = z.num_samples if num_samples is None else num_samples
            z = z.mean
        frames = _as_numpy(z)
        if frames.ndim != 3 or frames.shape[1] != self.latent_channels or frames.shape[2] == 0:
            raise ValueError(f"latent must be (batch, {self.latent_channels}, frames >= 1), got "
                             f"shape {tuple(frames.shape)}")
        refuse_nonfinite_latent(frames, f"ONNX model '{self.name}' decode")
        audio = self.sessions["decoder"].run(None, {"latent": frames})[0]
        if num_samples is not None:
            audio = audio[..., :num_samples]
        return _like(np.ascontiguousarray(audio), template)

    # ------------------------------------------------------------------ streaming (functional)
    def init_state(self, batch: int = 1) -> dict:
        """State of silence, shaped like ``StarVAE.init_state`` (numpy arrays)."""
        def zeros(entry):
            shape = list(entry["shape"])
            shape[0] = batch * max(1, entry["batch_multiple"])
            return np.zeros(shape, np.float32)

        enc = {e["name"]: zeros(e) for e in self.state_specs("encoder_stream")}
        dec = {e["name"]: zeros(e) for e in self.state_specs("decoder_stream")}
        return {"input": enc.pop("input"),
                "encoder": {k[len(ENCODER_STATE_PREFIX):]: v for k, v in enc.items()},
                "decoder": {k[len(DECODER_STATE_PREFIX):]: v for k, v in dec.items()},
                "output": np.zeros((batch, self.audio_channels, self.latency_samples), np.float32),
                "skip": self.synthesis_delay}

    def stream_posterior(self, block, state: dict):
        """Audio block (any length >= 1) -> (mean, logsigma, new state) of the hops it completes.
        No guard here: :meth:`stream` is the boundary that cleans blocks."""
        x = self._check_block(block)
        names = list(state["encoder"])
        feeds = {"audio": x, STATE_IN + "input": state["input"],
                 **{STATE_IN + ENCODER_STATE_PREFIX + k: state["encoder"][k] for k in names}}
        mean, logsigma, pending, *new = self.sessions["encoder_stream"].run(None, feeds)
        new_state = {**state, "input": pending, "encoder": dict(zip(names, new))}
        return _like(mean, block), _like(logsigma, block), new_state

    def stream_encode(self, block, state: dict):
        mean, _, state = self.stream_posterior(block, state)
        return mean, state

    def stream_decode(self, frames, state: dict):
        """Latent frames (b, C, f >= 0) -> f * hop raw decoder samples, new state."""
        z = _as_numpy(frames)
        names = list(state["decoder"])
        feeds = {"latent": z,
                 **{STATE_IN + DECODER_STATE_PREFIX + k: state["decoder"][k] for k in names}}
        audio, *new = self.sessions["decoder_stream"].run(None, feeds)
        return _like(audio, frames), {**state, "decoder": dict(zip(names, new))}

    def _check_block(self, block) -> np.ndarray:
        x = _as_audio(block, "block")
        if x.ndim != 3 or x.shape[1] != self.audio_channels or x.shape[2] == 0:
            raise ValueError(f"block must be (batch, {self.audio_channels}, samples >= 1), got "
                             f"shape {tuple(x.shape)}")
        return x

    def check_state(self, state, batch: int) -> None:
        """A ValueError unless ``state`` is shaped like ``init_state(batch)`` (what the previous
        ``stream`` call returned): ONNX Runtime's own message for a wrong one names no key."""
        def fail(what):
            raise ValueError(f"state {what}; pass init_state({batch}) or the state the "
                             "previous stream() call returned")

        if not isinstance(state, dict):
            fail(f"must be a dict, got {type(state).__name__}")
        missing = [k for k in ("input", "encoder", "decoder", "output", "skip") if k not in state]
        if missing:
            fail(f"lacks {', '.join(missing)}")
        for kind, key, prefix in (("encoder_stream", "encoder", ENCODER_STATE_PREFIX),
                                  ("decoder_stream", "decoder", DECODER_STATE_PREFIX)):
            group = state[key]
            for entry in self.state_specs(kind):
                name = entry["name"]
                value = state["input"] if name == "input" else (
                    group.get(name[len(prefix):]) if isinstance(group, dict) else None)
                shape = list(entry["shape"])
                shape[0] = batch * max(1, entry["batch_multiple"])
                got = np.shape(value) if value is not None else None
                free = set(entry.get("dynamic_axes", [])) - {0}  # the batch is known
                if got is None or len(got) != len(shape) or any(
                        g != w for a, (g, w) in enumerate(zip(got, shape)) if a not in free):
                    fail(f"'{name}' is shaped {got}, expected {tuple(shape)}")
        queued = np.shape(state["output"])  # the latency FIFO: its length varies
        if len(queued) != 3 or queued[:2] != (batch, self.audio_channels):
            fail(f"'output' is shaped {queued}, expected ({batch}, {self.audio_channels}, n)")
        skip = state["skip"]
        if isinstance(skip, bool) or not isinstance(skip, (int, np.integer)) or skip < 0:
            fail(f"'skip' must be a sample count >= 0, got {skip!r}")

    def stream(self, block, state: dict):
        """One block in, one block of the same length out, ``latency_samples`` late. The
        block passes the streaming guard first."""
        x = self._check_block(block)
        self.check_state(state, x.shape[0])
        frames, state = self.stream_encode(self.guard_block(x), state)
        audio, state = self.stream_decode(_as_numpy(frames), state)
        out, queue, skip = latency_fifo(state["output"], audio, np.shape(block)[-1],
                                        state["skip"])
        return _like(np.ascontiguousarray(out), block), {**state, "output": queue, "skip": skip}

    # ------------------------------------------------------------------ the morph graph
    @property
    def morph_kernel(self):
        """The exported ``morph`` graph as ``LatentMorph``'s kernel (None for an export made
        before it existed: the numpy morph is used then)."""
        session = self.sessions.get("morph")
        if session is None:
            return None

        def kernel(mean, logsigma, source, controls, gain, first_frame, noise_table):
            return session.run(None, {
                "mean": np.ascontiguousarray(mean, np.float32),
                "logsigma": np.ascontiguousarray(logsigma, np.float32),
                "source": np.ascontiguousarray(source, np.float32),
                "controls": np.ascontiguousarray(controls, np.float32),
                "gain": np.ascontiguousarray(gain, np.float32),
                "first_frame": np.array([first_frame], np.int64),
                "noise_table": noise_table})[0]

        return kernel

    def streamer(self, batch: int = 1) -> "OnnxStreamer":
        return OnnxStreamer(self, batch)


class _BoundGraph:
    """One streaming graph with two preallocated state sets, pre-bound in two IO bindings
    (A reads set 0 and writes set 1, B the reverse); each call flips between them."""

    def __init__(self, session, entries: List[dict], outputs: List[str], batch: int,
                 device: str):
        from onnxruntime import OrtValue

        self.session, self.outputs = session, outputs
        self.names = [e["name"] for e in entries]
        self.device = device
        sets = []
        for _ in range(2):
            values = {}
            for e in entries:
                shape = list(e["shape"])
                shape[0] = batch * max(1, e["batch_multiple"])
                values[e["name"]] = OrtValue.ortvalue_from_numpy(np.zeros(shape, np.float32),
                                                                 device, 0)
            sets.append(values)
        self.sets = sets
        self.bindings = []
        for parity in range(2):
            binding = session.io_binding()
            for name in outputs:  # bound first: get_outputs() lists outputs in binding order
                binding.bind_output(name, device)
            for name in self.names:
                binding.bind_ortvalue_input(STATE_IN + name, sets[parity][name])
                binding.bind_ortvalue_output(STATE_OUT + name, sets[1 - parity][name])
            self.bindings.append(binding)
        self.parity = 0
        self.initial = {name: np.zeros_like(sets[0][name].numpy()) for name in self.names}

    def run(self, inputs: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """Run once; returns copies of the non-state outputs (their sizes vary per call)."""
        binding = self.bindings[self.parity]
        for name, value in inputs.items():
            binding.bind_cpu_input(name, value)
        for name in self.outputs:  # fresh each call: their shapes change from call to call
            binding.bind_output(name, self.device)
        self.session.run_with_iobinding(binding)
        results = binding.get_outputs()[:len(self.outputs)]
        self.parity = 1 - self.parity
        return [np.array(r.numpy()) for r in results]

    def current(self, name: str) -> np.ndarray:
        return np.array(self.sets[self.parity][name].numpy())

    def reset(self) -> None:
        for values in self.sets:
            for name, value in values.items():
                value.update_inplace(self.initial[name])
        self.parity = 0


class OnnxStreamer:
    """Stateful real-time streaming of one ``OnnxVAE`` (see the module docstring)."""

    def __init__(self, model: OnnxVAE, batch: int = 1):
        self.model, self.batch = model, batch
        enc_entries = [e for e in model.state_specs("encoder_stream") if e["name"] != "input"]
        self._encoder = _BoundGraph(model.sessions["encoder_stream"], enc_entries,
                                    ["mean", "logsigma", STATE_OUT + "input"], batch, model.device)
        self._decoder = _BoundGraph(model.sessions["decoder_stream"],
                                    model.state_specs("decoder_stream"), ["audio"], batch,
                                    model.device)
        self.reset()

    @property
    def latency_samples(self) -> int:
        return self.model.latency_samples

    def reset(self) -> None:
        m = self.model
        self._pending = np.zeros((self.batch, m.audio_channels, 0), np.float32)
        self._fifo = np.zeros((self.batch, m.audio_channels, m.latency_samples), np.float32)
        self._skip = m.synthesis_delay
        self._encoder.reset()
        self._decoder.reset()

    def encode(self, block: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Audio block (b, ch, n) -> (mean, logsigma) of the hops it completes (maybe none).
        No guard here: :meth:`process` (or the engine in front) cleans blocks."""
        m = self.model
        block = _as_audio(block, "block")
        if hops_in(self._pending.shape[-1] + block.shape[-1], m.hop) == 0:  # just buffer
            self._pending = np.concatenate([self._pending, block], axis=-1)
            empty = np.zeros((self.batch, m.latent_channels, 0), np.float32)
            return empty, empty
        mean, logsigma, self._pending = self._encoder.run(
            {"audio": block, STATE_IN + "input": self._pending})
        return mean, logsigma

    def decode(self, frames: np.ndarray) -> np.ndarray:
        """Latent frames (b, C, f) -> f * hop raw decoder samples (before the synthesis delay)."""
        frames = _as_numpy(frames)
        if frames.shape[-1] == 0:
            return np.zeros((self.batch, self.model.audio_channels, 0), np.float32)
        return self._decoder.run({"latent": frames})[0]

    def process(self, block: np.ndarray) -> np.ndarray:
        """One block in, one block of the same length out, ``latency_samples`` late. The
        block passes the model's streaming guard first."""
        x = _as_audio(block, "block")
        if x.ndim != 3 or x.shape[:2] != (self.batch, self.model.audio_channels):
            raise ValueError(f"block must be (batch={self.batch}, {self.model.audio_channels}, "
                             f"samples), got shape {tuple(x.shape)}")
        n = x.shape[-1]
        audio = self.decode(self.encode(self.model.guard_block(x))[0])
        out, self._fifo, self._skip = latency_fifo(self._fifo, audio, n, self._skip)
        return out

    def states(self) -> Dict[str, np.ndarray]:
        """Copies of the current states, named like ``flatten_state(StarVAE.init_state())``."""
        flat = {"input": self._pending.copy()}
        flat.update({name: self._encoder.current(name) for name in self._encoder.names})
        flat.update({name: self._decoder.current(name) for name in self._decoder.names})
        return flat
