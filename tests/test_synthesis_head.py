"""The phase-vocoder head draws a partial at any pitch as one coherent sine, with a flat
envelope (no hop-rate buzz), and streams exactly; without its frequency corrections the same
magnitudes beat. The harmonic head draws partials at multiples of its f0, in amplitude units."""
import math

import numpy as np
import pytest
import torch

from star_plugin.metrics import hop_buzz
from star_plugin.spectral import STFTAnalysis
from star_plugin.synthesis import (F0_LOWEST_HZ, F0_OCTAVES, FRAME_PERIOD, HarmonicHead,
                                   PeakLockedHead, PhaseVocoderHead, frame_numbers, hann_lobe,
                                   peak_frequency, peak_locked_phase, peak_owner, wrap_phase)

SR, N_FFT, HOP = 44100, 1024, 256


def partial_frames(head: PhaseVocoderHead, freq: float, frames: int, corrections: bool):
    """Head input for one steady partial at ``freq``: the log magnitudes of the analysis STFT
    of that sine (its window's main lobe and side lobes) and, when ``corrections``, each bin's
    frequency offset from the partial (the ideal decoder output); otherwise zero corrections
    (every bin advances at its own centre frequency, as an untrained head does)."""
    bins = head.bins
    with torch.no_grad():
        spectrum = STFTAnalysis(N_FFT, HOP)(torch.from_numpy(sine(freq, 4 * N_FFT))[None, None])
    re, im = spectrum[0, :, -1].double().chunk(2)
    logmag = torch.log(torch.sqrt(re ** 2 + im ** 2) + 1e-9) + 3.0
    k = torch.arange(bins, dtype=torch.float64)
    offset_rad = 2 * math.pi * (freq * N_FFT / SR - k) * HOP / N_FFT    # radians per hop
    wrapped = torch.atan2(torch.sin(offset_rad), torch.cos(offset_rad))
    # pi * tanh(c) = wrapped  ->  c = atanh(wrapped / pi), kept just inside the bound
    corr = torch.atanh((wrapped / math.pi).clamp(-0.999999, 0.999999)) if corrections \
        else torch.zeros_like(k)
    x = torch.stack([logmag, corr, torch.zeros_like(k)]).float()     # (3, bins)
    return x.reshape(1, 3 * bins, 1).repeat(1, 1, frames)


