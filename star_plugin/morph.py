"""Latent morphing (timbre transfer): the same frame-by-frame rule offline and in real time.

For latent frame i of the input (mean m_i, log-sigma s_i, channels [0, K) structure and
[K, C) texture) and a texture source S (a latent of the reference sound):

    src_i  = the source frame for i (mode: loop | hold | mean | match, below)
    z_i    = m_i + temperature * exp(s_i) * eps_i          on texture channels only
    z_i    = (1 - a) * z_i + a * src_i                     a = structure amount on [0, K),
                                                           a = texture amount on [K, C)
    out_i  = gain * z_i                                     per-channel gains

Source modes: ``loop`` (the source's frames repeated), ``hold`` (time-aligned, then its last
frame held), ``mean`` (the source's average frame: a frozen texture), ``match`` (statistics
matching: the input's own frames, normalised by their running mean and deviation per channel,
rescaled to the source's mean and deviation: the input's motion, the source's colour).

Every rule is causal and depends only on the frame index (eps_i comes from a fixed table
seeded by ``seed``; running statistics are updated frame by frame), so rendering a file
offline and streaming it block by block give the same frames: bounce == real time.

Parameters can be changed from another thread while a stream runs (``set``): each frame moves
them a fixed fraction of the way to their targets (one-pole smoothing, ``smoothing_s``), so
automation never jumps.
"""
from __future__ import annotations

import math
import os
import threading
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Dict, List, Optional

import numpy as np

from .errors import ConfigError
from .export.morph_spec import NOISE_FRAMES, SMOOTHING_S, noise_table

MODES = ("loop", "hold", "mean", "match")
RUNNING_STATS_S = 2.0  # time constant of the input statistics in 'match' mode


# Names used before "texture" had one meaning (an amount here, a latent in the engine, a file
# in the CLI): old presets, chain files and studio settings still load with them.
LEGACY_KEYS = {"structure": "structure_amount", "texture": "texture_amount"}


