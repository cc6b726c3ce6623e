"""A model's tail: how long its output keeps moving after the input stops, beyond the latency.

Hosts ask plugins for this (VST3 ``getTailSamples``, CLAP ``clap.tail``) to know how long to
keep processing after the last region ends; the latency is reported separately and the host
compensates it. The decoder's recurrent state and its overlap-add carry sound past the input's
end, so the tail is measured, once, when a model is exported (``manifest.json``'s
``model.tail_samples``, at the model's rate), not guessed.

The measurement streams a second of seeded noise followed by silence, and silence alone (a
trained decoder need not be silent on silence), and finds the last sample where the two
streams differ by more than ``floor_db`` relative to the noisy stream's peak. The tail is the
distance from the input's end to that sample, rounded up to whole hops, plus one hop (the
offline render it uses and the stream differ in float rounding near the floor).
"""
from __future__ import annotations

import numpy as np

DRIVE_SECONDS = 1.0
MAX_SECONDS = 8.0
FLOOR_DB = -80.0


def _render(model, x: np.ndarray) -> np.ndarray:
    """(n,) float32 through the model offline (encode's mean, decode), the same signal in each
    of its audio channels: (channels, n). A causal model's bounce equals its stream, and output
    index k is the host's output at time k + latency."""
    import torch

    channels = int(model.config.audio_channels)
    audio = torch.from_numpy(np.ascontiguousarray(np.tile(x, (1, channels, 1))))
    with torch.inference_mode():
        latent = model.encode(audio)
        return model.decode(latent.mean, num_samples=x.size)[0].numpy()


def measure_tail_samples(model, max_seconds: float = MAX_SECONDS,
                         floor_db: float = FLOOR_DB) -> int:
    """The tail of ``model`` (a StarVAE, or an AudioModel with encode/decode) in samples at
    the model's rate (a multiple of its hop; the cap, ``max_seconds``
    rounded to hops, when the output has not settled by then)."""
    rate, hop = int(model.sample_rate), int(model.hop)
    drive = int(DRIVE_SECONDS * rate)
    total = drive + int(max_seconds * rate)
    noise = np.random.default_rng(0).standard_normal(drive).astype(np.float32)
    x = np.zeros(total, np.float32)
    x[:drive] = np.clip(0.3 * noise, -1.0, 1.0)
    driven, silent = _render(model, x), _render(model, np.zeros(total, np.float32))
    n = min(driven.shape[-1], silent.shape[-1])
    moving = (np.abs(driven[:, :n] - silent[:, :n]) > 10 ** (floor_db / 20) * max(
        float(np.abs(driven).max()), 1e-9)).any(axis=0)
    last = int(np.flatnonzero(moving)[-1]) if moving.any() else 0
    tail = max(0, last + 1 - drive)
    return min(-(-tail // hop) * hop + hop, -(-int(max_seconds * rate) // hop) * hop)
