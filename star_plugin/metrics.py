"""Reconstruction metrics on numpy audio (channels, samples), and the dB spectrogram the demo
and the studio draw."""
from __future__ import annotations

import numpy as np
import torch


def spectrogram_db(audio: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """(channels, n) -> (bins, frames) magnitude in dB of the channel mix, low bins first."""
    x = torch.from_numpy(np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spec = torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return (20 * torch.log10(spec + 1e-5)).numpy()


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


def _rows(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1])


def stft_magnitudes(x: torch.Tensor, sizes=(2048, 1024, 512, 256, 128)) -> list:
    """|STFT| of x (..., samples) at each FFT size (hop n/4, Hann): the features of
    :func:`stft_distance`, computed once when one reference is scored many times."""
    x = _rows(x)
    return [_magnitude(x, n) for n in sizes]


def stft_distance_parts(est_mags: list, ref_mags: list):
    """(spectral convergence, log-magnitude distance), each averaged over the FFT sizes."""
    convergence, log_mag = 0.0, 0.0
    for e, r in zip(est_mags, ref_mags):
        convergence = convergence + torch.linalg.norm(r - e) / (torch.linalg.norm(r) + 1e-7)
        log_mag = log_mag + (torch.log(e + 1e-5) - torch.log(r + 1e-5)).abs().mean()
    return convergence / len(ref_mags), log_mag / len(ref_mags)


def stft_distance_from(est_mags: list, ref_mags: list) -> torch.Tensor:
    convergence, log_mag = stft_distance_parts(est_mags, ref_mags)
    return convergence + log_mag


def stft_distance(estimate: torch.Tensor, target: torch.Tensor,
                  sizes=(2048, 1024, 512, 256, 128)) -> torch.Tensor:
    """Multi-resolution STFT distance: mean over FFT sizes (hop n/4, Hann) of spectral
    convergence ||S_t - S_e||_F / ||S_t||_F plus mean |log S_e - log S_t| (S = magnitude).

    Tensors (..., samples); differentiable, so it doubles as the training loss.
    """
    return stft_distance_from(stft_magnitudes(estimate, sizes), stft_magnitudes(target, sizes))

MEL_SCALES = ((32, 5), (64, 10), (128, 20), (256, 40), (512, 80), (1024, 160), (2048, 320))


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1), peak 1 each."""
    fmax = sample_rate / 2 if fmax is None else fmax
    to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    to_hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / np.maximum(centre - lower, 1e-9)
    falling = (upper - bins) / np.maximum(upper - centre, 1e-9)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


_FILTERBANKS: dict = {}


def _filterbank(n_fft, n_mels, sample_rate, device, dtype) -> torch.Tensor:
    key = (n_fft, n_mels, sample_rate, device, dtype)
    if key not in _FILTERBANKS:
        _FILTERBANKS[key] = torch.from_numpy(
            mel_filterbank(n_fft, n_mels, sample_rate)).to(device=device, dtype=dtype)
    return _FILTERBANKS[key]


def _magnitude(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    return torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs()


def log_mel_features(x: torch.Tensor, sample_rate: int, scales=MEL_SCALES,
                     floor: float = 1e-5, magnitudes: dict | None = None) -> list:
    """log10 max(M, floor) per (window, n_mels) scale, M = mel-filtered |STFT| (Hann, hop
    window/4): the features of :func:`mel_distance`. ``magnitudes`` ({n_fft: |STFT|}) reuses
    spectra already computed for the STFT distance."""
    x = _rows(x)
    magnitudes = magnitudes or {}
    features = []
    for n_fft, n_mels in scales:
        spec = magnitudes[n_fft] if n_fft in magnitudes else _magnitude(x, n_fft)
        fb = _filterbank(n_fft, n_mels, sample_rate, x.device, x.dtype)
        features.append(torch.log10(torch.matmul(fb, spec).clamp(min=floor)))
    return features


def stft_and_mel_distances(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int,
                           sizes=(2048, 1024, 512, 256, 128), scales=MEL_SCALES):
    """(spectral convergence, log-magnitude distance, :func:`mel_distance`), the first two
    summing to :func:`stft_distance`, with each |STFT| computed once for all (they share window
    and hop): the training loss, about a third cheaper than separate calls."""
    def spectra(x):
        x = _rows(x)
        mags = {n: _magnitude(x, n) for n in sizes}
        return [mags[n] for n in sizes], log_mel_features(x, sample_rate, scales, magnitudes=mags)

    est_mags, est_mel = spectra(estimate)
    with torch.no_grad():
        ref_mags, ref_mel = spectra(target)
    return (*stft_distance_parts(est_mags, ref_mags), mel_distance_from(est_mel, ref_mel))


def frame_energy_distance(estimate: torch.Tensor, target: torch.Tensor, window: int = 1024,
                          floor: float = 1e-8) -> torch.Tensor:
    """Mean |log10 E_est - log10 E_ref| over frames (``window`` samples, hop window/4), E the
    frame's mean square. Log-spectral losses weigh every time-frequency point alike, and most
    points are quiet (high bins, pauses), so a model that cannot yet draw the loud peaks
    settles too quiet; per frame, the energy is the loud bins' and the level follows it."""
    def log_energy(x):
        frames = _rows(x).unfold(-1, window, window // 4)
        return torch.log10(frames.pow(2).mean(dim=-1) + floor)

    with torch.no_grad():
        reference = log_energy(target)
    return (log_energy(estimate) - reference).abs().mean()


def mel_distance_from(est_features: list, ref_features: list) -> torch.Tensor:
    return sum((e - r).abs().mean() for e, r in zip(est_features, ref_features)) / len(ref_features)


def mel_distance(estimate: torch.Tensor, target: torch.Tensor, sample_rate: int,
                 scales=MEL_SCALES, floor: float = 1e-5) -> torch.Tensor:
    """Multi-scale mel distance (DAC's definition): mean over (window, n_mels) scales of
    mean |log10 max(M_e, floor) - log10 max(M_t, floor)|, where M is the mel-filtered STFT
    magnitude with a Hann window and hop window/4. Tensors (..., samples); differentiable.
    """
    return mel_distance_from(log_mel_features(estimate, sample_rate, scales, floor),
                             log_mel_features(target, sample_rate, scales, floor))


# ----------------------------------------------------------------------------- what the ear hears
# MSD passed while a model buzzed: these three measure pitch, level and hop-rate artefacts.

FSC_FFT, FSC_HOP, FSC_SMOOTH_BINS, FSC_BAND = 4096, 1024, 17, (80.0, 4000.0)


def _mono64(audio) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float64)
    return a.mean(axis=0) if a.ndim == 2 else a


