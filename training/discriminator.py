"""Discriminators with hinge and feature-matching losses.

* Multi-scale STFT (EnCodec-style): each scale sees the complex STFT (real and imaginary parts
  as two input planes). Large: for a GPU machine.
* Multi-period (HiFi-GAN/RAVE-style): the waveform folded by a period p into a (T/p, p) image,
  so each column sees every p-th sample: periodic structure (pitch, its harmonics) is what it
  judges. Small enough to train on the CPU as the second stage.

Every discriminator returns, per sub-discriminator, (logits, feature maps).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm


class STFTDiscriminator(nn.Module):
    def __init__(self, n_fft: int, channels: int = 32):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        conv = lambda i, o, k, s=(1, 1), d=(1, 1): weight_norm(nn.Conv2d(  # noqa: E731
            i, o, k, s, dilation=d, padding=((k[0] - 1) * d[0] // 2, (k[1] - 1) * d[1] // 2)))
        self.layers = nn.ModuleList([
            conv(2, channels, (3, 9)),
            conv(channels, channels, (3, 9), (1, 2), (1, 1)),
            conv(channels, channels, (3, 9), (1, 2), (2, 1)),
            conv(channels, channels, (3, 9), (1, 2), (4, 1)),
            conv(channels, channels, (3, 3)),
        ])
        self.out = conv(channels, 1, (3, 3))

    def forward(self, x: torch.Tensor):
        spec = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, self.n_fft // 4,
                          window=self.window, return_complex=True)
        h = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # (b, 2, time, freq)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts=(2048, 1024, 512), channels: int = 32):
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(n, channels) for n in n_ffts)

    def forward(self, x: torch.Tensor):
        return [scale(x) for scale in self.scales]


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, channels=(16, 32, 64, 128)):
        super().__init__()
        self.period = period
        widths = (1, *channels)
        self.layers = nn.ModuleList(
            weight_norm(nn.Conv2d(i, o, (5, 1), (3, 1), padding=(2, 0)))
            for i, o in zip(widths[:-1], widths[1:]))
        self.out = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        x = x.reshape(-1, 1, x.shape[-1])
        pad = (-x.shape[-1]) % self.period
        x = F.pad(x, (0, pad), mode="reflect" if pad < x.shape[-1] else "constant")
        h = x.reshape(x.shape[0], 1, -1, self.period)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods=(2, 3, 5, 7, 11), channels: int = 16):
        super().__init__()
        widths = tuple(channels * 2 ** i for i in range(4))
        self.periods = nn.ModuleList(PeriodDiscriminator(p, widths) for p in periods)

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.periods]


def build_discriminator(kind: str, n_ffts, periods, channels: int) -> nn.Module:
    if kind == "stft":
        return MultiScaleSTFTDiscriminator(n_ffts, channels)
    if kind == "mpd":
        return MultiPeriodDiscriminator(periods, channels)
    raise ValueError(f"adversarial.kind must be 'stft' or 'mpd', got {kind!r}")


def discriminator_loss(real_outputs, fake_outputs) -> torch.Tensor:
    """Hinge loss: push real logits above 1 and fake logits below -1."""
    loss = 0.0
    for (real, _), (fake, _) in zip(real_outputs, fake_outputs):
        loss = loss + F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return loss / len(real_outputs)


def generator_losses(real_outputs, fake_outputs):
    """(adversarial hinge loss, feature matching loss) for the generator (the VAE decoder).
    Feature matching is L1 between feature maps, each normalised by the real map's mean |.|."""
    adversarial, matching, count = 0.0, 0.0, 0
    for (_, real_features), (fake, fake_features) in zip(real_outputs, fake_outputs):
        adversarial = adversarial + F.relu(1 - fake).mean()
        for r, f in zip(real_features, fake_features):
            r = r.detach()
            matching = matching + (r - f).abs().mean() / (r.abs().mean() + 1e-6)
            count += 1
    return adversarial / len(fake_outputs), matching / max(count, 1)
