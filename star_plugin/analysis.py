"""Frame-rate analysis targets of the v3 decoder, and the errors measured against them.

Stage 1 of STAR-VAE v3 (training/stage1.py) trains the decoder on what the synthesis head
needs, measured from each input at the head's STFT frames, instead of on audio rendered
inside every step: the log magnitude per bin, the YIN f0 and voicing, the magnitude of each
drawable partial, the loudness per frame. The same error measures (in dB and cents) are
printed by the calibration (benchmarks/calibrate_v3.py: which error still gives FSC 0.35 and
level within 1.5 dB) and logged by the trainer, so the two can be read side by side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from .pitch import model_frame_f0, partial_magnitudes
from .spectral import stft_magnitude

DB = 20.0 / math.log(10.0)     # natural log of a magnitude -> dB
MAGNITUDE_FLOOR = 1e-4          # analysis scale: unit white noise ~ 1, so about -80 dB
ENVELOPE_BINS = 7               # the envelope: a 7-bin (300 Hz) moving average of the power
FINE_RANGE_DB = 60.0            # fine structure counts on bins within this of the frame's peak
SILENT_FRAME_DB = -60.0         # frames whose loudness is below this count for nothing
COMPRESSION = 1.0 / 3.0         # the compressed-magnitude error compares |X| ** (1/3)


@dataclass
class FrameAnalysis:
    """Targets at the head's frames, each (rows, ..., frames)."""
    magnitude: torch.Tensor        # (rows, bins, t) analysis magnitude
    f0: torch.Tensor               # (rows, 1, t) YIN f0 in Hz
    voiced: torch.Tensor           # (rows, 1, t) bool
    partial: torch.Tensor          # (rows, H, t) magnitude at h x f0 (the lobe's top)
    partial_mask: torch.Tensor     # (rows, H, t) bool: voiced frame and a drawable partial

    @property
    def log_magnitude(self) -> torch.Tensor:
        return torch.log(self.magnitude + MAGNITUDE_FLOOR)


@torch.no_grad()
def analyse(audio: torch.Tensor, sample_rate: int, n_fft: int, hop: int, harmonics: int,
            drawable_hz: float, frames: Optional[int] = None) -> FrameAnalysis:
    """(batch, channels, samples) audio -> its :class:`FrameAnalysis`, one row per channel."""
    rows = audio.reshape(-1, 1, audio.shape[-1]).float()
    magnitude = stft_magnitude(rows, n_fft, hop)
    if frames is not None:
        magnitude = magnitude[..., :frames]
    t = magnitude.shape[-1]
    f0, voiced, _ = model_frame_f0(rows[:, 0], sample_rate, n_fft, hop, t)
    f0, voiced = f0[:, None, :], voiced[:, None, :]
    partial, inside = partial_magnitudes(magnitude, f0, harmonics, sample_rate, n_fft)
    number = torch.arange(1, harmonics + 1, device=audio.device)[None, :, None]
    mask = inside & voiced & (number * f0 < drawable_hz)
    return FrameAnalysis(magnitude, f0, voiced, partial, mask)