def _db_frames(x: np.ndarray) -> np.ndarray:
    """(frames, bins) |STFT|^2 of x (Hann 4096, hop 1024), zero-padded to one frame at least."""
    if x.size < FSC_FFT:
        x = np.pad(x, (0, FSC_FFT - x.size))
    count = 1 + (x.size - FSC_FFT) // FSC_HOP
    idx = np.arange(FSC_FFT)[None, :] + FSC_HOP * np.arange(count)[:, None]
    return np.abs(np.fft.rfft(x[idx] * np.hanning(FSC_FFT), axis=-1)) ** 2


def fine_structure_correlation(estimate, reference, sample_rate: int) -> float:
    """FSC: per active frame of a 4096-point STFT (hop 1024), the Pearson correlation between
    the dB spectra of reference and estimate after subtracting a 17-bin moving average (the
    spectral envelope), over 80-4000 Hz; averaged over frames with energy above 5 % of the
    loudest frame. 1 = the same harmonics (pitch), 0 = unrelated fine structure; nan when the
    reference is silent. Powers are floored 100 dB below each signal's loudest bin, so the
    figure does not depend on the estimate's level."""
    ref, est = _mono64(reference), _mono64(estimate)
    n = min(ref.size, est.size)
    p_ref, p_est = _db_frames(ref[:n]), _db_frames(est[:n])
    energy = p_ref.sum(axis=1)
    if energy.max() <= 1e-12:
        return float("nan")
    active = energy > 0.05 * energy.max()
    freqs = np.fft.rfftfreq(FSC_FFT, 1.0 / sample_rate)
    band = (freqs >= FSC_BAND[0]) & (freqs <= FSC_BAND[1])
    kernel = np.ones(FSC_SMOOTH_BINS) / FSC_SMOOTH_BINS
    half = FSC_SMOOTH_BINS // 2
    # a floor 100 dB below each signal's own loudest bin, not an absolute one: with a fixed
    # floor, bins of a clean tone below it clip differently at another level, and a 6 dB
    # quieter copy no longer scored 1 (the level has its own metric)
    floors = [1e-10 * p.max() + 1e-30 for p in (p_ref, p_est)]
    scores = []
    for a, b in zip(p_ref[active], p_est[active]):
        fine = []
        for p, floor in zip((a, b), floors):
            db = 10 * np.log10(p + floor)
            # edge-padded, not zero-padded: a zero pad biases the average of the bins near
            # 0 Hz / Nyquist, so a pure level change would move FSC when the band reaches them
            envelope = np.convolve(np.pad(db, half, mode="edge"), kernel, mode="valid")
            fine.append((db - envelope)[band])
        if fine[0].std() < 1e-9 or fine[1].std() < 1e-9:
            scores.append(0.0)
            continue
        scores.append(float(np.corrcoef(fine[0], fine[1])[0, 1]))
    return float(np.mean(scores))