def level_range_db(audio: np.ndarray, window: int = SR // 10) -> float:
    """max/min RMS of consecutive 100-ms windows, in dB."""
    rms = np.sqrt(np.mean(audio[: audio.size // window * window].reshape(-1, window) ** 2, axis=1))
    return float(20 * np.log10(rms.max() / (rms.min() + 1e-12)))


def envelope_ripple(audio: np.ndarray) -> float:
    """(max - min) / mean of the amplitude envelope (|analytic signal|), ends trimmed."""
    spectrum = np.fft.fft(audio.astype(np.float64))
    spectrum[audio.size // 2 + 1:] = 0
    spectrum[1:(audio.size + 1) // 2] *= 2
    envelope = np.abs(np.fft.ifft(spectrum))[N_FFT:-N_FFT]
    return float((envelope.max() - envelope.min()) / envelope.mean())


def sine(freq: float, n: int) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / SR).astype(np.float32)


def offline_and_streamed(head, x):
    """(offline output, output streamed in uneven frame blocks incl. empty ones, last state)."""
    with torch.no_grad():
        offline = head(x)
        state, outs = head.init_state(x.shape[0]), []
        for lo, hi in [(0, 1), (1, 1), (1, 17), (17, 18), (18, x.shape[-1])]:
            y, state = head.step(x[..., lo:hi], state)
            outs.append(y)
    return offline, torch.cat(outs, -1), state


@pytest.mark.parametrize("freq", [220.0, 331.7, 1234.5])
def test_partial_between_bins_is_one_coherent_sine(freq):
    head = PhaseVocoderHead(N_FFT, HOP)
    frames = 200
    with torch.no_grad():
        audio = head(partial_frames(head, freq, frames, corrections=True))[0, 0].numpy()
    steady = audio[N_FFT * 2: frames * HOP - N_FFT * 2]
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size)))
    peak_hz = np.argmax(spectrum) * SR / steady.size
    assert abs(peak_hz - freq) < 3.0
    # one line: everything further than 10 Hz from the partial is at least 30 dB down
    freqs = np.fft.rfftfreq(steady.size, 1.0 / SR)
    far = np.abs(freqs - freq) > 10.0
    assert 20 * np.log10(spectrum[far].max() / spectrum.max()) < -30.0
    # a steady partial: its amplitude envelope is flat (v1's hop-rate pulse train is ~100 %)
    assert envelope_ripple(steady) < 0.1
    # and its level is steady: the RMS of 100-ms windows varies by well under 1 dB
    assert level_range_db(steady) < 0.5


def test_without_corrections_a_between_bins_partial_is_not_a_sine():
    """With every bin at its own centre frequency (what an untrained head does), a partial
    between bins beats: the corrections are what carry pitch."""
    head = PhaseVocoderHead(N_FFT, HOP)
    freq = 331.7
    with torch.no_grad():
        audio = head(partial_frames(head, freq, 200, corrections=False))[0, 0].numpy()
    steady = audio[N_FFT * 2: 200 * HOP - N_FFT * 2]
    assert envelope_ripple(steady) > 0.5  # bins at 43 Hz spacing beat against each other


def test_head_streams_exactly_and_wraps_its_phase_state():
    torch.manual_seed(0)
    head = PhaseVocoderHead(N_FFT, HOP)
    x = torch.randn(2, 3 * head.bins, 60)
    offline, streamed, state = offline_and_streamed(head, x)
    assert (streamed - offline).abs().max() <= 1e-4
    phase = state["phase"]
    assert phase.shape == (2, head.bins, 1)
    assert float(phase.min()) >= 0.0 and float(phase.max()) < 2 * math.pi


def test_wrap_phase_range():
    values = torch.tensor([-7.0, -1e-9, 0.0, 3.0, 2 * math.pi, 1e4], dtype=torch.float64)
    wrapped = wrap_phase(values)
    assert torch.all(wrapped >= 0) and torch.all(wrapped < 2 * math.pi)
    assert torch.allclose(torch.cos(wrapped), torch.cos(values))


# ---------------------------------------------------------------- the harmonic comb (v2 "harmonic")
def comb_frames(head: HarmonicHead, f0: float, frames: int, partials: int, total: float):
    """Head input: phase-vocoder part silent, f0 fixed, ``total`` amplitude spread evenly over
    the first ``partials`` partials."""
    x = torch.zeros(1, 3 * head.bins + head.extra_channels, frames)
    x[:, :head.bins] = -30.0                                    # log magnitudes: silence
    pv = 3 * head.bins
    x[:, pv] = torch.logit(torch.tensor(math.log2(f0 / F0_LOWEST_HZ) / F0_OCTAVES))
    x[:, pv + 1] = 4.0 + math.log(total)                          # amplitude = exp(level - 4)
    x[:, pv + 2 + partials:] = -30.0                              # other partials off
    return x


@pytest.mark.parametrize("f0", [98.0, 331.7, 1234.5])
def test_harmonic_comb_draws_partials_at_multiples_of_f0_at_the_asked_level(f0):
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=16)
    frames, partials, total = 200, 3, 0.6
    with torch.no_grad():
        audio = head(comb_frames(head, f0, frames, partials, total))[0, 0].numpy()
    steady = audio[N_FFT * 2: frames * HOP - N_FFT * 2]
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size)))
    freqs = np.fft.rfftfreq(steady.size, 1.0 / SR)
    for h in range(1, partials + 1):
        near = np.abs(freqs - h * f0) < 3.0
        assert spectrum[near].max() > 0.5 * spectrum.max()       # every partial is there
    # nothing else: away from the partials everything is at least 30 dB down
    far = np.all([np.abs(freqs - h * f0) > 10.0 for h in range(1, partials + 1)], axis=0)
    assert 20 * np.log10(spectrum[far].max() / spectrum.max()) < -30.0
    # amplitude units: three equal sines of total amplitude 0.6 have RMS sqrt(3 / 2) * 0.2
    assert abs(np.sqrt(np.mean(steady ** 2)) / (math.sqrt(1.5) * total / partials) - 1) < 0.02