def _is_number(value) -> bool:
    """A real number; True/False are refused (``texture_amount=True`` is a mistake, not 1.0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rename_legacy_keys(data: Dict, where: str = "morph parameters",
                       warn: bool = False) -> Dict:
    """``structure``/``texture`` -> ``structure_amount``/``texture_amount`` (a new dict).
    Giving both names of one parameter is an error; ``warn`` issues a DeprecationWarning (for
    Python keywords; files load silently)."""
    old = [k for k in LEGACY_KEYS if k in data]
    if not old:
        return dict(data)
    both = [k for k in old if LEGACY_KEYS[k] in data]
    if both:
        raise ConfigError(f"{where}: give '{LEGACY_KEYS[both[0]]}' or its old name "
                          f"'{both[0]}', not both")
    if warn:
        warnings.warn(", ".join(f"'{k}' is deprecated, use '{LEGACY_KEYS[k]}'" for k in old),
                      DeprecationWarning, stacklevel=3)
    return {LEGACY_KEYS.get(k, k): v for k, v in data.items()}


_UNSET = object()


@dataclass(init=False)
class MorphParams:
    """What a sound designer sets (and a preset stores).

    ``structure_amount``/``texture_amount`` say how much of the texture *source*'s structure
    and texture replace the input's; the source itself (a file, audio or a ``Latent``) is
    given to the engine/effect as ``texture_source``. ``MorphParams(texture=...)`` and
    ``structure=`` still work, with a DeprecationWarning.
    """

    structure_amount: float = 0.0  # 0: keep the input's structure; 1: take the source's
    texture_amount: float = 1.0    # 0: keep the input's texture; 1: take the source's
    temperature: float = 0.0  # resample the texture channels around the posterior
    mode: str = "loop"
    gains: List[float] = field(default_factory=list)  # per latent channel; empty = all 1
    seed: int = 0
    mix: float = 1.0            # dry/wet: 0 = the input (delayed like the output), 1 = STAR only
    output_gain_db: float = 0.0  # applied after the mix, -60..+24 dB

    def __init__(self, structure_amount: float = _UNSET, texture_amount: float = _UNSET,
                 temperature: float = 0.0, mode: str = "loop", gains: Optional[List] = None,
                 seed: int = 0, mix: float = 1.0, output_gain_db: float = 0.0, *,
                 structure=_UNSET, texture=_UNSET):
        # the old keywords map onto the new fields (positional order is unchanged)
        given = {k: v for k, v in (("structure_amount", structure_amount),
                                   ("texture_amount", texture_amount), ("structure", structure),
                                   ("texture", texture)) if v is not _UNSET}
        given = rename_legacy_keys(given, "MorphParams", warn=True)
        self.structure_amount = given.get("structure_amount", 0.0)
        self.texture_amount = given.get("texture_amount", 1.0)
        self.temperature, self.mode, self.seed = temperature, mode, seed
        self.gains = [] if gains is None else gains
        self.mix, self.output_gain_db = mix, output_gain_db

    @property
    def texture(self) -> float:
        """Deprecated: ``texture_amount``."""
        warnings.warn("MorphParams.texture is deprecated, use texture_amount",
                      DeprecationWarning, stacklevel=2)
        return self.texture_amount

    @property
    def structure(self) -> float:
        """Deprecated: ``structure_amount``."""
        warnings.warn("MorphParams.structure is deprecated, use structure_amount",
                      DeprecationWarning, stacklevel=2)
        return self.structure_amount

    @property
    def output_gain(self) -> float:
        """``output_gain_db`` as a linear factor."""
        return 10.0 ** (self.output_gain_db / 20.0)

    def validate(self, channels: Optional[int] = None) -> "MorphParams":
        def need(ok, msg):
            if not ok:
                raise ConfigError(f"morph parameter {msg}")

        for name in ("structure_amount", "texture_amount"):
            value = getattr(self, name)
            need(_is_number(value) and 0.0 <= value <= 1.0,
                 f"'{name}' must be a number in 0..1, got {value!r}")
        need(_is_number(self.temperature) and 0.0 <= self.temperature <= 4.0,
             f"'temperature' must be a number in 0..4, got {self.temperature!r}")
        need(_is_number(self.mix) and 0.0 <= self.mix <= 1.0,
             f"'mix' must be a number in 0..1 (dry..wet), got {self.mix!r}")
        need(_is_number(self.output_gain_db) and -60.0 <= self.output_gain_db <= 24.0,
             f"'output_gain_db' must be a number in -60..24, got {self.output_gain_db!r}")
        need(self.mode in MODES, f"'mode' must be one of {', '.join(MODES)}, got {self.mode!r}")
        need(isinstance(self.gains, list) and all(_is_number(g) and math.isfinite(g)
                                                  for g in self.gains),
             f"'gains' must be a list of numbers, got {self.gains!r}")
        if channels is not None and self.gains:
            need(len(self.gains) == channels,
                 f"'gains' has {len(self.gains)} values but the model has {channels} latent "
                 "channels")
        need(isinstance(self.seed, int) and not isinstance(self.seed, bool)
             and 0 <= self.seed < 2 ** 63,
             f"'seed' must be an integer in 0..2**63-1, got {self.seed!r}")
        return self

    @classmethod
    def from_dict(cls, data: Dict) -> "MorphParams":
        """From a preset's/chain file's ``params`` (the old keys ``structure``/``texture``
        load as the amounts they were)."""
        if not isinstance(data, dict):
            raise ConfigError(f"morph parameters must be an object, got {type(data).__name__}")
        data = rename_legacy_keys(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown morph parameters: {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(known))})")
        return cls(**data).validate()

    def to_dict(self) -> Dict:
        return asdict(self)


class LatentMorph:
    """Applies :class:`MorphParams` to latent frames, in order, carrying its own state.

    ``source`` is the texture source latent, (C, frames) (a numpy array, a torch tensor or a
    ``Latent``, whose first batch item is used), or None for no source (then amounts mix
    towards the input itself and only temperature and gains act).

    ``kernel``: the formula applied to the frames, given the smoothed controls (the exported
    ``morph`` graph of an ONNX model, ``OnnxVAE.morph_kernel``, so that Python and native
    hosts share one definition); None: the same formula in numpy (:meth:`combine`).
    """

    def __init__(self, channels: int, structure_channels: int, frame_rate: float,
                 params: Optional[MorphParams] = None, source=None,
                 smoothing_s: float = SMOOTHING_S, kernel=None):
        self.channels, self.structure_channels = channels, structure_channels
        self.frame_rate = frame_rate
        self.coef = math.exp(-1.0 / max(1e-6, smoothing_s * frame_rate))
        self.match_coef = math.exp(-1.0 / (RUNNING_STATS_S * frame_rate))
        self._lock = threading.Lock()
        self._params = (params or MorphParams()).validate(channels)
        self._source = self._prepare_source(source)
        self._noise = noise_table(channels, self._params.seed)
        self.kernel = kernel
        self.reset()

    # ----------------------------------------------------------------- configuration
    def _prepare_source(self, source) -> Optional[np.ndarray]:
        if source is None:
            return None
        from .latent import Latent

        mean = source.mean if isinstance(source, Latent) else source
        if hasattr(mean, "detach"):
            mean = mean.detach().cpu().numpy()
        mean = np.asarray(mean, dtype=np.float32)
        if mean.ndim == 3:
            mean = mean[0]
        if mean.ndim != 2 or mean.shape[0] != self.channels or mean.shape[1] == 0:
            raise ConfigError(f"texture source must be a latent of {self.channels} channels "
                              f"and at least 1 frame, got shape {tuple(mean.shape)}")
        return np.ascontiguousarray(mean)

    @property
    def params(self) -> MorphParams:
        return self._params

    def set(self, **changes) -> None:
        """Change parameters (thread-safe); numeric ones glide there frame by frame. The old
        names ``structure``/``texture`` work, with a DeprecationWarning."""
        changes = rename_legacy_keys(changes, "set()", warn=True)
        with self._lock:
            merged = {**self._params.to_dict(), **changes}
            params = MorphParams.from_dict(merged).validate(self.channels)
            if params.seed != self._params.seed:
                self._noise = noise_table(self.channels, params.seed)
            self._params = params

    def set_source(self, source) -> None:
        """Swap the texture source (prepare it off the audio thread; the swap is atomic)."""
        prepared = self._prepare_source(source)
        with self._lock:
            self._source = prepared

    def _targets(self, params: MorphParams) -> np.ndarray:
        """Per-channel (mix amount, temperature, gain) targets, shape (3, C)."""
        k = self.structure_channels
        amount = np.full(self.channels, params.texture_amount, np.float32)
        amount[:k] = params.structure_amount
        temperature = np.full(self.channels, params.temperature, np.float32)
        temperature[:k] = 0.0
        gains = np.asarray(params.gains or [1.0] * self.channels, np.float32)
        return np.stack([amount, temperature, gains])

    def reset(self) -> None:
        """Back to frame 0, parameters at their targets (no glide at the start)."""
        self.frame = 0
        self._current = self._targets(self._params)  # (apply at frame 0 takes the targets anew)
        self._run_mean = None
        self._run_var = None

    # ----------------------------------------------------------------- processing
    def _source_frames(self, source: np.ndarray, mode: str, start: int, n: int,
                       mean: np.ndarray) -> np.ndarray:
        """(C, n) source frames for frames start..start+n-1 ((batch, C, n) for 'match')."""
        idx = np.arange(start, start + n)
        if mode == "loop":
            return source[:, idx % source.shape[1]]
        if mode == "hold":
            return source[:, np.minimum(idx, source.shape[1] - 1)]
        if mode == "mean":
            return np.repeat(source.mean(axis=1, keepdims=True), n, axis=1)
        return self._matched(mean, source)

    def _matched(self, mean: np.ndarray, source: np.ndarray) -> np.ndarray:
        """'match': the input's frames normalised by causal running statistics, rescaled to the
        source's per-channel mean and deviation."""
        src_mean = source.mean(axis=1)
        src_std = source.std(axis=1) + 1e-3
        out = np.empty_like(mean)
        c = self.match_coef
        for i in range(mean.shape[-1]):
            frame = mean[..., i]
            if self._run_mean is None:
                self._run_mean = frame.copy()
                self._run_var = np.ones_like(frame)
            else:
                self._run_mean = c * self._run_mean + (1 - c) * frame
                self._run_var = c * self._run_var + (1 - c) * (frame - self._run_mean) ** 2
            out[..., i] = ((frame - self._run_mean) / np.sqrt(self._run_var + 1e-4)
                           * src_std + src_mean)
        return out

    def apply(self, mean: np.ndarray, logsigma: Optional[np.ndarray] = None) -> np.ndarray:
        """Morph the next frames: mean/logsigma (batch, C, n) -> z (batch, C, n)."""
        n = mean.shape[-1]
        if n == 0:
            return mean
        with self._lock:
            params, source, noise = self._params, self._source, self._noise
        targets = self._targets(params)
        # per-frame smoothed (amount, temperature, gain): (3, C, n)
        schedule = np.empty((3, self.channels, n), np.float32)
        # at frame 0 nothing has sounded yet: targets set after reset() apply without a glide
        current = self._current if self.frame > 0 else targets
        for i in range(n):
            current = self.coef * current + (1.0 - self.coef) * targets
            schedule[..., i] = current
        self._current = current
        amount, temperature, gain = schedule
        if self.kernel is not None:
            z = self._apply_kernel(mean, logsigma, schedule, source, params.mode, noise)
        else:
            z = mean.astype(np.float32, copy=True)
            if logsigma is not None and np.any(temperature > 0):
                idx = np.arange(self.frame, self.frame + n) % NOISE_FRAMES
                z += temperature * np.exp(logsigma) * noise[:, idx]
            if source is not None:
                src = self._source_frames(source, params.mode, self.frame, n, mean)
                z = (1.0 - amount) * z + amount * src
            z = z * gain
        self.frame += n
        return z

    def _apply_kernel(self, mean, logsigma, schedule, source, mode, noise) -> np.ndarray:
        """The frames through ``kernel``: the per-channel schedule becomes the graph's
        per-frame controls (structure amount, texture amount, temperature), the channels of
        each group being equal; amounts 0 and a zero source when there is none."""
        n, k, c = mean.shape[-1], self.structure_channels, self.channels
        amount, temperature, gain = schedule
        controls = np.zeros((3, n), np.float32)
        if source is not None:
            src = self._source_frames(source, mode, self.frame, n, mean)
            src = src[None] if src.ndim == 2 else src
            controls[0] = amount[0] if k > 0 else 0.0
            controls[1] = amount[k] if k < c else 0.0
        else:
            src = np.zeros((1, c, n), np.float32)
        if logsigma is not None and k < c:
            controls[2] = temperature[k]
        else:
            logsigma = np.zeros_like(mean, dtype=np.float32)
        return self.kernel(mean, logsigma, src, controls, gain, self.frame, noise)


