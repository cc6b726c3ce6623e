"""What a chain stage's parameters may be: checked when the chain is built, before any audio
is read.

Pedalboard range-checks some parameters itself (``Delay``, ``PitchShift``, ``Reverb``,
``Bitcrush`` ...) and takes any float for others, some of which hang or never return audio
(``Resample(target_sample_rate=1e9)`` ran for minutes, ``=1`` holds every sample back) or
turn a signal into Inf. The ranges below close those, by parameter name (one meaning per
name across Pedalboard's built-ins); they are wide enough for any musical setting. External
plugins (VST3, AU) check their own parameters.
"""
from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Dict

from .errors import ConfigError
from .guard import MAX_RATE

_DB = (-200.0, 200.0)  # +200 dB on a sample at the guard's 1e4 is still a finite float32
_HZ = (1e-3, MAX_RATE / 2)

#: parameter name -> (lowest, highest) accepted, for Pedalboard's built-in plugins.
RANGES: Dict[str, tuple] = {
    "gain_db": _DB, "drive_db": _DB, "threshold_db": _DB, "ceiling_db": _DB,
    "cutoff_frequency_hz": _HZ, "cutoff_hz": _HZ, "centre_frequency_hz": _HZ,
    "q": (1e-3, 1000.0),
    "attack_ms": (0.0, 60000.0), "release_ms": (0.0, 60000.0),
    "centre_delay_ms": (1.0, 100.0),  # JUCE's chorus asserts 1..100 ms
    "rate_hz": (0.0, 99.0),           # JUCE's chorus and phaser: below 100 Hz
    "depth": (0.0, 1.0), "mix": (0.0, 1.0), "feedback": (-1.0, 1.0), "resonance": (0.0, 1.0),
    "drive": (1.0, 1000.0), "ratio": (1.0, 1000.0),
    # below ~10 Hz the resampler holds back more audio than a file has; above the CLI's
    # highest rate it hangs (1e9: minutes per second of audio)
    "target_sample_rate": (100.0, float(MAX_RATE)),
}


def check_ranges(params: Dict[str, object], where: str) -> None:
    """Every known numeric parameter inside its range (a finite number)."""
    for key, value in params.items():
        bounds = RANGES.get(key)
        if bounds is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high = bounds
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"{where}: {key}={value:g} is outside {low:g}..{high:g}")


def refuse_booleans(given: Dict[str, object], current: Dict[str, object], where: str) -> None:
    """``Gain(gain_db=True)`` ran as 1 dB: a boolean is not a number (as in ``MorphParams``);
    only a parameter that is itself a switch takes one."""
    for key, value in given.items():
        if isinstance(value, bool) and not isinstance(current.get(key), bool):
            raise ConfigError(f"{where}: {key}={value} is a boolean; give a number")


def check_impulse_response(path, where: str) -> None:
    """A Convolution's impulse response must be audio with samples: Pedalboard took
    '/etc/passwd' and returned the dry signal."""
    if path is None:  # given as an array
        return
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{where}: impulse response '{path}': {exc.strerror}") from None
    problem = _impulse_problem(os.fspath(path), stat.st_mtime_ns, stat.st_size)
    if problem:
        raise ConfigError(f"{where}: impulse response '{path}' {problem}")


@lru_cache(maxsize=64)
def _impulse_problem(path: str, mtime_ns: int, size: int) -> str:
    """'' when the file is usable (cached per version of the file: a chain is re-checked
    whenever a stage is added)."""
    from .audio import read_audio
    from .errors import StarError

    try:
        audio, _ = read_audio(path)
    except StarError as exc:
        reason = str(exc).split(": ", 1)[-1].split(" (soundfile:")[0]
        return f"is not audio ({reason})"
    if audio.shape[1] == 0:
        return "has no samples"
    return ""
