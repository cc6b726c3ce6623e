"""Phase-coherent inverse-STFT synthesis: the decoder head of the v2 models.

The v1 head predicted each frame's phase from scratch and counted it from the frame's first
sample, while the window peaks at its centre: with magnitude losses the phase never trained and
every frame came out as a pulse at its edges, a buzz at the STFT hop whatever the input's pitch.

This head works like a phase vocoder. Per STFT bin ``k`` the decoder predicts

* a log magnitude,
* a bounded frequency correction ``delta`` (radians per hop, ``pi * tanh``), and
* a bounded per-frame phase offset (``pi * tanh``, for onsets; zero at initialisation).

The running phase accumulates ``advance_k + delta`` from frame to frame, where ``advance_k =
2 pi k hop / n_fft`` is the bin's own centre frequency times the hop: a partial between two bins
is drawn by every bin of its main lobe advancing at the partial's frequency, so it stays coherent
across frames at any pitch. Phase is counted from the frame *centre* (a symmetric window's
spectrum is then real in its main lobe: neighbouring bins of a partial share one phase).

The accumulated phase is streaming state (``phase``: one value per bin, wrapped to [0, 2 pi)).
It is summed in float64 so that a long offline decode and the wrapped streaming state agree
far below the 1e-4 parity bound.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .pitch import F0_CODE_REF_HZ
from .spectral import ISTFTSynthesis, analysis_scale, analysis_window
from .streaming import Streamable

TWO_PI = 2.0 * math.pi
MAX_LOG_MAGNITUDE = 6.0  # exp(6) caps a bin's magnitude (as Vocos does)


def wrap_phase(phase: torch.Tensor) -> torch.Tensor:
    """phase mod 2 pi in [0, 2 pi), without Mod/If (exports as plain arithmetic)."""
    return phase - TWO_PI * torch.floor(phase / TWO_PI)


class PhaseVocoderHead(Streamable):
    """(batch, 3 * bins, frames) -> (batch, 1, frames * hop), ``n_fft - hop`` samples late.

    Input channels: log magnitudes, frequency corrections, phase offsets (``bins`` each).
    ``learned_phase=False`` ignores the corrections and offsets: every bin advances at its
    centre frequency (with true magnitudes that kept more fine structure and level than the
    corrections v2p learned: benchmarks/oracle_harmonic.json).
    """

    def __init__(self, n_fft: int, hop: int, learned_phase: bool = True):
        super().__init__()
        self.learned_phase = learned_phase
        self.bins = n_fft // 2 + 1
        self.synthesis = ISTFTSynthesis(n_fft, hop)
        k = torch.arange(self.bins, dtype=torch.float64)
        # the bin's centre frequency times the hop, mod 2 pi (exact for hop = n_fft / 4)
        self.register_buffer("advance", torch.remainder(TWO_PI * k * hop / n_fft, TWO_PI)[:, None],
                             persistent=False)
        # counting phase from the frame centre = a shift by n_fft / 2 samples: pi * k
        self.register_buffer("centre_sign", (1.0 - 2.0 * torch.remainder(k, 2.0)).float()[:, None],
                             persistent=False)

    @property
    def delay(self) -> int:
        return self.synthesis.delay

    def _pv_spectrum(self, x: torch.Tensor, previous: torch.Tensor):
        """-> (re, im) counted from the frame centre, and the last accumulated phase."""
        logmag, correction, offset = x.chunk(3, dim=1)
        if self.learned_phase:
            increment = self.advance + (math.pi * torch.tanh(correction)).to(torch.float64)
        else:
            increment = self.advance + torch.zeros_like(correction, dtype=torch.float64)
        running = previous.to(torch.float64) + torch.cumsum(increment, dim=-1)
        accumulated = wrap_phase(running).to(x.dtype)
        phase = accumulated + math.pi * torch.tanh(offset) if self.learned_phase else accumulated
        magnitude = torch.exp((logmag - 3.0).clamp(max=MAX_LOG_MAGNITUDE))
        return magnitude * torch.cos(phase), magnitude * torch.sin(phase), accumulated[..., -1:]

    def _spectrum(self, x: torch.Tensor, state: dict):
        """-> (re/im spectrum counted from the frame start, the phase states after x)."""
        re, im, phase = self._pv_spectrum(x, state["phase"])
        return self._from_centre(re, im), {"phase": phase}

    def _from_centre(self, re, im):
        # counting phase from the frame centre = a shift by n_fft / 2 samples: (-1)^k
        return torch.cat([re * self.centre_sign, im * self.centre_sign], dim=1)

    def _phase_states(self, batch, device=None, dtype=None) -> dict:
        return {"phase": torch.zeros(batch, self.bins, 1, device=device, dtype=dtype)}

    def forward(self, x):
        spectrum, _ = self._spectrum(x, self._phase_states(x.shape[0], x.device, x.dtype))
        return self.synthesis(spectrum)

    def init_state(self, batch, device=None, dtype=None):
        return {**self._phase_states(batch, device, dtype),
                "synthesis": self.synthesis.init_state(batch, device, dtype)}

    def step(self, x, state):
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], 1, 0), state
        spectrum, phases = self._spectrum(x, state)
        audio, synthesis = self.synthesis.step(spectrum, state["synthesis"])
        return audio, {**phases, "synthesis": synthesis}


F0_LOWEST_HZ = 32.7         # C1: the f0 output spans F0_OCTAVES octaves from here
F0_OCTAVES = 7.0
HARMONIC_TAPER_HZ = 200.0   # harmonics fade out over this band below the head's top frequency
LOBE_BINS = 8               # bins drawn per partial: floor(position) - 3 .. floor(position) + 4
CODE_CORRECTION_OCTAVES = 0.5   # the learned f0 correction around a given pitch code, at most


def f0_from_logit(logit: torch.Tensor) -> torch.Tensor:
    return F0_LOWEST_HZ * torch.exp((F0_OCTAVES * math.log(2.0)) * torch.sigmoid(logit))


def hann_lobe(offset: torch.Tensor) -> torch.Tensor:
    """The Hann window's spectrum at ``offset`` bins from a partial, 1 at 0: sinc(x) / (1 - x^2).

    Both removable singularities (x = 0: 1; x = +-1: 1/2) are replaced before dividing, so
    neither the value nor its gradient is ever NaN (and it exports as plain arithmetic).
    """
    x2 = offset * offset
    near_zero = x2 < 1e-8
    near_one = (x2 - 1.0).abs() < 1e-4
    safe = torch.where(near_zero | near_one, torch.full_like(offset, 0.5), offset)
    value = torch.sin(math.pi * safe) / (math.pi * safe * (1.0 - safe * safe))
    value = torch.where(near_one, torch.full_like(value, 0.5), value)
    return torch.where(near_zero, torch.ones_like(value), value)


class HarmonicHead(PhaseVocoderHead):
    """The phase-vocoder head plus a harmonic comb driven by a predicted f0.

    The v2 phase-vocoder head alone learned a smooth envelope of noise: nothing tied the
    partials of a note together, and a partial between two bins needs every bin of its lobe
    to learn the same frequency correction. Here the decoder also predicts, per frame, an f0
    (``F0_OCTAVES`` octaves from ``F0_LOWEST_HZ``), an overall harmonic amplitude and a
    distribution over ``harmonics`` partials. Each partial ``h`` is drawn into the spectrum as
    the analysis window's main lobe (:func:`hann_lobe`) at ``h * f0``, with phase ``h * phi``,
    where ``phi`` accumulates ``2 pi f0 hop / sample_rate`` from frame to frame (streaming
    state ``f0_phase``, float64 sum, wrapped, as the bins' phase). The comb is added to the
    phase-vocoder spectrum, which keeps the noise and what a single f0 cannot explain.
    Partials above ``top_hz`` fade out; the spectrum is only computed up to there.

    Input channels: 3 x bins (the phase-vocoder head's), then f0 logit, amplitude logit and
    ``harmonics`` distribution logits.
    """

    def __init__(self, n_fft: int, hop: int, sample_rate: int, harmonics: int,
                 top_hz: float = 8000.0, code_input: bool = False, learned_phase: bool = True):
        super().__init__(n_fft, hop, learned_phase)
        # code_input: one more input channel, last, the latent pitch code (pitch.f0_to_code);
        # the f0 channel is then a bounded correction to it (pitch_channel models)
        self.code_input = code_input
        self.n_fft, self.hop, self.sample_rate = n_fft, hop, sample_rate
        self.harmonics = harmonics
        self.top_hz = min(float(top_hz), 0.5 * sample_rate - HARMONIC_TAPER_HZ)
        self.comb_bins = min(self.bins, int(math.ceil(self.top_hz * n_fft / sample_rate)) + 3)
        self.register_buffer("partial", torch.arange(1, harmonics + 1, dtype=torch.float32)[:, None],
                             persistent=False)
        self.register_buffer("lobe_offset", torch.arange(-LOBE_BINS // 2 + 1, LOBE_BINS // 2 + 1,
                                                         dtype=torch.float32)[None, None, :, None],
                             persistent=False)
        # the analysis of A cos(...) peaks at A * (sum of the window / 2) * analysis scale
        window = analysis_window(n_fft)
        self.peak = float(window.sum() / 2 * analysis_scale(window))

    @property
    def extra_channels(self) -> int:
        return 2 + self.harmonics

    def split(self, x: torch.Tensor):
        """Head input -> (phase-vocoder channels, f0 logit, amplitude logit, partial logits)."""
        pv = 3 * self.bins
        end = pv + 2 + self.harmonics
        return (x[:, :pv], x[:, pv:pv + 1], x[:, pv + 1:pv + 2], x[:, pv + 2:end])

    def f0(self, x: torch.Tensor) -> torch.Tensor:
        """Head input (batch, channels, frames) -> predicted f0 in Hz (batch, 1, frames)."""
        f0_channel = self.split(x)[1]
        if not self.code_input:
            return f0_from_logit(f0_channel)
        code = x[:, -1:] + CODE_CORRECTION_OCTAVES * torch.tanh(f0_channel)
        return F0_CODE_REF_HZ * torch.exp(math.log(2.0) * code)

    def _audible(self, frequency: torch.Tensor) -> torch.Tensor:
        """Each partial's fade (1 below ``drawable_hz``, 0.7 % at ``top_hz``)."""
        return torch.sigmoid((self.top_hz - 0.5 * HARMONIC_TAPER_HZ - frequency)
                             / (0.1 * HARMONIC_TAPER_HZ))

    def _peaks(self, frequency, level, logits) -> torch.Tensor:
        """Each partial's peak magnitude in the spectrum (analysis-scaled), (b, H, t)."""
        weights = torch.softmax(logits, dim=1) * self._audible(frequency)
        return self.peak * torch.exp((level - 4.0).clamp(max=4.0)) * weights

    @property
    def drawable_hz(self) -> float:
        """Partials below this frequency are drawn at full level (above it they fade out)."""
        return self.top_hz - HARMONIC_TAPER_HZ

    def partial_peaks(self, x: torch.Tensor):
        """Head input -> (partial frequencies in Hz, their peak magnitudes), each (b, H, t):
        what the comb draws, for a loss against the input's own spectrum at those
        frequencies (``pitch.comb_amplitude_distance``)."""
        _, _, level, logits = self.split(x)
        frequency = self.partial * self.f0(x)
        return frequency, self._peaks(frequency, level, logits)

    def _comb(self, f0: torch.Tensor, level: torch.Tensor, logits: torch.Tensor,
              previous: torch.Tensor):
        """-> (re, im) of the harmonic comb over the first ``comb_bins`` bins, last phase."""
        increment = (2.0 * math.pi * self.hop / self.sample_rate) * f0.to(torch.float64)
        running = previous.to(torch.float64) + torch.cumsum(increment, dim=-1)
        phi = wrap_phase(running).to(f0.dtype)                      # (b, 1, t)
        frequency = self.partial * f0                               # (b, H, t)
        amplitude = self._peaks(frequency, level, logits)
        angle = self.partial * phi                                  # (b, H, t)
        index, lobe = self._lobes(frequency)
        re = self._scatter(index, lobe, amplitude * torch.cos(angle))
        im = self._scatter(index, lobe, amplitude * torch.sin(angle))
        return re, im, phi[..., -1:]

    def _lobes(self, frequency: torch.Tensor):
        """Partials (b, H, t) in Hz -> (the LOBE_BINS bins around each, flattened to
        (b, H * J, t); the window's main lobe there, (b, H, J, t), 0 outside the comb's bins).
        Each partial touches only these bins: scattering them, not a dense (bins x partials)
        product, is 24x less work (the lobe is -40 dB at the cut)."""
        position = frequency * (self.n_fft / self.sample_rate)      # in bins
        index = torch.floor(position).detach()[:, :, None, :] + self.lobe_offset
        lobe = hann_lobe(index - position[:, :, None, :])
        inside = (index >= 0) & (index < self.comb_bins)
        lobe = torch.where(inside, lobe, torch.zeros_like(lobe))
        return index.clamp(0, self.comb_bins - 1).to(torch.int64).flatten(1, 2), lobe

    def _scatter(self, index: torch.Tensor, lobe: torch.Tensor, value: torch.Tensor):
        """Each partial's ``value`` (b, H, t) times its lobe, summed into (b, comb_bins, t)."""
        b, t = value.shape[0], value.shape[-1]
        return value.new_zeros(b, self.comb_bins, t).scatter_add(
            1, index, (lobe * value[:, :, None, :]).flatten(1, 2))

    def _spectrum(self, x: torch.Tensor, state: dict):
        pv, _, level, logits = self.split(x)
        re, im, phase = self._pv_spectrum(pv, state["phase"])
        comb_re, comb_im, f0_phase = self._comb(self.f0(x), level, logits, state["f0_phase"])
        pad = (0, 0, 0, self.bins - self.comb_bins)
        re = re + torch.nn.functional.pad(comb_re, pad)
        im = im + torch.nn.functional.pad(comb_im, pad)
        return self._from_centre(re, im), {"phase": phase, "f0_phase": f0_phase}

    def _phase_states(self, batch, device=None, dtype=None) -> dict:
        return {**super()._phase_states(batch, device, dtype),
                "f0_phase": torch.zeros(batch, 1, 1, device=device, dtype=dtype)}


PEAK_CLIMB_STEPS = 3        # a bin finds its peak by stepping to a louder neighbour this often
RESIDUAL_OFFSET = 6.0       # a zero log-magnitude channel is exp(-6): the head starts quiet


def peak_owner(logmag: torch.Tensor, steps: int = PEAK_CLIMB_STEPS) -> torch.Tensor:
    """(b, bins, t) log magnitude -> (b, bins, t) int64: the bin of the spectral peak each bin
    belongs to, found by climbing ``steps`` times to the louder of its two neighbours (a
    partial's main lobe is 4 bins wide: every bin of it reaches the lobe's top). Gathers only:
    exports to ONNX and streams frame by frame."""
    bins = logmag.shape[1]
    padded = torch.nn.functional.pad(logmag, (0, 0, 1, 1), value=-1e30)
    left, right = padded[:, :-2], padded[:, 2:]
    up = (right > logmag) & (right >= left)
    down = (left > logmag) & ~up
    k = torch.arange(bins, device=logmag.device)[None, :, None]
    towards = k + up.to(torch.int64) - down.to(torch.int64)
    owner = towards
    for _ in range(steps - 1):
        owner = towards.gather(1, owner)
    return owner


def peak_frequency(logmag: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """Each bin's peak frequency in bins: its owner's index plus a parabola's vertex through the
    owner's log magnitude and its neighbours' (within half a bin)."""
    bins = logmag.shape[1]
    a = logmag.gather(1, (owner - 1).clamp(0, bins - 1))
    b = logmag.gather(1, owner)
    c = logmag.gather(1, (owner + 1).clamp(0, bins - 1))
    curvature = a - 2.0 * b + c
    bent = curvature < -1e-6
    shift = 0.5 * (a - c) / torch.where(bent, curvature, torch.full_like(curvature, -1.0))
    shift = torch.where(bent, shift, torch.zeros_like(shift)).clamp(-0.5, 0.5)
    return owner.to(logmag.dtype) + shift


LOCK_BINS = 2               # a Hann main lobe spans +-2 bins: those bins take their peak's phase
FRAME_PERIOD = 65536.0      # the scrambled phases repeat after this many frames (6.3 min at 44.1 kHz)
# coefficients of the scrambled phase frac(a m^2 + b m k + c k^2 + d k) of bin k in frame m
SCRAMBLE = (0.3819660112501051, 0.7548776662466927, 0.5698402909980532, 0.2360679774997897)


def frame_numbers(start: torch.Tensor, frames: int, like: torch.Tensor) -> torch.Tensor:
    """(b, 1, 1) first frame number -> (b, 1, frames) float64 numbers start, start + 1, ...
    wrapped at ``FRAME_PERIOD`` (a cumulative sum, not arange: exports with a dynamic length)."""
    count = torch.cumsum(torch.ones_like(like[:, :1, :frames], dtype=torch.float64), dim=-1)
    number = start.to(torch.float64) + count - 1.0
    return number - FRAME_PERIOD * torch.floor(number / FRAME_PERIOD)


def scrambled_phase(bins: int, numbers: torch.Tensor) -> torch.Tensor:
    """(b, 1, t) frame numbers -> (b, bins, t) float64 phases in [0, 2 pi) that change from
    frame to frame and bin to bin with no pattern a listener hears: a quadratic Weyl sequence,
    deterministic, so streaming equals offline and ONNX Runtime equals torch."""
    m = numbers
    k = torch.arange(bins, device=numbers.device, dtype=torch.float64)[None, :, None]
    a, b, c, d = SCRAMBLE
    u = a * m * m + b * m * k + (c * k + d) * k
    return TWO_PI * (u - torch.floor(u))


def in_peak_lobe(logmag: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
    """(b, bins, t) bool: the bin climbed to a local maximum (``owner``, from
    :func:`peak_owner`) at most ``LOCK_BINS`` away: inside a partial's main lobe. A local
    maximum is a bin that one climbing step leaves where it is (the same tie rule)."""
    k = torch.arange(logmag.shape[1], device=logmag.device)[None, :, None]
    owner_is_peak = peak_owner(logmag, steps=1).gather(1, owner) == owner
    return owner_is_peak & ((k - owner).abs() <= LOCK_BINS)


def peak_locked_phase(magnitude: torch.Tensor, previous: torch.Tensor, hop: int, n_fft: int,
                      numbers: Optional[torch.Tensor] = None):
    """Phase from magnitude alone: (b, bins, t) magnitudes, (b, bins, 1) accumulated phase ->
    (phase of each bin counted from the frame centre, the new accumulated phase).

    Every bin accumulates the advance of its peak's frequency (not its own centre's); the bins
    within ``LOCK_BINS`` of a spectral peak (a local maximum) then take their peak's
    accumulated phase, so a partial's main lobe stays one coherent sinusoid (with free per-bin
    phases the lobe partly cancels: 3.3 dB lost on the calibration clips,
    benchmarks/calibrate_v3.json). The other bins, on the slopes of a smooth spectrum, get a
    scrambled phase (``scrambled_phase`` of the frame ``numbers``, (b, 1, t), default 0..t-1):
    locked too, a smooth region of bins shared one phase, an impulse per frame, a buzz at the
    frame rate (hop-rate buzz 4.8x the input's on the pitched test clips, 1.5x scrambled,
    benchmarks/phase_rules.py). No gradient: the phase follows the magnitude."""
    with torch.no_grad():
        logmag = torch.log(magnitude.detach() + 1e-9)
        owner = peak_owner(logmag)
        frequency = peak_frequency(logmag, owner)
        increment = (TWO_PI * hop / n_fft) * frequency.to(torch.float64)
        running = wrap_phase(previous.to(torch.float64) + torch.cumsum(increment, dim=-1))
        locked = running.gather(1, owner)
        if numbers is None:
            numbers = frame_numbers(torch.zeros_like(previous[:, :1]), logmag.shape[-1], logmag)
        phase = torch.where(in_peak_lobe(logmag, owner), locked,
                            scrambled_phase(logmag.shape[1], numbers))
    return phase.to(magnitude.dtype), running[..., -1:].to(magnitude.dtype)


class PeakLockedHead(HarmonicHead):
    """Magnitude only, phase from the magnitude's peaks: the v3 head.

    The decoder predicts two log magnitudes per bin: a residual (noise, and what one f0 cannot
    explain) and a *harmonic envelope*. The comb reads the envelope at each partial's frequency
    h x f0 (linear interpolation between bins) as that partial's peak and draws the partial's
    window lobe there; f0 is the latent pitch code plus a bounded correction. So a partial's
    level is a smooth function of frequency that does not depend on f0: a first design gave
    each partial *index* a share of one amplitude (as v2's comb), and after 720 steps its
    strongest partials were 10 dB low (docs/RESULTS.md section 5). The residual plus the comb
    is the frame's magnitude, trained directly against the input's analysis
    (``loss.render: false``: no audio in the step); the phase comes from it by
    :func:`peak_locked_phase` (streaming state ``phase``, one value per bin, and ``frame``,
    the frame number its scrambled phases read). The oracle with
    the input's own magnitude and this phase rule: benchmarks/calibrate_v3.json.

    Input channels per audio channel: ``bins`` residual log magnitudes, ``bins`` harmonic
    envelope log magnitudes, one f0 correction, then the pitch code (appended by the decoder).
    """

    def __init__(self, n_fft: int, hop: int, sample_rate: int, harmonics: int,
                 top_hz: float = 8000.0):
        super().__init__(n_fft, hop, sample_rate, harmonics, top_hz, code_input=True,
                         learned_phase=False)

    @property
    def extra_channels(self) -> int:
        return self.bins + 1

    def split(self, x: torch.Tensor):
        """Head input -> (residual log magnitudes, f0 correction, harmonic envelope); the f0
        correction second as in ``HarmonicHead.split``, which ``f0`` reads."""
        bins = self.bins
        return x[:, :bins], x[:, 2 * bins:2 * bins + 1], x[:, bins:2 * bins]

    def partial_peaks(self, x: torch.Tensor, f0: Optional[torch.Tensor] = None):
        """Head input -> (partial frequencies in Hz, their peak magnitudes), each (b, H, t):
        the harmonic envelope read at h x f0 (``f0`` replaces the predicted one)."""
        frequency = self.partial * (self.f0(x) if f0 is None else f0)
        envelope = self.split(x)[2]
        position = (frequency * (self.n_fft / self.sample_rate)).clamp(0, self.bins - 1)
        below = torch.floor(position).detach().clamp(max=self.bins - 2)
        fraction = position - below
        index = below.to(torch.int64)
        log_peak = ((1.0 - fraction) * envelope.gather(1, index)
                    + fraction * envelope.gather(1, index + 1))
        peaks = torch.exp((log_peak - RESIDUAL_OFFSET).clamp(max=MAX_LOG_MAGNITUDE))
        peaks = peaks * self._audible(frequency)
        return frequency, peaks

    def comb_magnitude(self, frequency: torch.Tensor, peaks: torch.Tensor) -> torch.Tensor:
        """Partials (b, H, t) in Hz with their peak magnitudes -> (b, bins, t): each partial's
        window lobe |W(k - h f0)| scaled to its peak, summed."""
        index, lobe = self._lobes(frequency)
        comb = self._scatter(index, lobe.abs(), peaks)
        return torch.nn.functional.pad(comb, (0, 0, 0, self.bins - self.comb_bins))

    def magnitude(self, x: torch.Tensor, f0: Optional[torch.Tensor] = None):
        """Head input -> (frame magnitudes (b, bins, t), partial frequencies, partial peaks).
        ``f0`` (b, 1, t) replaces the predicted one (training draws the comb on the
        analysis f0, so the envelope learns on the right partials from the first step)."""
        frequency, peaks = self.partial_peaks(x, f0)
        residual = self.split(x)[0]
        noise = torch.exp((residual - RESIDUAL_OFFSET).clamp(max=MAX_LOG_MAGNITUDE))
        return noise + self.comb_magnitude(frequency, peaks), frequency, peaks

    def _spectrum(self, x: torch.Tensor, state: dict):
        magnitude = self.magnitude(x)[0]
        numbers = frame_numbers(state["frame"], magnitude.shape[-1], magnitude)
        phase, last = peak_locked_phase(magnitude, state["phase"], self.hop, self.n_fft, numbers)
        re, im = magnitude * torch.cos(phase), magnitude * torch.sin(phase)
        following = frame_numbers(state["frame"] + magnitude.shape[-1], 1, magnitude)
        return self._from_centre(re, im), {"phase": last, "frame": following.to(x.dtype)}

    def _phase_states(self, batch, device=None, dtype=None) -> dict:
        # the number of the next frame, for the scrambled phases (an integer below 2^16:
        # exact in float32)
        return {"phase": torch.zeros(batch, self.bins, 1, device=device, dtype=dtype),
                "frame": torch.zeros(batch, 1, 1, device=device, dtype=dtype)}


def init_head_projection(projection: nn.Conv1d, bins: int, audio_channels: int) -> None:
    """Start the frequency corrections and phase offsets near zero (close to the pure
    bin-centre advance): their weights are scaled by 0.1 and their biases zeroed, so early
    training shapes magnitudes first."""
    with torch.no_grad():
        weight = projection.weight.view(audio_channels, 3, bins, -1)
        weight[:, 1:].mul_(0.1)
        if projection.bias is not None:
            projection.bias.view(audio_channels, 3, bins)[:, 1:].zero_()


class HarmonicProjection(Streamable):
    """Pointwise projection to a :class:`HarmonicHead`'s input, per audio channel
    [phase-vocoder channels, harmonic channels]. The phase-vocoder part keeps the name
    ``conv`` of the plain projection it extends, so a phase-vocoder model's weights load into
    it (``init_from``); the harmonic part starts near zero: f0 in mid-range, quiet, flat."""

    def __init__(self, hidden: int, pv_channels: int, harmonic_channels: int,
                 audio_channels: int, detail_width: int = 0):
        super().__init__()
        self.audio_channels = audio_channels
        self.conv = nn.Conv1d(hidden, pv_channels * audio_channels, 1)
        self.harmonic = nn.Conv1d(hidden, harmonic_channels * audio_channels, 1)
        with torch.no_grad():
            self.harmonic.weight.mul_(0.1)
            self.harmonic.bias.zero_()
        # ``detail_width`` > 0: a hidden layer beside the linear maps, added to their output
        # (the linear maps alone span only ``hidden`` spectral shapes). Its output layer starts
        # at zero, so a trained linear projection loads (``init_from``) and sounds as before.
        self.detail = None
        if detail_width:
            out = nn.Conv1d(detail_width, (pv_channels + harmonic_channels) * audio_channels, 1)
            nn.init.zeros_(out.weight)
            nn.init.zeros_(out.bias)
            self.detail = nn.Sequential(nn.Conv1d(hidden, detail_width, 1), nn.GELU(), out)

    def forward(self, x):
        b, t, ch = x.shape[0], x.shape[-1], self.audio_channels
        pv_channels = self.conv.out_channels // ch
        harmonic_channels = self.harmonic.out_channels // ch
        pv = self.conv(x).reshape(b, ch, pv_channels, t)
        harmonic = self.harmonic(x).reshape(b, ch, harmonic_channels, t)
        y = torch.cat([pv, harmonic], dim=2).reshape(b, ch * (pv_channels + harmonic_channels), t)
        return y if self.detail is None else y + self.detail(x)

    def init_state(self, batch, device=None, dtype=None):
        return {}

    def step(self, x, state):
        if x.shape[-1] == 0:
            channels = self.conv.out_channels + self.harmonic.out_channels
            return x.new_zeros(x.shape[0], channels, 0), state
        return self.forward(x), state
