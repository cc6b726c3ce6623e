"""The streaming convention shared by every layer.

A streamable module computes the same function two ways:

* ``forward(x)`` — offline, on a whole sequence, starting from silence;
* ``step(x, state) -> (y, new_state)`` — on one piece of the sequence, carrying ``state``
  (convolution caches, SSM states, overlap-add tails) from the previous piece.

``step`` is a pure function: it never mutates ``state``; it returns a new one. States are
nested dicts of tensors keyed by child name, so every state has a stable dotted name
(``flatten_state``) for ONNX graphs and hosts. ``init_state(batch)`` returns the state of
silence. Feeding a sequence through ``step`` in pieces equals ``forward`` on the whole.
"""
from __future__ import annotations

from typing import Dict, Tuple, Union

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
        new_state = {}
        for i, layer in enumerate(self.layers):
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


def drop_leading(audio, remaining: int):
    """Drop up to ``remaining`` leading samples (the last axis) of a stream's raw output:
    the decoder's first synthesis-delay samples precede time zero. Returns (audio, still to
    drop); works on numpy arrays and torch tensors alike."""
    dropped = min(int(remaining), audio.shape[-1])
    return audio[..., dropped:], int(remaining) - dropped


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
