"""Procedural audio clips (numpy only): plucks, bowed/blown tones, chords, drums, noises.

Used for quick training runs, the bundled example clips and tests. Every clip is a pure
function of its seed. The captioned corpus of real recordings is built separately.
"""
from __future__ import annotations

import numpy as np

KINDS = ("pluck", "tone", "chord", "drums", "noise", "sweep")


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _envelope(n: int, sr: int, attack: float, decay: float, sustain: float, release: float):
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / max(attack, 1e-4))
    env *= sustain + (1 - sustain) * np.exp(-np.maximum(t - attack, 0) / max(decay, 1e-3))
    tail = max(0.0, n / sr - release)
    env *= np.clip(1 - (t - tail) / max(release, 1e-3), 0, 1)
    return env


def _harmonic(freq: float, n: int, sr: int, rng, brightness: float) -> np.ndarray:
    t = np.arange(n) / sr
    out = np.zeros(n)
    vibrato = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(4, 6) * t) * rng.uniform(0, 1)
    phase = 2 * np.pi * freq * np.cumsum(vibrato) / sr
    for k in range(1, 40):
        if k * freq > sr / 2.2:
            break
        out += (k ** -brightness) * rng.uniform(0.5, 1.0) * np.sin(k * phase + rng.uniform(0, 6.28))
    return out


def _pluck(freq: float, n: int, sr: int, rng) -> np.ndarray:
    """Karplus-Strong string, one period per step (vectorised)."""
    period = max(2, int(round(sr / freq)))
    buf = rng.uniform(-1, 1, period)
    damp = rng.uniform(0.985, 0.998)
    blocks = []
    for _ in range(-(-n // period)):
        blocks.append(buf)
        buf = damp * 0.5 * (buf + np.roll(buf, -1))
    return np.concatenate(blocks)[:n]


def _notes(rng, n: int, sr: int, count: int):
    """Evenly spaced note onsets (with a little jitter) on a major scale."""
    step = n / count
    starts = [int(max(0, i * step + rng.uniform(-0.1, 0.1) * step)) for i in range(count)]
    base = rng.integers(40, 76)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    return [(s, base + int(rng.choice(scale))) for s in starts]


def _colored_noise(n: int, rng, tilt: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size) + 1.0
    return np.fft.irfft(spec * f ** (-tilt), n)


def synth_clip(seed: int, seconds: float = 2.0, sample_rate: int = 44100, kind: str = None):
    """One clip (1, samples) float32 in [-1, 1] and its kind."""
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    n = int(seconds * sample_rate)
    sr = sample_rate
    x = np.zeros(n)
    if kind in ("pluck", "tone"):
        for start, note in _notes(rng, n, sr, int(rng.integers(2, 7))):
            length = n - start
            f = _midi_hz(note)
            if kind == "pluck":
                seg = _pluck(f, min(length, sr), sr, rng)
            else:
                seg = _harmonic(f, min(length, sr), sr, rng, rng.uniform(0.8, 2.5))
                seg *= _envelope(seg.size, sr, rng.uniform(0.01, 0.15), 0.4, 0.6, 0.1)
            x[start:start + seg.size] += seg
    elif kind == "chord":
        root = int(rng.integers(40, 64))
        shapes = ([0, 4, 7], [0, 3, 7], [0, 4, 7, 11], [0, 5, 7])
        for interval in shapes[int(rng.integers(len(shapes)))]:
            x += _harmonic(_midi_hz(root + interval), n, sr, rng, rng.uniform(1.0, 2.0))
        x *= _envelope(n, sr, rng.uniform(0.01, 0.5), 1.0, 0.7, 0.3)
    elif kind == "drums":
        step = int(sr * rng.uniform(0.12, 0.25))
        for i, start in enumerate(range(0, n, step)):
            length = min(n - start, sr // 3)
            t = np.arange(length) / sr
            if i % 4 == 0:  # kick: falling sine
                seg = np.sin(2 * np.pi * (50 + 120 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
            elif i % 4 == 2:  # snare: noise + tone
                seg = (rng.standard_normal(length) * 0.6 + np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 20)
            else:  # hat: high-passed noise
                seg = np.diff(rng.standard_normal(length + 1)) * np.exp(-t * 60) * 0.5
            x[start:start + length] += seg
    elif kind == "noise":
        x = _colored_noise(n, rng, rng.uniform(0.0, 1.5))
        x *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3) * np.arange(n) / sr)
    else:  # sweep
        t = np.arange(n) / sr
        f0, f1 = rng.uniform(60, 400), rng.uniform(800, 6000)
        if rng.uniform() < 0.5:
            f0, f1 = f1, f0
        freq = f0 * (f1 / f0) ** (t / t[-1])
        x = np.sin(2 * np.pi * np.cumsum(freq) / sr) + 0.05 * rng.standard_normal(n)
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak * rng.uniform(0.3, 0.9)
    return x[None, :].astype(np.float32), kind
