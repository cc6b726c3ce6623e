"""Multi-scale STFT discriminator (EnCodec-style) with hinge and feature-matching losses.

Each scale sees the complex STFT (real and imaginary parts as two input planes) and returns
logits plus its intermediate feature maps for feature matching.
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
