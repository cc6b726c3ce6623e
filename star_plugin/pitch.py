"""Fundamental-frequency tracking (YIN) at the model's STFT frames.

Used as the training target of the harmonic head's f0 (the encoder must carry pitch through
the latent for the decoder to predict it) and by ``star bench recon`` for a pitch-error figure.
A frame-wise YIN (de Cheveigne & Kawahara 2002): the cumulative-mean-normalised difference
function, the first dip under a threshold (else the deepest one), refined by a parabola.
Vectorised over frames with FFT correlations, no Python loop per frame.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

from .streaming import Streamable, StreamSequential

F0_MIN_HZ = 40.0
F0_MAX_HZ = 2000.0
YIN_THRESHOLD = 0.15
VOICED_MAX_DIP = 0.25       # a frame whose best dip is deeper than this is voiced
SILENT_BELOW = 1e-3         # frames quieter than this fraction of the loudest one are unvoiced


def frame_centres(frames: int, n_fft: int, hop: int) -> torch.Tensor:
    """Sample index of the centre of the model's STFT frame j: [(j+1) hop - n_fft, (j+1) hop)."""
    return (torch.arange(frames) + 1) * hop - n_fft // 2


def difference(frames: torch.Tensor, corr: torch.Tensor, half: int) -> torch.Tensor:
    """YIN's difference function d(tau) = sum_{n < half} (x[n] - x[n + tau])^2 of each frame
    (..., 2 half) from its correlation ``corr`` (..., taus) = sum_{n < half} x[n] x[n + tau]."""
    taus = corr.shape[-1]
    energy = torch.nn.functional.pad(frames.pow(2).cumsum(-1), (1, 0))
    shifted = energy[..., half:half + taus] - energy[..., :taus]  # sum of x[n+tau]^2, n < half
    return (shifted[..., :1] + shifted - 2 * corr).clamp(min=0)


def pick_lag(diff: torch.Tensor, tau_min: int):
    """-> (lag in samples, refined by a parabola; the normalised dip there), each (...,).

    The cumulative-mean-normalised difference, its first local minimum under the threshold,
    else its global minimum. Written with where/cat/argmax only (no in-place writes): the
    causal tracker inside the encoder exports to ONNX with it."""
    taus = diff.shape[-1]
    index = torch.arange(1, taus, device=diff.device, dtype=diff.dtype)
    cumulative = diff[..., 1:].cumsum(-1) / index
    cmnd = torch.cat([torch.ones_like(diff[..., :1]), diff[..., 1:] / cumulative.clamp(min=1e-12)],
                     dim=-1)
    lags = torch.arange(taus, device=diff.device)
    cmnd = torch.where(lags < tau_min, torch.full_like(cmnd, 2.0), cmnd)
    inner = cmnd[..., 1:-1]
    local_min = (inner <= cmnd[..., :-2]) & (inner <= cmnd[..., 2:])
    candidate = (local_min & (inner < YIN_THRESHOLD)).to(diff.dtype)
    first = torch.argmax(candidate, dim=-1) + 1
    best = torch.argmin(inner, dim=-1) + 1
    lag = torch.where(candidate.amax(-1) > 0, first, best)
    dip = cmnd.gather(-1, lag[..., None])[..., 0]
    # the parabola through the raw difference, not the normalised one (whose slope biases
    # short lags: 15 cents at 1.3 kHz at 11 kHz), around its own minimum next to the lag
    def at(k):
        return diff.gather(-1, k.clamp(1, taus - 2)[..., None])[..., 0]
    lag = torch.where(at(lag - 1) < at(lag), lag - 1, torch.where(at(lag + 1) < at(lag), lag + 1, lag))
    lag = lag.clamp(1, taus - 2)
    lo, mid, hi = at(lag - 1), at(lag), at(lag + 1)
    curvature = lo - 2 * mid + hi
    shift = torch.where(curvature > 1e-12, 0.5 * (lo - hi) / curvature.clamp(min=1e-12),
                        torch.zeros_like(mid)).clamp(-0.5, 0.5)
    return lag.to(diff.dtype) + shift, dip


