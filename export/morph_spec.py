"""What the exported ``morph`` graph (``graphs.MorphGraph``) and its hosts agree on: the input
names and the temperature's noise table. Numpy only, so ``star_plugin.morph`` imports it
without torch, and the exporter writes the same table the Python morph draws from.
"""
from __future__ import annotations

import numpy as np

NOISE_FRAMES = 4096  # columns of the noise table; frame i uses column i mod NOISE_FRAMES
INPUTS = ["mean", "logsigma", "source", "controls", "gain", "first_frame"]
NOISE_INPUT = "noise_table"  # an overridable initializer: the table of seed 0 by default
OUTPUTS = ["z"]
SMOOTHING_S = 0.05  # the per-frame one-pole smoothing of the controls (time constant)


def noise_table(channels: int, seed: int) -> np.ndarray:
    """(channels, NOISE_FRAMES) float32 standard-normal draws of ``seed``."""
    return np.random.default_rng(seed).standard_normal(
        (channels, NOISE_FRAMES)).astype(np.float32)
