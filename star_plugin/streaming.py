"""The streaming convention shared by every layer.

A streamable module computes the same function two ways:

* ``forward(x)`` — offline, on a whole sequence, starting from silence;
* ``step(x, state) -> (y, new_state)`` — on one piece of the sequence, carrying ``state``
  (convolution caches, SSM states, overlap-add tails) from the previous piece.

``step`` is a pure function: it never mutates ``state``; it returns a new one. States are
nested dicts of tensors keyed by child name, so every state has a stable dotted name
(``flatten_state``) for ONNX graphs and hosts. ``init_state(batch)`` returns the state of
silence. Feeding a sequence through ``step`` in pieces equals ``forward`` on the whole.

Two model-level rules live here too, once, for every backend (``StarVAE``, the exported
graphs, ``OnnxVAE``, the engines):

* hop framing (``hops_in``, ``frames_to_encode``, ``split_whole_hops``): a latent frame needs a
  whole hop of input; offline encoding right-pads to whole hops covering the synthesis delay;
* the latency FIFO (``latency_fifo``, ``SampleFIFO``, ``drop_leading``): the decoder's first
  ``synthesis_delay`` raw samples precede time zero and are dropped, the rest queue behind
  ``latency_samples`` of silence, and each call hands out as many samples as it took in.
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

import numpy as np
import torch
from torch import nn

State = Dict[str, Union[torch.Tensor, "State"]]


class Streamable(nn.Module):
    """Base class: stateless by default (pointwise layers stream trivially)."""

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        return {}

    def step(self, x: torch.Tensor, state: State) -> Tuple[torch.Tensor, State]:
        return self(x), state


class StreamSequential(Streamable):
    """Like nn.Sequential, streaming each child with its own named sub-state."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def init_state(self, batch, device=None, dtype=None):
        states = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Streamable):
                sub = layer.init_state(batch, device, dtype)
                if sub:
                    states[str(i)] = sub
        return states

    def step(self, x, state):
        return step_layers(self.layers, x, state)


def step_layers(layers, x, state):
    """Stream x through ``layers`` in order, layer i with sub-state ``state[str(i)]``."""
    new_state = {}
    for i, layer in enumerate(layers):
        key = str(i)
        if key in state:
            x, new_state[key] = layer.step(x, state[key])
        elif isinstance(layer, Streamable):
            x, sub = layer.step(x, {})
            if sub:
                new_state[key] = sub
        else:
            x = layer(x)
    return x, new_state


# ---------------------------------------------------------------------------- hop framing
def hops_in(samples, hop: int):
    """Whole hops in ``samples`` buffered input samples (an int, or a traced size tensor)."""
    return samples // hop


def frames_to_encode(samples, hop: int, synthesis_delay: int):
    """Latent frames an offline encode of ``samples`` samples computes: enough whole hops that
    every input sample gets a complete reconstruction (the synthesis delay is covered).
    An int, or a traced size tensor (the exported encoder graph)."""
    return (samples + synthesis_delay + hop - 1) // hop


def split_whole_hops(buffer, hop: int):
    """(whole hops, the rest) of a buffer (..., samples): what the streaming encoder runs
    now, and what waits in its pending input for the next call."""
    whole = hops_in(buffer.shape[-1], hop) * hop
    return buffer[..., :whole], buffer[..., whole:]


# ---------------------------------------------------------------------------- latency FIFO
def drop_leading(audio, remaining: int):
    """Drop up to ``remaining`` leading samples (the last axis) of a stream's raw output:
    the decoder's first synthesis-delay samples precede time zero. Returns (audio, still to
    drop); works on numpy arrays and torch tensors alike."""
    dropped = min(int(remaining), audio.shape[-1])
    return audio[..., dropped:], int(remaining) - dropped


def latency_fifo(queue, raw, n: int, skip: int):
    """One streaming call's output, as a pure function (numpy or torch, (..., samples)).

    ``raw``: the decoder's raw output of this call; its first ``skip`` samples (of the
    synthesis delay still to drop) are dropped, the rest queue behind ``queue`` (primed with
    ``latency_samples`` of silence by ``init_state``), and the oldest ``n`` samples go out.
    -> (out, new queue, skip still to drop)."""
    raw, skip = drop_leading(raw, skip)
    if isinstance(queue, torch.Tensor):
        queue = torch.cat([queue, raw], dim=-1)
    else:
        queue = np.concatenate([queue, raw], axis=-1)
    return queue[..., :n], queue[..., n:], skip


class SampleFIFO:
    """(channels, n) float32 sample queue over one preallocated buffer, primed with silence:
    the engines' output (and dry) delay lines. Grows only for unusually large pushes;
    ``pop`` never fails: a shortfall is filled with silence and reported, so the caller can
    count it."""

    def __init__(self, channels: int, capacity: int, primed: int):
        self._buf = np.zeros((channels, max(capacity, primed)), np.float32)
        self._len = primed

    def __len__(self) -> int:
        return self._len

    def push(self, y: np.ndarray) -> None:
        k = y.shape[1]
        if self._len + k > self._buf.shape[1]:
            grown = np.zeros((self._buf.shape[0], 2 * (self._len + k)), np.float32)
            grown[:, :self._len] = self._buf[:, :self._len]
            self._buf = grown
        self._buf[:, self._len:self._len + k] = y
        self._len += k

    def pop(self, n: int) -> Tuple[np.ndarray, int]:
        """-> (the oldest n samples, how many of them were missing and are silence)."""
        short = max(0, n - self._len)
        if short:
            self._buf[:, self._len:n] = 0.0
            self._len = n
        out = self._buf[:, :n].copy()
        remaining = self._len - n
        self._buf[:, :remaining] = self._buf[:, n:self._len]
        self._len = remaining
        return out, short


# ---------------------------------------------------------------------------- state names
def flatten_state(state: State, prefix: str = "") -> Dict[str, torch.Tensor]:
    """Nested state -> {"dotted.name": tensor}, in a deterministic order."""
    flat = {}
    for key in state:
        name = f"{prefix}.{key}" if prefix else key
        value = state[key]
        if isinstance(value, dict):
            flat.update(flatten_state(value, name))
        else:
            flat[name] = value
    return flat


def unflatten_state(flat: Dict[str, torch.Tensor]) -> State:
    """Inverse of :func:`flatten_state`."""
    state: State = {}
    for name, value in flat.items():
        node = state
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return state
