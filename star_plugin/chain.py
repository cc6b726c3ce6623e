"""Effect chains that mix Pedalboard plugins (built-in, VST3, AU) with STAR effects.

A ``pedalboard.Pedalboard`` only holds C++ plugins, so ``StarChain`` is the container: runs
of consecutive Pedalboard plugins are processed as one ``Pedalboard`` (one native call), STAR
effects between them. It has the Pedalboard calling convention,
``chain(audio, sample_rate, buffer_size=8192, reset=True)``.

Chains can be written as text, one stage per ``|``, each stage a call with literal
arguments::

    HighpassFilter(cutoff_frequency_hz=80) | star(preset="texture-blend") | Reverb(room_size=0.3)

``star(...)`` takes morph parameters, ``preset`` and ``texture_file``; ``plugin("path.vst3", param=value)``
loads an external plugin; any other name is a Pedalboard built-in (case-insensitive).
``to_dict``/``from_dict`` give the same chain as JSON data.
"""
from __future__ import annotations

import ast
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .effects import PedalboardConvention, StarEffect, check_buffer_size
from .errors import ConfigError, StarError
from .morph import MorphParams

CHAIN_FORMAT_VERSION = 1
FLUSH_LIMIT_S = 60.0  # most silence fed to push out a chain's tail (a PitchShift needs ~0.1 s)


def _pedalboard():
    import pedalboard

    return pedalboard


def builtin_plugins() -> Dict[str, type]:
    """Lower-case name -> Pedalboard built-in plugin class."""
    pb = _pedalboard()
    skip = {"Plugin", "PluginContainer", "Pedalboard", "Chain", "Mix", "ExternalPlugin",
            "VST3Plugin", "AudioUnitPlugin"}
    return {name.lower(): cls for name, cls in vars(pb).items()
            if isinstance(cls, type) and issubclass(cls, pb.Plugin) and name not in skip
            and not name.startswith("_")}


def plugin_parameters(plugin) -> Dict[str, object]:
    """The current, settable parameters of a Pedalboard plugin as plain values."""
    pb = _pedalboard()
    if isinstance(plugin, pb.ExternalPlugin):
        return {name: getattr(plugin, name) for name in plugin.parameters}
    values = {}
    for name, attr in vars(type(plugin)).items():
        if isinstance(attr, property) and attr.fset is not None:
            value = getattr(plugin, name)
            if isinstance(value, (bool, int, float, str)):
                values[name] = value
    return values


def _set_parameters(plugin, params: Dict[str, object], where: str) -> None:
    known = plugin_parameters(plugin)
    for key, value in params.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown parameter {key!r}; it has "
                              f"{', '.join(sorted(known)) or 'none'}")
        try:
            setattr(plugin, key, value)
        except Exception as exc:  # pedalboard's range checks
            raise ConfigError(f"{where}: {key}={value!r} is not accepted ({exc})") from None


def _make_builtin(cls, params: Dict[str, object], where: str):
    try:
        plugin = cls()
    except Exception:  # it has required arguments (Convolution's impulse response file)
        try:
            return cls(**params)
        except Exception:
            usage = (cls.__init__.__doc__ or "").strip().splitlines()[0]
            args = usage.split("(", 1)[-1].rsplit(")", 1)[0].split(", ", 1)[-1]
            raise ConfigError(f"{where}: missing or wrong arguments; it takes {args}") from None
    _set_parameters(plugin, params, where)
    return plugin


Stage = Union["StarEffect", object]


class _PedalboardSegment:
    """A ``pedalboard.Pedalboard`` streamed so that it gives what a one-shot call gives.

    Two Pedalboard behaviours are worked around (both measured, pedalboard 0.9):
    * a streaming call with more samples than any earlier call since the reset re-prepares
      the plugins, which clears their state (a filter or reverb restarts mid-stream); so the
      board is always fed whole ``buffer_size`` chunks, and the remainder waits for the next
      call (aligned streaming output just arrives a little later);
    * the layout is guessed from the smaller dimension, so a block with no more samples than
      channels would be misread; chunks are longer than the channel count.
    """

    def __init__(self, board):
        self.board = board
        self._held = None

    def reset(self) -> None:
        self.board.reset()
        self._held = None

    def process_channels_first(self, x, sample_rate, buffer_size, reset=False):
        """Streaming only: the chain makes one-shot calls out of streaming ones."""
        assert not reset
        channels = x.shape[0]
        chunk = max(buffer_size, channels + 1)
        if self._held is not None and self._held.shape[1]:
            x = np.concatenate([self._held, x], axis=1)
        whole = x.shape[1] // chunk * chunk
        self._held = x[:, whole:].copy()
        if whole == 0:
            return x[:, :0]
        y = self.board(x[:, :whole], sample_rate, buffer_size=chunk, reset=False)
        return np.asarray(y, np.float32).reshape(channels, -1)