def test_one_partial_is_a_steady_sine_without_hop_buzz():
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=8)
    with torch.no_grad():
        audio = head(comb_frames(head, 443.3, 200, 1, 0.5))[0, 0].numpy()
    steady = audio[N_FFT * 2: 200 * HOP - N_FFT * 2]
    assert envelope_ripple(steady) < 0.05
    assert level_range_db(steady) < 0.2


def test_partials_above_the_top_frequency_are_silent():
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=64, top_hz=4000.0)
    with torch.no_grad():
        audio = head(comb_frames(head, 500.0, 120, 64, 0.5))[0, 0].numpy()
    steady = audio[N_FFT * 2: 120 * HOP - N_FFT * 2]
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size)))
    freqs = np.fft.rfftfreq(steady.size, 1.0 / SR)
    assert 20 * np.log10(spectrum[freqs > 4100].max() / spectrum.max()) < -40.0
    assert spectrum[np.abs(freqs - 3500) < 3].max() > 0.3 * spectrum.max()


def test_harmonic_head_streams_exactly_with_its_f0_phase_state():
    torch.manual_seed(1)
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=12)
    x = torch.randn(2, 3 * head.bins + head.extra_channels, 60)
    offline, streamed, state = offline_and_streamed(head, x)
    assert (streamed - offline).abs().max() <= 1e-4
    assert state["f0_phase"].shape == (2, 1, 1)
    assert 0.0 <= float(state["f0_phase"].min()) and float(state["f0_phase"].max()) < 2 * math.pi


def test_f0_gets_a_gradient_from_the_spectrum_and_nothing_is_nan():
    """The lobe's removable singularities (offsets 0 and +-1 bin) give finite gradients."""
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=8)
    x = comb_frames(head, 44100 / 1024 * 5, 12, 4, 0.5)   # partials exactly on bins: offset 0
    x.requires_grad_(True)
    head(x).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[:, 3 * head.bins].abs().sum() > 0                 # f0 logit
    values = hann_lobe(torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0, 1e-5]))
    assert torch.allclose(values[:3], torch.tensor([1.0, 0.5, 0.5]), atol=1e-4)
    assert abs(float(values[4])) < 1e-6


def test_comb_amplitude_target_is_the_inputs_own_spectrum_at_the_partials():
    """The comb drawing a tone's partials at their amplitudes scores near 0 against that tone;
    drawing them 40 dB too quiet (what the spectral losses drove v2p to) scores ~log(100)."""
    from star_plugin.pitch import comb_amplitude_distance
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=8)
    f0, frames, partials, total = 220.0, 120, 3, 0.6
    x = comb_frames(head, f0, frames, partials, total)
    with torch.no_grad():
        tone = head(x)[..., N_FFT - HOP:]                   # aligned with the head's frames
        tone = torch.nn.functional.pad(tone, (0, frames * HOP - tone.shape[-1]))
        frequency, peaks = head.partial_peaks(x)
        right = comb_amplitude_distance(frequency[:, :partials], peaks[:, :partials], tone,
                                        SR, N_FFT, HOP)
        quiet = comb_amplitude_distance(frequency[:, :partials], 0.01 * peaks[:, :partials],
                                        tone, SR, N_FFT, HOP)
    assert float(right) < 0.2
    assert abs(float(quiet) - math.log(100.0)) < 0.3


def test_bin_centre_phase_ignores_corrections_and_streams_exactly():
    """learned_phase=False: the corrections and offsets have no effect (every bin advances at
    its centre frequency), and streaming equals offline."""
    torch.manual_seed(2)
    head = PhaseVocoderHead(N_FFT, HOP, learned_phase=False)
    x = torch.randn(2, 3 * head.bins, 40)
    other = x.clone()
    other[:, head.bins:] = torch.randn_like(other[:, head.bins:])  # new corrections, offsets
    with torch.no_grad():
        assert torch.equal(head(x), head(other))
        assert not torch.equal(PhaseVocoderHead(N_FFT, HOP)(x), PhaseVocoderHead(N_FFT, HOP)(other))
    offline, streamed, _ = offline_and_streamed(head, x)
    assert (streamed - offline).abs().max() <= 1e-4