def yin(audio: torch.Tensor, sample_rate: int, centres: torch.Tensor,
        f0_min: float = F0_MIN_HZ, f0_max: float = F0_MAX_HZ):
    """(..., samples) audio, frame centres -> (f0 Hz, voiced bool, dip), each (..., frames).

    The window around each centre is twice the longest period; outside the audio is zero.
    ``dip`` is the normalised difference at the chosen lag (0: perfectly periodic).
    """
    lead = audio.shape[:-1]
    x = audio.reshape(-1, audio.shape[-1]).float()
    tau_max = int(sample_rate / f0_min) + 2
    tau_min = max(2, int(sample_rate / f0_max))
    half = tau_max
    padded = torch.nn.functional.pad(x, (half, 2 * half))
    starts = centres.to(torch.long) - half // 2 + half          # window [c - half/2, c + 3half/2)
    index = starts[:, None] + torch.arange(2 * half)[None, :]
    frames = padded[:, index]                                    # (rows, frames, 2 half)
    head = frames[..., :half]
    size = 1 << (3 * half - 1).bit_length()
    spec_full = torch.fft.rfft(frames, size)
    spec_head = torch.fft.rfft(head, size)
    corr = torch.fft.irfft(spec_full * spec_head.conj(), size)[..., :tau_max + 1]
    lag, mid = pick_lag(difference(frames, corr, half), tau_min)
    f0 = sample_rate / lag
    loudness = frames.pow(2).mean(-1)
    audible = loudness > SILENT_BELOW * loudness.amax(-1, keepdim=True).clamp(min=1e-12)
    voiced = (mid < VOICED_MAX_DIP) & audible & (loudness > 1e-10)
    shape = (*lead, centres.numel())
    return f0.reshape(shape), voiced.reshape(shape), mid.reshape(shape)


def model_frame_f0(audio: torch.Tensor, sample_rate: int, n_fft: int, hop: int,
                   frames: int):
    """YIN at the centres of the model's STFT frames 0 .. frames-1."""
    return yin(audio, sample_rate, frame_centres(frames, n_fft, hop))


def f0_distance(predicted_hz: torch.Tensor, audio: torch.Tensor, sample_rate: int, n_fft: int,
                hop: int) -> torch.Tensor:
    """Mean |log2(predicted / YIN f0)| in octaves over the voiced frames of ``audio``.

    ``predicted_hz``: (batch * channels, 1, frames) from the harmonic head, frame j centred as
    the model's STFT frame j; ``audio``: (batch, channels, samples). 0 when nothing is voiced.
    """
    rows = audio.reshape(-1, audio.shape[-1])
    frames = predicted_hz.shape[-1]
    with torch.no_grad():
        target, voiced, _ = model_frame_f0(rows, sample_rate, n_fft, hop, frames)
    error = (torch.log2(predicted_hz[:, 0].clamp(min=1e-3)) - torch.log2(target)).abs()
    weight = voiced.to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


F0_CODE_REF_HZ = 220.0   # a latent pitch code of 0 is A3; one unit per octave


def f0_to_code(f0_hz: torch.Tensor) -> torch.Tensor:
    """Hz -> the latent pitch code: octaves from A3 (110 Hz: -1, 440 Hz: +1)."""
    return torch.log2(f0_hz / F0_CODE_REF_HZ)


def latent_f0_distance(code: torch.Tensor, audio: torch.Tensor, sample_rate: int,
                       hop: int) -> torch.Tensor:
    """Mean |code - f0_to_code(YIN f0)| (octaves) over the voiced latent frames.

    ``code``: one latent channel's posterior mean (batch, channels * frames...) as
    (batch * audio channels, frames), frame i covering samples [i hop, (i + 1) hop) and read at
    its centre; ``audio``: (batch, channels, samples). Supervising a latent channel (not only
    the decoder's f0) gives the encoder a short gradient path to carry pitch: through the
    decoder alone it stayed at the corpus median for hundreds of steps."""
    rows = audio.reshape(-1, audio.shape[-1])
    frames = code.shape[-1]
    with torch.no_grad():
        centres = torch.arange(frames) * hop + hop // 2
        target, voiced, _ = yin(rows, sample_rate, centres)
    error = (code - f0_to_code(target)).abs()
    weight = voiced.to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------- in the encoder