def box_mean(x: torch.Tensor, width: int = ENVELOPE_BINS) -> torch.Tensor:
    """(rows, bins, t) -> the moving average over ``width`` bins (edges repeated)."""
    rows, bins, t = x.shape
    y = x.transpose(1, 2).reshape(rows * t, 1, bins)
    y = F.avg_pool1d(F.pad(y, (width // 2, width // 2), mode="replicate"), width, stride=1)
    return y.reshape(rows, t, bins).transpose(1, 2)


def power_envelope(magnitude: torch.Tensor, width: int = ENVELOPE_BINS) -> torch.Tensor:
    """The spectral envelope as a log magnitude: the log of the mean *power* over ``width``
    bins. A smooth spectrum on it has the input's power (the mean of the log lies below it
    on peaky or noisy spectra: with envelopes matched in the log, v3 sat 6-7 dB too quiet)."""
    return 0.5 * torch.log(box_mean(magnitude.pow(2), width) + MAGNITUDE_FLOOR ** 2)


def frame_loudness_db(magnitude: torch.Tensor) -> torch.Tensor:
    """(rows, bins, t) -> (rows, 1, t): the frame's power in dB (analysis scale)."""
    return 10.0 * torch.log10(magnitude.pow(2).sum(1, keepdim=True) + MAGNITUDE_FLOOR ** 2)


def magnitude_errors(predicted: torch.Tensor, target: FrameAnalysis) -> dict:
    """Mean absolute errors in dB of a predicted magnitude (rows, bins, t) against the
    analysis: ``envelope_db`` (the 300 Hz power envelope), ``fine_db`` (log magnitude minus
    that envelope, on the loud bins: the peaks and valleys of harmonics), ``loudness_db`` (per
    frame), and ``compressed`` (cube-root magnitudes, relative to the frame's mean), all over
    the frames that are not silent. Differentiable in ``predicted``."""
    t = min(predicted.shape[-1], target.magnitude.shape[-1])
    log_p = torch.log(predicted[..., :t] + MAGNITUDE_FLOOR)
    log_t = target.log_magnitude[..., :t]
    env_p, env_t = power_envelope(predicted[..., :t]), power_envelope(target.magnitude[..., :t])
    loud_t = frame_loudness_db(target.magnitude[..., :t])
    frame = (loud_t > SILENT_FRAME_DB).to(log_p.dtype)                       # (rows, 1, t)
    loud_bin = (log_t > log_t.amax(1, keepdim=True) - FINE_RANGE_DB / DB).to(log_p.dtype)
    fine_weight = loud_bin * frame

    def mean(error, weight):
        weight = weight.expand_as(error)
        return (error * weight).sum() / weight.sum().clamp(min=1.0)
    # cube-root magnitudes, relative to the frame's mean: loud bins weigh more than in dB, so
    # the partials' peaks count and a spike where the input has nothing costs (through a
    # frame-power term alone, the decoder put 45 % of every frame's power into one bin); the
    # floor in the frame's reference lets quiet frames weigh less
    root_p, root_t = predicted[..., :t].pow(COMPRESSION), target.magnitude[..., :t].pow(COMPRESSION)
    per_frame = root_t.mean(1, keepdim=True) + MAGNITUDE_FLOOR ** COMPRESSION
    return {
        "envelope_db": DB * mean((env_p - env_t).abs(), frame),
        "fine_db": DB * mean(((log_p - env_p) - (log_t - env_t)).abs(), fine_weight),
        "loudness_db": mean((frame_loudness_db(predicted[..., :t]) - loud_t).abs(), frame),
        "compressed": mean((root_p - root_t).abs() / per_frame, frame),
    }


def partial_error_db(peaks: torch.Tensor, target: FrameAnalysis) -> torch.Tensor:
    """Mean |dB| between the comb's partial peaks (rows, H, t) and the input's partial
    magnitudes, over voiced frames and drawable partials (0 when there are none)."""
    t = min(peaks.shape[-1], target.partial.shape[-1])
    error = (torch.log(peaks[..., :t] + MAGNITUDE_FLOOR)
             - torch.log(target.partial[..., :t] + MAGNITUDE_FLOOR)).abs()
    weight = target.partial_mask[..., :t].to(error.dtype)
    return DB * (error * weight).sum() / weight.sum().clamp(min=1.0)


def f0_error_cents(f0: torch.Tensor, target: FrameAnalysis) -> torch.Tensor:
    """Mean |cents| between a predicted f0 (rows, 1, t) and YIN's over the voiced frames."""
    t = min(f0.shape[-1], target.f0.shape[-1])
    error = 1200.0 * (torch.log2(f0[..., :t].clamp(min=1e-3)) - torch.log2(target.f0[..., :t])).abs()
    weight = target.voiced[..., :t].to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


def head_errors(head, head_input: torch.Tensor, target: FrameAnalysis,
                partials_on_analysis_f0: bool = False) -> dict:
    """Every per-target error of a ``PeakLockedHead`` given ``head_input`` (rows, channels, t):
    the magnitude errors of what the head draws (its comb on its own f0, as a listener hears
    it), ``partial_db`` and ``head_f0_cents`` (tensors, differentiable).
    ``partials_on_analysis_f0`` (stage 1): the partials' peaks are compared at the input's YIN
    f0, so their amplitudes learn on the right partials even where the head's f0 is off."""
    t = min(head_input.shape[-1], target.magnitude.shape[-1])
    head_input = head_input[..., :t]
    magnitude, _, peaks = head.magnitude(head_input)
    if partials_on_analysis_f0:
        peaks = head.partial_peaks(head_input, f0=target.f0[..., :t])[1]
    return {**magnitude_errors(magnitude, target), "partial_db": partial_error_db(peaks, target),
            "head_f0_cents": f0_error_cents(head.f0(head_input), target)}