def test_comb_amplitude_counts_only_partials_the_head_can_draw():
    """A partial above the head's fade (here the 9th, at 8.1 kHz) is in the input but the head
    cannot draw it: with max_hz=drawable_hz it is not counted, so drawing the rest right
    scores near 0; counted (max_hz None), it sets a floor the head cannot get under."""
    from star_plugin.pitch import comb_amplitude_distance
    head = HarmonicHead(N_FFT, HOP, SR, harmonics=9)
    f0, frames = 900.0, 120
    x = comb_frames(head, f0, frames, 9, 0.6)
    with torch.no_grad():
        tone = head(x)[..., N_FFT - HOP:]
        tone = torch.nn.functional.pad(tone, (0, frames * HOP - tone.shape[-1]))
        t = torch.arange(tone.shape[-1]) / SR
        tone = tone + 0.05 * torch.sin(2 * math.pi * 9 * f0 * t)    # above the fade
        frequency, peaks = head.partial_peaks(x)
        counted = comb_amplitude_distance(frequency, peaks, tone, SR, N_FFT, HOP)
        drawable = comb_amplitude_distance(frequency, peaks, tone, SR, N_FFT, HOP,
                                           head.drawable_hz)
    assert 9 * f0 > head.drawable_hz > 8 * f0
    assert float(drawable) < 0.2 < float(counted)


# ---------------------------------------------------------------- the peak-locked head (v3)
def sine_magnitude(freq: float, frames: int, amplitude: float = 0.5) -> torch.Tensor:
    """The analysis magnitude of a steady sine (1, bins, frames): what an ideal decoder gives."""
    with torch.no_grad():
        spectrum = STFTAnalysis(N_FFT, HOP)(
            torch.from_numpy(amplitude * sine(freq, (frames + 4) * HOP))[None, None])
    re, im = spectrum.chunk(2, dim=1)
    return torch.sqrt(re ** 2 + im ** 2)[..., 4:]


def test_every_bin_of_a_lobe_finds_its_peak():
    logmag = torch.log(sine_magnitude(331.7, 3) + sine_magnitude(1234.5, 3) + 1e-6)
    owner = peak_owner(logmag)[0, :, -1]
    for freq in (331.7, 1234.5):
        top = int(round(freq * N_FFT / SR))
        lobe = range(top - 2, top + 3)
        assert all(int(owner[k]) == top for k in lobe), (freq, owner[top - 3:top + 4])
        # the parabola lands within a tenth of a bin of the partial
        estimate = peak_frequency(logmag, peak_owner(logmag))[0, top, -1]
        assert abs(float(estimate) - freq * N_FFT / SR) < 0.1


@pytest.mark.parametrize("freq", [220.0, 331.7, 1234.5])
def test_peak_locked_phase_draws_a_partial_between_bins_at_its_level(freq):
    """From the magnitude alone: one coherent sine at the partial's frequency, at the input's
    level (each bin at its own centre frequency beats and loses level)."""
    frames = 200
    magnitude = sine_magnitude(freq, frames)
    phase, _ = peak_locked_phase(magnitude, torch.zeros(1, magnitude.shape[1], 1), HOP, N_FFT)
    head = PhaseVocoderHead(N_FFT, HOP)
    spectrum = head._from_centre(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
    with torch.no_grad():
        audio = head.synthesis(spectrum)[0, 0].numpy()
    steady = audio[N_FFT * 2: frames * HOP - N_FFT * 2]
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(steady.size)))
    freqs = np.fft.rfftfreq(steady.size, 1.0 / SR)
    assert abs(freqs[np.argmax(spectrum)] - freq) < 3.0
    assert 20 * np.log10(spectrum[np.abs(freqs - freq) > 10.0].max() / spectrum.max()) < -30.0
    rms_db = 20 * np.log10(np.sqrt(np.mean(steady ** 2)) / (0.5 / math.sqrt(2)))
    assert abs(rms_db) < 0.5, rms_db
    assert level_range_db(steady) < 0.5