def _encode_mono(model, audio: np.ndarray):
    """(1, samples) float32 at the model's rate -> its ``Latent``."""
    return model.encode(np.ascontiguousarray(audio[None]))


def texture_from_file(model, path):
    """A texture source: the ``Latent`` of an audio file (its channels averaged to mono), for
    any model (``star_plugin.backend.open_model``)."""
    from .audio import load_for_model
    from .backend import open_model
    from .errors import AudioFileError

    model = open_model(model)
    audio, _ = load_for_model(path, model.sample_rate, 1)
    if audio.shape[-1] == 0:
        raise AudioFileError(f"texture file '{path}' has no samples")
    return _encode_mono(model, audio)


def texture_from_audio(model, audio, sample_rate: int):
    """A texture source: the ``Latent`` of audio (numpy or torch, 1-D mono or (channels,
    samples), any float or integer PCM dtype) at ``sample_rate``, averaged to mono."""
    from .audio import as_channels_first, conform
    from .backend import open_model
    from .guard import as_float_pcm, clean_block

    model = open_model(model)
    if hasattr(audio, "detach"):
        audio = audio.detach().cpu().numpy()
    try:
        x = as_channels_first(as_float_pcm(np.asarray(audio), "texture_source"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"texture_source: {exc}") from None
    if x.shape[1] == 0:
        raise ConfigError("texture_source audio has no samples")
    x, _ = clean_block(x)
    return _encode_mono(model, conform(x, int(sample_rate), model.sample_rate, 1))


def texture_source_latent(model, source, sample_rate: Optional[int] = None):
    """What a ``texture_source`` argument names, as the latent the morph moves towards.

    ``source``: None (no source), an audio file path, a ``Latent`` (used as is), audio as a
    numpy array or torch tensor, 1-D or (channels, samples), at ``sample_rate`` (the caller's
    rate; the model's when None), or an ``(audio, rate)`` pair. Encoding happens here, once,
    never on the audio thread."""
    from .latent import Latent

    if source is None or isinstance(source, Latent):
        return source
    if isinstance(source, (str, os.PathLike)):
        return texture_from_file(model, source)
    if isinstance(source, tuple) and len(source) == 2:
        audio, rate = source
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ConfigError(f"texture_source (audio, rate): rate must be a positive integer, "
                              f"got {rate!r}")
        return texture_from_audio(model, audio, int(rate))
    if isinstance(source, np.ndarray) or hasattr(source, "detach"):
        if np.ndim(source) not in (1, 2):
            raise ConfigError(f"texture_source audio must be 1-D or (channels, samples), got "
                              f"shape {tuple(np.shape(source))}; pass latent frames as a "
                              "Latent")
        return texture_from_audio(model, source, sample_rate or int(model.sample_rate))
    raise ConfigError(f"texture_source must be a file path, audio (numpy/torch), an (audio, "
                      f"rate) pair or a Latent, got {type(source).__name__}")


def resolve_texture_source(model, texture_source, texture, sample_rate: Optional[int],
                           where: str):
    """``texture_source`` as a latent, or the deprecated ``texture=`` keyword in its old
    meaning (latent frames as an array or tensor; a ``Latent``; a file path), with a
    DeprecationWarning."""
    if texture is None:
        return texture_source_latent(model, texture_source, sample_rate)
    warnings.warn(f"{where}(texture=...) is deprecated; use texture_source= (a file path, "
                  "audio, or a Latent)", DeprecationWarning, stacklevel=3)
    if texture_source is not None:
        raise ConfigError(f"{where}: give texture_source or the deprecated texture, not both")
    if isinstance(texture, np.ndarray) or hasattr(texture, "detach"):
        return latent_from_frames(model, texture)  # latent frames, as 'texture' meant
    return texture_source_latent(model, texture, sample_rate)


def latent_from_frames(model, frames):
    """Raw latent frames ((C, n) or (1, C, n), numpy or torch) as a ``Latent`` of ``model``
    (to give made-up or edited frames as a ``texture_source``)."""
    import torch

    from .backend import open_model
    from .latent import Latent

    model = open_model(model)
    mean = torch.as_tensor(np.asarray(frames.detach().cpu() if hasattr(frames, "detach")
                                      else frames, dtype=np.float32))
    if mean.dim() == 2:
        mean = mean[None]
    channels = model.latent_channels
    if mean.dim() != 3 or mean.shape[1] != channels or mean.shape[2] == 0:
        raise ConfigError(f"texture source must be a latent of {channels} channels and at "
                          f"least 1 frame, got shape {tuple(mean.shape)}")
    return Latent(mean[:1], None, model.structure_channels, model.sample_rate, model.hop)