PITCH_RATE_HZ = 11025.0     # the causal tracker works on audio decimated to about this rate
PITCH_LOGSIGMA = -5.0       # the pitch channel's posterior: sigma 0.007 octave (8 cents)
QUIET_RMS = 1e-3            # a window quieter than -60 dBFS RMS is unvoiced


def decimation_factor(sample_rate: int, hop: int) -> int:
    """The largest factor <= sample_rate / PITCH_RATE_HZ (rounded) that divides the hop."""
    factor = max(1, int(round(sample_rate / PITCH_RATE_HZ)))
    while hop % factor:
        factor -= 1
    return factor


def lowpass_taps(factor: int, taps_per_factor: int = 8) -> torch.Tensor:
    """Windowed-sinc anti-alias filter for decimation by ``factor`` (cut-off at 0.8 x the new
    Nyquist), unit DC gain, oldest tap first."""
    n = torch.arange(taps_per_factor * factor, dtype=torch.float64)
    centre = (n.numel() - 1) / 2
    cutoff = 0.8 / factor                                        # of the old Nyquist
    h = cutoff * torch.sinc(cutoff * (n - centre)) * torch.hann_window(n.numel(), periodic=False,
                                                                         dtype=torch.float64)
    return (h / h.sum()).float()


class Decimator(Streamable):
    """Causal anti-alias filter (:func:`lowpass_taps`) and decimation by ``factor``. The taps are
    a fixed, non-persistent buffer: nothing here is learned or stored with the weights.
    State: the last ``taps - factor`` input samples."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor
        self.register_buffer("taps", lowpass_taps(factor)[None, None], persistent=False)
        self.pad = self.taps.shape[-1] - factor

    def forward(self, x):
        return torch.nn.functional.conv1d(torch.nn.functional.pad(x, (self.pad, 0)), self.taps,
                                          stride=self.factor)

    def init_state(self, batch, device=None, dtype=None):
        return {"cache": torch.zeros(batch, 1, self.pad, device=device, dtype=dtype)}

    def step(self, x, state):
        full = torch.cat([state["cache"], x], dim=-1)
        y = torch.nn.functional.conv1d(full, self.taps, stride=self.factor)
        return y, {"cache": full[..., full.shape[-1] - self.pad:]}


class CausalPitchTracker(Streamable):
    """Audio (b, ch, n: whole hops) -> latent pitch code (b, 1, n / hop): YIN on the window
    ending at each latent frame's last sample, so it sees nothing later than the learned
    encoder does (the latency is unchanged). Channels are mixed to mono, decimated to about
    ``PITCH_RATE_HZ`` through a causal windowed-sinc filter, and the correlation comes from
    the cross-spectrum with the DFTs written as products with fixed bases (torch's FFT does
    not export to ONNX). Accuracy: < 1 cent below 500 Hz, 2 at 1 kHz, 9 at 1.76 kHz (the lag
    is then 6 samples; the parabola's resolution). Unvoiced or quiet
    windows give code 0 (A3). State: the filter's input tail and the last window's samples."""

    def __init__(self, sample_rate: int, hop: int, f0_min: float = F0_MIN_HZ,
                 f0_max: float = F0_MAX_HZ):
        super().__init__()
        self.factor = decimation_factor(sample_rate, hop)
        self.rate = sample_rate / self.factor
        self.hop = hop // self.factor                            # in decimated samples
        self.tau_max = int(self.rate / f0_min) + 2
        self.tau_min = max(2, int(self.rate / f0_max))
        self.window = 2 * self.tau_max
        self.history = max(0, self.window - self.hop)            # decimated samples kept
        # real DFT of size >= window + tau_max (no circular wrap for lags 0..tau_max)
        size = self.window + self.tau_max + 1
        k = torch.arange(size // 2 + 1, dtype=torch.float64)
        n = torch.arange(self.window, dtype=torch.float64)
        angle = 2 * math.pi * n[:, None] * k[None, :] / size
        self.register_buffer("dft_cos", torch.cos(angle).float(), persistent=False)
        self.register_buffer("dft_sin", (-torch.sin(angle)).float(), persistent=False)
        lags = torch.arange(self.tau_max + 1, dtype=torch.float64)
        weight = torch.full_like(k, 2.0)
        weight[0] = 1.0
        if size % 2 == 0:
            weight[-1] = 1.0
        back = 2 * math.pi * k[:, None] * lags[None, :] / size
        self.register_buffer("idft_cos", (weight[:, None] * torch.cos(back) / size).float(),
                             persistent=False)
        self.register_buffer("idft_sin", (weight[:, None] * torch.sin(back) / size).float(),
                             persistent=False)
        self.lowpass = Decimator(self.factor) if self.factor > 1 else None

    def _decimate(self, mono, state):
        if self.lowpass is None:
            return mono, state
        if state is None:
            return self.lowpass(mono), None
        return self.lowpass.step(mono, state)

    def _codes(self, full: torch.Tensor) -> torch.Tensor:
        """(b, 1, history + frames * hop) decimated audio -> (b, 1, frames) pitch codes."""
        frames = (full.shape[-1] - self.history) // self.hop
        start = self.history + self.hop - self.window
        index = (start + torch.arange(frames, device=full.device)[:, None] * self.hop
                 + torch.arange(self.window, device=full.device)[None, :])
        windows = full[:, 0][:, index]                           # (b, frames, window)
        head = windows[..., :self.tau_max]
        # correlation through the cross-spectrum, the DFTs as products with fixed bases
        # (exports as MatMul; gathering the lagged copies was 20x slower and torch's unfold
        # does not export)
        x_re, x_im = windows @ self.dft_cos, windows @ self.dft_sin
        h_re, h_im = head @ self.dft_cos[:self.tau_max], head @ self.dft_sin[:self.tau_max]
        cross_re = h_re * x_re + h_im * x_im                     # conj(H) X
        cross_im = h_re * x_im - h_im * x_re
        corr = cross_re @ self.idft_cos - cross_im @ self.idft_sin
        lag, dip = pick_lag(difference(windows, corr, self.tau_max), self.tau_min)
        code = torch.log2(self.rate / lag / F0_CODE_REF_HZ)
        loud = windows.pow(2).mean(-1) > QUIET_RMS ** 2
        voiced = (dip < VOICED_MAX_DIP) & loud
        return torch.where(voiced, code, torch.zeros_like(code))[:, None, :]

    def forward(self, x):
        mono, _ = self._decimate(x.mean(dim=1, keepdim=True), None)
        return self._codes(torch.nn.functional.pad(mono, (self.history, 0)))

    def init_state(self, batch, device=None, dtype=None):
        state = {"window": torch.zeros(batch, 1, self.history, device=device, dtype=dtype)}
        if self.lowpass is not None:
            state["lowpass"] = self.lowpass.init_state(batch, device, dtype)
        return state

    def step(self, x, state):
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], 1, 0), state
        mono, lowpass = self._decimate(x.mean(dim=1, keepdim=True), state.get("lowpass"))
        full = torch.cat([state["window"], mono], dim=-1)
        new = {"window": full[..., full.shape[-1] - self.history:]}
        if lowpass is not None:
            new["lowpass"] = lowpass
        return self._codes(full), new


class PitchEncoder(StreamSequential):
    """The learned encoder stack with one latent channel replaced by the causal pitch code
    (mean = code, logsigma = ``PITCH_LOGSIGMA``). Its layers keep the names of a plain encoder
    (``encoder.layers.N``), so weights of a model without the pitch channel load into it."""

    def __init__(self, layers, tracker: CausalPitchTracker, channel: int, latent_channels: int):
        super().__init__(*layers)
        self.pitch, self.channel, self.latent_channels = tracker, channel, latent_channels

    def _insert(self, stats: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        c, n = self.channel, self.latent_channels
        mean, logsigma = stats[:, :n], stats[:, n:]
        mean = torch.cat([mean[:, :c], code, mean[:, c + 1:]], dim=1)
        logsigma = torch.cat([logsigma[:, :c], torch.full_like(code, PITCH_LOGSIGMA),
                              logsigma[:, c + 1:]], dim=1)
        return torch.cat([mean, logsigma], dim=1)

    def forward(self, x):
        return self._insert(super().forward(x), self.pitch(x))

    def init_state(self, batch, device=None, dtype=None):
        return {**super().init_state(batch, device, dtype),
                "pitch": self.pitch.init_state(batch, device, dtype)}

    def step(self, x, state):
        learned = {k: v for k, v in state.items() if k != "pitch"}
        stats, new = super().step(x, learned)
        code, pitch = self.pitch.step(x, state["pitch"])
        return self._insert(stats, code), {**new, "pitch": pitch}


def partial_magnitudes(magnitude: torch.Tensor, f0: torch.Tensor, harmonics: int,
                       sample_rate: int, n_fft: int):
    """The larger of the two bins around each h x f0 (the lobe's top), and whether h x f0 lies
    inside the spectrum: each (rows, H, t)."""
    bins = magnitude.shape[1]
    number = torch.arange(1, harmonics + 1, device=magnitude.device, dtype=f0.dtype)[None, :, None]
    position = number * f0 * (n_fft / sample_rate)
    below = position.floor().clamp(0, bins - 1).long()
    above = (below + 1).clamp(max=bins - 1)
    top = torch.maximum(magnitude.gather(1, below), magnitude.gather(1, above))
    return top, position < bins - 1


def comb_amplitude_distance(frequency: torch.Tensor, peaks: torch.Tensor, audio: torch.Tensor,
                            sample_rate: int, n_fft: int, hop: int,
                            max_hz: Optional[float] = None) -> torch.Tensor:
    """Mean |log peak - log target| over the audible partials of the voiced frames.

    ``frequency``, ``peaks``: (batch * channels, partials, frames) from
    ``HarmonicHead.partial_peaks``; the target is the input's own analysis magnitude (the
    model's STFT, so the scales agree) at the bins nearest to h x the input's YIN f0 (the
    larger of the two bins around it). A local target for the comb's amplitudes: through the
    spectral losses alone they were switched off (docs/RESULTS.md section 4). ``max_hz``: only
    partials below it count (``HarmonicHead.drawable_hz``: the head cannot draw the others, and
    counting them left a floor of ~0.45 that an ideal comb could not get under; None: Nyquist)."""
    from .spectral import stft_magnitude

    rows = audio.reshape(-1, 1, audio.shape[-1])
    with torch.no_grad():
        magnitude = stft_magnitude(rows, n_fft, hop)
        frames = min(peaks.shape[-1], magnitude.shape[-1])   # the head may run past the audio
        magnitude = magnitude[..., :frames]                      # (rows, bins, frames)
        f0, voiced, _ = model_frame_f0(rows[:, 0], sample_rate, n_fft, hop, frames)
        target, inside = partial_magnitudes(magnitude, f0[:, None, :], peaks.shape[1],
                                            sample_rate, n_fft)
        inside = inside & voiced[:, None, :]
        limit = 0.5 * sample_rate if max_hz is None else max_hz
        drawable = (frequency[..., :frames].detach() < limit).to(peaks.dtype)
        weight = inside.to(peaks.dtype) * drawable
    error = (torch.log(peaks[..., :frames] + 1e-5) - torch.log(target + 1e-5)).abs()
    return (error * weight).sum() / weight.sum().clamp(min=1.0)
