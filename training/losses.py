"""Reconstruction losses (own STFT code: torch.stft, no torchaudio)."""
from __future__ import annotations

import torch


def multi_resolution_stft_loss(estimate: torch.Tensor, target: torch.Tensor,
                               sizes=(2048, 1024, 512, 256, 128)) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + L1 of log magnitudes.

    estimate/target: (batch, channels, samples); channels are folded into the batch.
    """
    est = estimate.reshape(-1, estimate.shape[-1])
    ref = target.reshape(-1, target.shape[-1])
    total = est.new_zeros(())
    for n_fft in sizes:
        window = torch.hann_window(n_fft, device=est.device, dtype=est.dtype)
        spec = lambda x: torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        e, r = spec(est), spec(ref)
        convergence = torch.linalg.norm(r - e) / (torch.linalg.norm(r) + 1e-7)
        log_mag = (torch.log(e + 1e-5) - torch.log(r + 1e-5)).abs().mean()
        total = total + convergence + log_mag
    return total / len(sizes)
