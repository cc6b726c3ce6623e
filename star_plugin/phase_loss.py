"""Phase-derivative distances: reward coherent partials without asking for absolute phase.

A causal decoder cannot know the absolute phase of a training crop's first frame, so a loss on
phase itself is noise; the *derivatives* of phase are what the ear hears as pitch and timing:

* instantaneous frequency (IF): the phase advance of a bin from one frame to the next;
* group delay (GD): the phase difference between neighbouring bins of one frame.

Both are compared as unit phasors, ``1 - cos(d_est - d_ref)``, which is immune to phase
wrapping, and weighted by the reference's magnitude (silent bins have no phase to match).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

PHASE_SIZES = (2048, 1024)


def _unit_phasors(x: torch.Tensor, n_fft: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(rows, samples) -> (unit phasors, magnitudes) of the STFT (Hann, hop n/4)."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True)
    magnitude = spec.abs()
    # a floor relative to the loudest bin keeps the gradient of quiet bins bounded
    floor = 1e-4 * magnitude.amax(dim=(-2, -1), keepdim=True) + 1e-7
    return spec / (magnitude + floor), magnitude


def _weighted_mismatch(est: torch.Tensor, ref: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """mean over rows of sum(w * (1 - cos(angle(est) - angle(ref)))) / sum(w)."""
    mismatch = 1.0 - (est * ref.conj()).real
    total = weight.sum(dim=(-2, -1)).clamp(min=1e-7)
    return ((weight * mismatch).sum(dim=(-2, -1)) / total).mean()


def phase_derivative_distances(estimate: torch.Tensor, target: torch.Tensor,
                               sizes: Sequence[int] = PHASE_SIZES) -> Tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """(IF distance, GD distance), each in [0, 2], averaged over FFT sizes.

    Tensors (..., samples), the estimate aligned with the target; differentiable in the estimate.
    """
    est_rows = estimate.reshape(-1, estimate.shape[-1])
    ref_rows = target.reshape(-1, target.shape[-1])
    inst_freq, group_delay = 0.0, 0.0
    for n_fft in sizes:
        u_est, _ = _unit_phasors(est_rows, n_fft)
        with torch.no_grad():
            u_ref, mag = _unit_phasors(ref_rows, n_fft)
        # along time: bins (rows, bins, frames)
        w_time = torch.sqrt(mag[..., 1:] * mag[..., :-1])
        inst_freq = inst_freq + _weighted_mismatch(u_est[..., 1:] * u_est[..., :-1].conj(),
                                                   u_ref[..., 1:] * u_ref[..., :-1].conj(), w_time)
        w_freq = torch.sqrt(mag[:, 1:] * mag[:, :-1])
        group_delay = group_delay + _weighted_mismatch(
            u_est[:, 1:] * u_est[:, :-1].conj(), u_ref[:, 1:] * u_ref[:, :-1].conj(), w_freq)
    return inst_freq / len(sizes), group_delay / len(sizes)
