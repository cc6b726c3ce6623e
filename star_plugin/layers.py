"""Convolution building blocks that stream exactly (EnCodec-style explicit padding rules).

Causal framing rule: a convolution with effective span ``k`` and stride ``s`` is left-padded
by ``k - s``, so output ``j`` sees inputs ``[j*s - (k - s), (j + 1)*s)`` and ends exactly at
the end of its hop. Streaming keeps those ``k - s`` past samples as the cache. Inputs to a
strided layer always come in whole multiples of the stride (the model frames them), so the
caches have fixed sizes. Non-causal ("bidirectional") layers pad symmetrically and do not
stream.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .streaming import Streamable, StreamSequential


class Snake(nn.Module):
    """Snake activation x + sin^2(alpha x) / alpha, one alpha per channel (BigVGAN/DAC)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x):
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + 1e-9)


class Conv(Streamable):
    """Conv1d with causal (streamable) or symmetric ("same"-rate) padding."""

    def __init__(self, in_ch, out_ch, kernel, stride=1, dilation=1, causal=True, groups=1,
                 bias=True):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, dilation=dilation,
                              groups=groups, bias=bias)
        self.stride = stride
        self.causal = causal
        span = (kernel - 1) * dilation + 1
        if span < stride:
            raise ValueError(f"kernel span {span} must cover the stride {stride}")
        self.pad = span - stride

    def forward(self, x):
        if self.causal:
            x = F.pad(x, (self.pad, 0))
        else:
            x = F.pad(x, (self.pad // 2, self.pad - self.pad // 2))
        return self.conv(x)

    def init_state(self, batch, device=None, dtype=None):
        if self.pad == 0:  # a pointwise (1x1) conv needs no past: no state at all
            return {}
        return {"cache": torch.zeros(batch, self.conv.in_channels, self.pad, device=device,
                                     dtype=dtype)}

    def step(self, x, state):
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0), state
        if self.pad == 0:
            return self.conv(x), state
        full = torch.cat([state["cache"], x], dim=-1)
        y = self.conv(full)
        return y, {"cache": full[..., full.shape[-1] - self.pad:]}


class ConvTranspose(Streamable):
    """Upsampling transposed conv (kernel >= stride); causal: the overlap tail is carried on."""

    def __init__(self, in_ch, out_ch, kernel, stride, causal=True, bias=True):
        super().__init__()
        if kernel < stride:
            raise ValueError(f"kernel {kernel} must be >= stride {stride}")
        self.conv = nn.ConvTranspose1d(in_ch, out_ch, kernel, stride=stride, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.stride = stride
        self.causal = causal
        self.tail = kernel - stride

    def _add_bias(self, y):
        return y if self.bias is None else y + self.bias[None, :, None]

    def forward(self, x):
        y = self.conv(x)
        n = x.shape[-1] * self.stride
        if self.causal:
            y = y[..., :n]
        else:
            left = self.tail // 2
            y = y[..., left:left + n]
        return self._add_bias(y)

    def init_state(self, batch, device=None, dtype=None):
        return {"tail": torch.zeros(batch, self.conv.out_channels, self.tail, device=device,
                                    dtype=dtype)}

    def step(self, x, state):
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], self.conv.out_channels, 0), state
        y = self.conv(x)
        tail = state["tail"]
        y = torch.cat([y[..., :self.tail] + tail, y[..., self.tail:]], dim=-1)
        n = x.shape[-1] * self.stride
        return self._add_bias(y[..., :n]), {"tail": y[..., n:]}


class Residual(Streamable):
    """x + body(x); the body must keep the time alignment (causal convs do)."""

    def __init__(self, body: Streamable):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)

    def init_state(self, batch, device=None, dtype=None):
        return self.body.init_state(batch, device, dtype)

    def step(self, x, state):
        y, state = self.body.step(x, state)
        return x + y, state


def residual_unit(channels, dilation, kernel=7, causal=True) -> Residual:
    """Snake -> dilated conv -> Snake -> 1x1 conv, with a skip connection (DAC-style)."""
    return Residual(StreamSequential(
        Snake(channels),
        Conv(channels, channels, kernel, dilation=dilation, causal=causal),
        Snake(channels),
        Conv(channels, channels, 1, causal=causal),
    ))


def encoder_block(in_ch, out_ch, stride, causal=True, dilations=(1, 3, 9)) -> StreamSequential:
    """Residual units at the input rate, then a strided conv that downsamples by ``stride``."""
    return StreamSequential(
        *[residual_unit(in_ch, d, causal=causal) for d in dilations],
        Snake(in_ch),
        Conv(in_ch, out_ch, 2 * stride, stride=stride, causal=causal),
    )


def decoder_block(in_ch, out_ch, stride, causal=True, dilations=(1, 3, 9)) -> StreamSequential:
    """A transposed conv that upsamples by ``stride``, then residual units at the output rate."""
    return StreamSequential(
        Snake(in_ch),
        ConvTranspose(in_ch, out_ch, 2 * stride, stride, causal=causal),
        *[residual_unit(out_ch, d, causal=causal) for d in dilations],
    )


def conv_stack(channels, layers, kernel=3, causal=True) -> StreamSequential:
    """Plain residual CNN at one rate (the no-Mamba bottleneck): dilations 1, 2, 4, ..."""
    return StreamSequential(*[
        residual_unit(channels, 2 ** (i % 4), kernel=kernel, causal=causal) for i in range(layers)
    ])


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of (batch, channels, time): pointwise in time, so it
    streams without state."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class LayerScale(nn.Module):
    """A learned per-channel gain, small at first, so a deep residual stack starts near identity."""

    def __init__(self, channels: int, init: float = 1e-2):
        super().__init__()
        self.gain = nn.Parameter(torch.full((1, channels, 1), init))

    def forward(self, x):
        return x * self.gain


def convnext_block(channels: int, kernel: int = 7, expand: int = 4, causal: bool = True) -> Residual:
    """Vocos-style ConvNeXt block: depthwise conv -> LayerNorm -> 1x1 up -> GELU -> 1x1 down,
    with a layer-scaled skip. The depthwise conv is causal, so the block streams with a
    (kernel - 1)-frame cache and adds no latency."""
    return Residual(StreamSequential(
        Conv(channels, channels, kernel, causal=causal, groups=channels),
        ChannelNorm(channels),
        Conv(channels, channels * expand, 1, causal=causal),
        nn.GELU(),
        Conv(channels * expand, channels, 1, causal=causal),
        LayerScale(channels),
    ))
