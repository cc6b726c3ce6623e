"""The streaming boundary guard: what every block passes before it reaches a model's state.

One bad block (a NaN or Inf sample, or finite values like 1e20 that overflow inside the model)
would otherwise poison the recurrent state and every later block until a reset. At the
outermost boundary of each stream samples are therefore cleaned, once: ``StarChain`` (its
entry), ``StreamingEngine.process`` (also for ``StarEffect`` and ``ThreadedEngine``), and a
model's own ``stream`` / ``streamer().process`` when a host drives the model directly. The
engine's inner calls (a streamer's ``encode`` / ``decode``, ``stream_posterior``) do not guard
again. Samples are:

* integer PCM -> float32 in [-1, 1] (int8/16/32 divided by 2**(bits-1), uint8 offset), as
  ``audio.as_channels_first`` does for files;
* NaN and +-Inf -> 0;
* clamped to +-``SAMPLE_LIMIT`` (1e4, i.e. +80 dBFS). Float audio legitimately exceeds 1.0
  after gain stages, so the limit is far above any real signal, yet low enough that the
  model's convolutions and scans stay well inside float32's range (measured: a block at the
  limit followed by clean audio gives finite output that recovers once the state decays).

The check is one pass (``max(abs(x))``, which is NaN when any sample is NaN) and copies only
when something needs fixing. Warnings are given once per guard (``BlockGuard``: per engine,
model or chain), never per block, and never with file I/O on the audio thread beyond that
first one.
"""
from __future__ import annotations

import warnings

import numpy as np

#: Largest sample magnitude allowed past a streaming boundary (+80 dBFS).
SAMPLE_LIMIT = 1e4

#: Largest buffer handed to Pedalboard: it crashes (segfault) on huge buffers such as 1e8,
#: and nothing gains from blocks beyond ~1.5 s at 44.1 kHz. (Here, not in effects.py, so the
#: CLI can check it without importing torch.)
MAX_BUFFER_SIZE = 65536

#: Host rates the command line and the engine accept, in Hz (checked before any loading).
MIN_RATE, MAX_RATE = 8000, 384000


class BlockSanitizedWarning(UserWarning):
    """A streamed block held NaN/Inf or out-of-range samples; they were replaced."""


def as_float_pcm(x, what: str = "block") -> np.ndarray:
    """``x`` as a float32 numpy array; integer PCM scaled to [-1, 1], other dtypes refused."""
    arr = np.asarray(x)
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        return arr.astype(np.float32, copy=False)
    if kind == "i" and size in (1, 2, 4):
        return arr.astype(np.float32) / np.float32(2 ** (8 * size - 1))
    if kind == "u" and size == 1:
        return (arr.astype(np.float32) - 128.0) / np.float32(128.0)
    raise ValueError(f"{what} has dtype {arr.dtype}; give float audio, or integer PCM "
                     "int8/uint8/int16/int32")


def clean_block(x: np.ndarray, limit: float = SAMPLE_LIMIT):
    """-> (x, 0) when every sample is finite and within +-limit, else (a cleaned copy, the
    number of samples replaced or clamped)."""
    if x.size == 0:
        return x, 0
    peak = float(np.max(np.abs(x)))
    if peak <= limit:  # False for NaN: the slow path below handles it
        return x, 0
    bad = ~np.isfinite(x) | (np.abs(x) > limit)
    fixed = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(fixed, -limit, limit, out=fixed)
    return fixed.astype(np.float32, copy=False), int(np.count_nonzero(bad))


def clean_tensor(x, limit: float = SAMPLE_LIMIT):
    """``clean_block`` for a torch tensor (float tensors only; cast first)."""
    if x.numel() == 0:
        return x, 0
    peak = float(x.detach().abs().max())
    if peak <= limit:
        return x, 0
    bad = int((~x.isfinite() | (x.abs() > limit)).sum())
    return x.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0).clamp(-limit, limit), bad


class OnceWarner:
    """Warns the first time a guard fixes samples; later fixes are only counted."""

    def __init__(self, where: str):
        self.where = where
        self.fixed = 0  # samples replaced or clamped since construction

    def report(self, count: int) -> None:
        """Count ``count`` fixed samples; warn only on the first fix."""
        if not count:
            return
        first = self.fixed == 0
        self.fixed += count
        if first:
            warnings.warn(f"{self.where}: replaced {count} NaN/Inf or out-of-range samples "
                          f"(|x| > {SAMPLE_LIMIT:g}) with 0 or the limit; later ones are "
                          "counted, not reported", BlockSanitizedWarning, stacklevel=3)


class BlockGuard:
    """The guard of one streaming boundary: ``guard(block)`` -> the block with NaN/Inf -> 0 and
    |x| clamped to ``SAMPLE_LIMIT`` (numpy arrays and torch tensors alike), warned once.
    ``fixed`` counts the samples replaced or clamped since construction."""

    def __init__(self, where: str):
        self._warner = OnceWarner(where)

    @property
    def fixed(self) -> int:
        return self._warner.fixed

    def __call__(self, block):
        clean = clean_tensor if hasattr(block, "detach") else clean_block
        block, fixed = clean(block)
        if fixed:
            self._warner.report(fixed)
        return block


# ----------------------------------------------------------------------------- offline calls
# The same rule for a whole signal handed to a model's offline ``encode`` (as the CLI applies
# to files): cleaned with a warning; and a latent handed to ``decode`` must be finite (there
# is no "right" value to put in place of a NaN latent).

def guard_offline_audio(x, where: str):
    """``x`` (numpy or torch, (..., samples)) with NaN/Inf -> 0 and |x| clamped to the limit,
    warned per call; no samples at all is a ValueError."""
    if x.shape[-1] == 0:
        raise ValueError(f"{where}: audio has no samples (shape {tuple(x.shape)})")
    clean = clean_tensor if hasattr(x, "detach") else clean_block
    x, fixed = clean(x)
    if fixed:
        warnings.warn(f"{where}: replaced {fixed} NaN/Inf or out-of-range samples (|x| > "
                      f"{SAMPLE_LIMIT:g}) with 0 or the limit", BlockSanitizedWarning,
                      stacklevel=3)
    return x


def refuse_nonfinite_latent(z, where: str) -> None:
    """A ValueError when the latent frames ``z`` (numpy or torch) hold NaN/Inf."""
    import math

    if hasattr(z, "detach"):
        bad = int((~z.detach().isfinite()).sum()) if z.is_floating_point() else 0
    else:
        arr = np.asarray(z)
        bad = int(np.count_nonzero(~np.isfinite(arr))) if arr.dtype.kind == "f" else 0
    if bad:
        raise ValueError(f"{where}: the latent holds {bad} NaN/Inf values (of "
                         f"{math.prod(tuple(z.shape))}); decode needs finite frames")