def level_error_db(estimate, reference) -> float:
    """Output RMS minus input RMS, in dB (negative: too quiet); nan for a silent reference."""
    ref, est = _mono64(reference), _mono64(estimate)
    n = min(ref.size, est.size)
    r, e = np.sqrt(np.mean(ref[:n] ** 2)), np.sqrt(np.mean(est[:n] ** 2))
    if r <= 1e-9:
        return float("nan")
    return float(20 * np.log10(max(e, 1e-12) / r))


def hop_buzz(audio, sample_rate: int, rates) -> float:
    """Hop-rate buzz: the largest peak of the amplitude-envelope spectrum at any of ``rates``
    (Hz: the model's latent frame rate and STFT hop rate) relative to the envelope spectrum's
    median over 20-400 Hz (a linear ratio; an artefact-free signal sits near 1-3)."""
    x = _mono64(audio)
    if x.size < sample_rate // 10 or np.sqrt(np.mean(x ** 2)) <= 1e-9:
        return float("nan")
    spectrum = np.fft.fft(x)
    spectrum[x.size // 2 + 1:] = 0  # analytic signal: |.| is the amplitude envelope
    spectrum[1:(x.size + 1) // 2] *= 2
    envelope = np.abs(np.fft.ifft(spectrum))
    env_spec = np.abs(np.fft.rfft((envelope - envelope.mean()) * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    median = np.median(env_spec[(freqs >= 20) & (freqs <= 400)]) + 1e-12
    resolution = freqs[1]
    peaks = []
    for rate in rates:
        near = np.abs(freqs - rate) <= max(2 * resolution, 0.01 * rate)
        if near.any():
            peaks.append(env_spec[near].max())
    return float(max(peaks) / median) if peaks else float("nan")


PITCH_HOP = 512   # f0 read every 512 samples for the pitch error


def pitch_error_cents(estimate, reference, sample_rate: int) -> float:
    """Median |pitch difference| in cents between estimate and reference (YIN, star_plugin.pitch)
    over the frames where the reference is voiced; nan when it never is. Beside FSC it says
    *how far* the pitch moved: 100 = a semitone; an unpitched output scores in the thousands."""
    from .pitch import yin

    ref, est = _mono64(reference), _mono64(estimate)
    n = min(ref.size, est.size)
    if n < PITCH_HOP:
        return float("nan")
    centres = torch.arange(PITCH_HOP // 2, n, PITCH_HOP)
    both = torch.from_numpy(np.stack([ref[:n], est[:n]]).astype(np.float32))
    f0, voiced, _ = yin(both, sample_rate, centres)
    keep = voiced[0]
    if not bool(keep.any()):
        return float("nan")
    cents = 1200.0 * torch.log2(f0[1, keep] / f0[0, keep]).abs()
    return float(cents.median())
