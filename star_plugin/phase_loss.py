"""Phase-derivative distances: reward coherent partials without asking for absolute phase.

A causal decoder cannot know the absolute phase of a training crop's first frame, so a loss on
phase itself is noise; the *derivatives* of phase are what the ear hears as pitch and timing:

* instantaneous frequency (IF): the phase advance of a bin from one frame to the next;
* group delay (GD): the phase difference between neighbouring bins of one frame.

Both are compared as unit phasors, ``1 - cos(d_est - d_ref)``, which is immune to phase
wrapping, and weighted by the reference's magnitude (silent bins have no phase to match).
"""
from __future__ import annotations

import math
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


def head_frequency_distance(features: torch.Tensor, target: torch.Tensor, n_fft: int,
                            hop: int) -> torch.Tensor:
    """Direct supervision of the phase-vocoder head's frequency corrections, in [0, 2].

    ``features``: the head's input (batch, 3 x bins x channels, frames) from
    ``StarVAE.forward_with_head``; ``target``: the audio (batch, channels, samples). Head frame
    j and the model's analysis frame j cover the same samples, [(j+1) hop - n_fft, (j+1) hop),
    so the target's own phase advance from frame j-1 to j, minus the bin's centre advance, is
    the correction that head frame j should predict. Compared as 1 - cos (wrap-free), weighted
    by the target's magnitude. The output-side IF loss reaches the corrections only through
    the running phase sum, overlap-add and a second STFT; this one is local and well
    conditioned.
    """
    bins = n_fft // 2 + 1
    b, ch = target.shape[0], target.shape[1]
    rows = target.reshape(b * ch, target.shape[-1])
    frames = min(rows.shape[-1] // hop, features.shape[-1])
    with torch.no_grad():
        padded = torch.nn.functional.pad(rows, (n_fft - hop, 0))
        window = torch.hann_window(n_fft, device=rows.device, dtype=rows.dtype)
        spec = torch.stft(padded, n_fft, hop, window=window, center=False,
                          return_complex=True)[..., :frames]
        advance = spec[..., 1:] * spec[..., :-1].conj()
        k = torch.arange(bins, device=rows.device, dtype=rows.dtype)[:, None]
        wanted = torch.angle(advance) - 2 * math.pi * k * hop / n_fft
        weight = torch.sqrt(advance.abs())
    corrections = features.reshape(b * ch, 3, bins, -1)[:, 1, :, 1:frames]
    predicted = math.pi * torch.tanh(corrections)
    mismatch = 1.0 - torch.cos(predicted - wanted)
    total = weight.sum(dim=(-2, -1)).clamp(min=1e-7)
    return ((weight * mismatch).sum(dim=(-2, -1)) / total).mean()