def test_a_smooth_spectrum_renders_as_noise_not_as_a_pulse_per_frame():
    """Bins on the slope of a smooth spectrum, far from any peak, get scrambled phases: locked
    to one bin they made one impulse per frame (a buzz at the frame rate)."""
    frames, k = 400, torch.arange(N_FFT // 2 + 1, dtype=torch.float32)
    magnitude = (5.0 * torch.exp(-k / 120.0))[None, :, None].expand(1, -1, frames).contiguous()
    phase, _ = peak_locked_phase(magnitude, torch.zeros(1, magnitude.shape[1], 1), HOP, N_FFT)
    head = PhaseVocoderHead(N_FFT, HOP)
    spectrum = head._from_centre(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
    with torch.no_grad():
        audio = head.synthesis(spectrum)[0, 0, 2 * N_FFT:].numpy()
    assert hop_buzz(audio, SR, (SR / HOP, SR / (4 * HOP))) < 4.0
    # and the scrambled phases differ from frame to frame (no steady tone per bin)
    steps = torch.diff(phase[0, 200:210].double(), dim=-1)
    assert float(steps.std(dim=-1).min()) > 0.5


def test_frame_numbers_count_on_and_wrap():
    like = torch.zeros(2, 3, 5)
    numbers = frame_numbers(torch.tensor([[[FRAME_PERIOD - 2]], [[7.0]]]), 4, like)
    assert numbers[0, 0].tolist() == [FRAME_PERIOD - 2, FRAME_PERIOD - 1, 0.0, 1.0]
    assert numbers[1, 0].tolist() == [7.0, 8.0, 9.0, 10.0]


def peak_locked_input(head: PeakLockedHead, frames: int, f0: float, envelope: float,
                      below_bin: int):
    """Residual silent, f0 as the pitch code, the harmonic envelope at ``envelope`` below bin
    ``below_bin`` and silent above."""
    x = torch.zeros(1, head.bins + head.extra_channels + 1, frames)
    x[:, :head.bins] = -30.0
    x[:, head.bins:2 * head.bins] = -30.0
    x[:, head.bins:head.bins + below_bin] = envelope
    x[:, -1] = math.log2(f0 / 220.0)
    return x


def test_peak_locked_head_draws_its_comb_and_streams_exactly():
    head = PeakLockedHead(N_FFT, HOP, SR, harmonics=8)
    # partials at 4.55, 9.1, 13.65 bins read the envelope; the fourth (18.2) reads silence
    x = peak_locked_input(head, 80, 196.0, envelope=6.0, below_bin=16)
    offline, streamed, state = offline_and_streamed(head, x)
    assert (streamed - offline).abs().max() <= 1e-4
    assert set(state) == {"phase", "frame", "synthesis"}
    assert float(state["frame"]) == x.shape[-1]     # the next frame's number
    audio = offline[0, 0, N_FFT * 2:].numpy()
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    freqs = np.fft.rfftfreq(audio.size, 1.0 / SR)
    for h in (1, 2, 3):   # the three partials, the fourth is off
        near = np.abs(freqs - h * 196.0) < 5.0
        assert 20 * np.log10(spectrum[near].max() / spectrum.max()) > -3.0
    assert 20 * np.log10(spectrum[np.abs(freqs - 4 * 196.0) < 5.0].max() / spectrum.max()) < -40
    # magnitude() is what the synthesis draws: lobes at h x f0, nothing at the fourth partial
    magnitude = head.magnitude(x)[0][0, :, -1]
    assert magnitude.shape == (head.bins,)
    for h, present in ((1, True), (2, True), (3, True), (4, False)):
        position = h * 196.0 * N_FFT / SR
        near = magnitude[int(position) - 1:int(position) + 3].max() / magnitude.max()
        assert (float(near) > 0.5) == present, (h, float(near))


def test_partials_read_the_harmonic_envelope_between_bins():
    """A partial's peak is the envelope read at h x f0 (linear in log between the two bins
    around it), whatever the f0: the gradient reaches exactly those two bins."""
    head = PeakLockedHead(N_FFT, HOP, SR, harmonics=2)
    x = peak_locked_input(head, 1, 100.0, envelope=0.0, below_bin=0)
    x[:, head.bins:2 * head.bins, 0] = torch.arange(head.bins, dtype=torch.float32) * 0.1 - 3.0
    x.requires_grad_(True)
    frequency, peaks = head.partial_peaks(x)
    position = frequency[0, :, 0] * N_FFT / SR                     # 2.32 and 4.64 bins
    expected = torch.exp(position * 0.1 - 3.0 - 6.0)
    assert torch.allclose(peaks[0, :, 0], expected, rtol=1e-4)
    peaks[0, 0, 0].backward()
    touched = torch.nonzero(x.grad[0, head.bins:2 * head.bins, 0]).flatten().tolist()
    assert touched == [2, 3]