class StarChain(PedalboardConvention):
    """An ordered list of Pedalboard plugins and STAR effects, processed in sequence."""

    def __init__(self, stages: Sequence[Stage] = ()):
        pb = _pedalboard()
        self.stages: List[Stage] = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, (StarEffect, pb.Plugin)):
                raise ConfigError(f"chain stage {i + 1} is a {type(stage).__name__}; stages must be "
                                  "Pedalboard plugins or StarEffects")
            self.stages.append(stage)
        self._segments = self._group()

    def _group(self) -> list:
        """Runs of consecutive Pedalboard plugins become one Pedalboard (one native call)."""
        pb = _pedalboard()
        segments, run = [], []
        for stage in self.stages:
            if isinstance(stage, StarEffect):
                if run:
                    segments.append(_PedalboardSegment(pb.Pedalboard(run)))
                    run = []
                segments.append(stage)
            else:
                run.append(stage)
        if run:
            segments.append(_PedalboardSegment(pb.Pedalboard(run)))
        return segments

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, i):
        return self.stages[i]

    def __repr__(self) -> str:
        return "StarChain([" + ", ".join(repr(s) for s in self.stages) + "])"

    def star_effects(self) -> List[StarEffect]:
        return [s for s in self.stages if isinstance(s, StarEffect)]

    # ----------------------------------------------------------------- processing
    def process_channels_first(self, x: np.ndarray, sample_rate: float,
                               buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        """Pedalboard's convention on (channels, n) float32. ``reset=True``: from silence, the
        full length, aligned (made of the streaming calls below plus ``drain``, so a one-shot
        render equals a streamed one exactly). ``reset=False``: streaming, aligned, so early
        calls return fewer samples while latencies fill. NaN/Inf input becomes silence."""
        check_buffer_size(buffer_size)
        x = np.asarray(x, np.float32)
        if x.ndim != 2:
            raise ValueError(f"audio must be (channels, samples), got shape {x.shape}")
        if not np.isfinite(x).all():
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        if not reset:
            return self._stream(x, sample_rate, buffer_size)
        self.reset()
        out = self._stream(x, sample_rate, buffer_size)
        out = np.concatenate([out, self.drain(x.shape[1] - out.shape[1], x.shape[0],
                                              sample_rate, buffer_size)], axis=1)
        self.reset()
        return np.ascontiguousarray(out[:, :x.shape[1]])

    def _stream(self, x, sample_rate, buffer_size) -> np.ndarray:
        for segment in self._segments:  # StarEffects and _PedalboardSegments
            x = segment.process_channels_first(x, sample_rate, buffer_size, reset=False)
        return np.ascontiguousarray(x)

    def drain(self, count: int, channels: int, sample_rate: float,
              buffer_size: int = 8192) -> np.ndarray:
        """End of a stream: feed silence until ``count`` more samples came out (the audio
        held inside by latencies); returns exactly (channels, max(count, 0))."""
        outs, got, fed = [], 0, 0
        silence = np.zeros((channels, max(buffer_size, 1024)), np.float32)
        while got < count:
            if fed > FLUSH_LIMIT_S * sample_rate:
                raise StarError(f"the chain held back more than {FLUSH_LIMIT_S:.0f} s of "
                                "audio; does one of its plugins never return output?")
            y = self._stream(silence, sample_rate, buffer_size)
            outs.append(y)
            got += y.shape[1]
            fed += silence.shape[1]
        out = np.concatenate(outs, axis=1) if outs else np.zeros((channels, 0), np.float32)
        return out[:, :max(count, 0)]

    def reset(self) -> None:
        for segment in self._segments:
            segment.reset()

    # ----------------------------------------------------------------- text and data forms
    @classmethod
    def from_spec(cls, spec: str, model="default", backend: str = "auto") -> "StarChain":
        """Parse ``"Name(k=v, ...) | star(...) | ..."`` (see the module docstring)."""
        if not spec or not spec.strip():
            raise ConfigError("chain spec is empty; write stages like "
                              "'HighpassFilter(cutoff_frequency_hz=80) | star(texture=0.8)'")
        entries = []
        for i, text in enumerate(s.strip() for s in spec.split("|")):
            where = f"chain stage {i + 1} '{text}'"
            try:
                node = ast.parse(text if "(" in text else text + "()", mode="eval").body
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                    raise ValueError("not a call")
                args = [ast.literal_eval(a) for a in node.args]
                params = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            except (SyntaxError, ValueError) as exc:
                raise ConfigError(f"{where}: write it as Name(param=value, ...) with literal "
                                  f"values ({exc})") from None
            if None in params:
                raise ConfigError(f"{where}: **arguments are not allowed")
            entry = {"type": node.func.id, "params": params}
            if node.func.id.lower() in ("plugin", "vst3", "au"):
                if len(args) != 1 or not isinstance(args[0], str):
                    raise ConfigError(f"{where}: give the plugin file as the first argument, "
                                      "e.g. plugin(\"/path/Effect.vst3\")")
                entry = {"type": "plugin", "path": args[0], "params": params}
            elif args:
                raise ConfigError(f"{where}: use named parameters (param=value)")
            if node.func.id.lower() == "star":
                entry = {"type": "star", "preset": params.pop("preset", None),
                         "texture": params.pop("texture_file", None), "params": params}
            entries.append(entry)
        return cls.from_dict({"format_version": CHAIN_FORMAT_VERSION, "stages": entries},
                             model=model, backend=backend)

    @classmethod
    def from_dict(cls, data: dict, model="default", backend: str = "auto") -> "StarChain":
        version = data.get("format_version", CHAIN_FORMAT_VERSION)
        if version != CHAIN_FORMAT_VERSION:
            raise ConfigError(f"chain format version {version} is not supported (this version "
                              f"reads {CHAIN_FORMAT_VERSION})")
        stages = data.get("stages")
        if not isinstance(stages, list):
            raise ConfigError("chain data needs a 'stages' list")
        builtins = builtin_plugins()
        loaded_model = None
        out = []
        for i, entry in enumerate(stages):
            kind = str(entry.get("type", ""))
            params = dict(entry.get("params") or {})
            where = f"chain stage {i + 1} ({kind or 'no type'})"
            if kind.lower() == "star":
                if loaded_model is None:  # one model (and one ONNX export) for all STAR stages
                    from .engine import _load

                    loaded_model, _ = _load(model, backend)
                preset = entry.get("preset")
                base = MorphParams()
                if preset:
                    from .morph_presets import load_preset

                    base = load_preset(preset).params
                try:
                    morph = MorphParams.from_dict({**base.to_dict(), **params})
                except (ConfigError, TypeError, ValueError) as exc:
                    raise ConfigError(f"{where}: {exc}") from None
                texture = entry.get("texture")
                if texture:
                    from .morph import texture_from_file

                    texture = texture_from_file(loaded_model, texture)
                effect = StarEffect(loaded_model, morph, texture=texture, backend=backend)
                effect.texture_file = entry.get("texture")
                effect.preset = preset
                out.append(effect)
            elif kind.lower() == "plugin":
                path = entry.get("path")
                try:
                    plugin = _pedalboard().load_plugin(str(path))
                except Exception as exc:
                    raise ConfigError(f"{where}: cannot load plugin file '{path}' ({exc})") from None
                _set_parameters(plugin, params, where)
                out.append(plugin)
            elif kind.lower() in builtins:
                out.append(_make_builtin(builtins[kind.lower()], params, where))
            else:
                raise ConfigError(f"{where}: unknown effect {kind!r}; use star, plugin(\"file\") "
                                  f"or a Pedalboard built-in: {', '.join(sorted(builtins))}")
        return cls(out)

    def to_dict(self) -> dict:
        pb = _pedalboard()
        stages = []
        for stage in self.stages:
            if isinstance(stage, StarEffect):
                stages.append({"type": "star", "preset": stage.preset,
                               "texture": stage.texture_file, "params": stage.params.to_dict()})
            elif isinstance(stage, pb.ExternalPlugin):
                stages.append({"type": "plugin", "path": getattr(stage, "path_to_plugin_file", ""),
                               "params": plugin_parameters(stage)})
            else:
                stages.append({"type": type(stage).__name__, "params": plugin_parameters(stage)})
        return {"format_version": CHAIN_FORMAT_VERSION, "stages": stages}
