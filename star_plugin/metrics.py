"""Reconstruction metrics on numpy audio (channels, samples)."""
from __future__ import annotations

import numpy as np
import torch


def si_sdr(estimate: np.ndarray, reference: np.ndarray, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-distortion ratio in dB, averaged over channels.

    The reference is scaled by the least-squares gain alpha = <est, ref> / <ref, ref>;
    SI-SDR = 10 log10(|alpha ref|^2 / |alpha ref - est|^2). Channels that are silent in the
    reference are skipped (the ratio is undefined); all-silent input gives nan.
    """
    est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    n = min(est.shape[-1], ref.shape[-1])
    scores = []
    for e, r in zip(est[:, :n], ref[:, :n]):
        energy = np.dot(r, r)
        if energy <= eps:
            continue
        target = np.dot(e, r) / energy * r
        noise = target - e
        scores.append(10 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))
    return float(np.mean(scores)) if scores else float("nan")


def stft_distance(estimate: torch.Tensor, target: torch.Tensor,
                  sizes=(2048, 1024, 512, 256, 128)) -> torch.Tensor:
    """Multi-resolution STFT distance: mean over FFT sizes (hop n/4, Hann) of spectral
    convergence ||S_t - S_e||_F / ||S_t||_F plus mean |log S_e - log S_t| (S = magnitude).

    Tensors (..., samples); differentiable, so it doubles as the training loss.
    """
    est = estimate.reshape(-1, estimate.shape[-1])
    ref = target.reshape(-1, target.shape[-1])
    total = est.new_zeros(())
    for n_fft in sizes:
        window = torch.hann_window(n_fft, device=est.device, dtype=est.dtype)
        e = torch.stft(est, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        r = torch.stft(ref, n_fft, n_fft // 4, window=window, return_complex=True).abs()
        convergence = torch.linalg.norm(r - e) / (torch.linalg.norm(r) + 1e-7)
        log_mag = (torch.log(e + 1e-5) - torch.log(r + 1e-5)).abs().mean()
        total = total + convergence + log_mag
    return total / len(sizes)
