"""The metrics that hear pitch, level and hop-rate buzz (``star_plugin.metrics``): FSC,
level error and hop buzz on signals whose answer is known."""
import math

import numpy as np
import pytest

from star_plugin.metrics import fine_structure_correlation, hop_buzz, level_error_db

RATE = 44100
RATES = (43.07, 172.27)  # the bundled model's latent frame rate and STFT hop rate


def seconds(n=1.0, rate=RATE):
    return np.arange(int(n * rate)) / rate


def sine(f0, n=1.0, rate=RATE, amp=0.5):
    return amp * np.sin(2 * np.pi * f0 * seconds(n, rate))


def harmonic(f0, n=1.0, rate=RATE, partials=12):
    """A sawtooth-like tone: partials k f0 at amplitude 0.3 / k (below Nyquist)."""
    t = seconds(n, rate)
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t)
               for k in range(1, partials + 1) if k * f0 < rate / 2)


# ----------------------------------------------------------------------------- FSC

def test_fsc_of_a_signal_with_itself_is_one():
    x = sine(440)
    assert fine_structure_correlation(x, x, RATE) == pytest.approx(1.0)
    h = harmonic(220)[None]  # (channels, samples) works as well as 1-D
    assert fine_structure_correlation(h, h.copy(), RATE) == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [8000, 16000, RATE])
@pytest.mark.parametrize("gain", [0.5, 0.01, 3.0])
def test_fsc_ignores_level(rate, gain):
    # the 17-bin average removes a constant dB offset, also where the 80-4000 Hz band reaches
    # Nyquist (8 kHz: a zero-padded average used to bias the bins there), and the dB floor
    # follows each signal's level (an absolute floor gave 0.994 for a clean 6 dB quieter copy)
    h = harmonic(200, rate=rate).astype(np.float32)  # float32: a quantisation floor as in files
    assert fine_structure_correlation(gain * h, h, rate) == pytest.approx(1.0, abs=1e-9)


def test_fsc_of_a_detuned_harmonic_tone_is_low():
    ref = harmonic(220)
    assert fine_structure_correlation(harmonic(220 * 2 ** (1 / 12)), ref, RATE) < 0.2
    # a different pitch in the same envelope scores far below a slightly noisy copy
    noisy = ref + 0.003 * np.random.default_rng(1).standard_normal(ref.size)
    assert fine_structure_correlation(noisy, ref, RATE) > 0.8


def test_fsc_of_unrelated_noise_is_near_zero():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(RATE), rng.standard_normal(RATE)
    assert abs(fine_structure_correlation(a, b, RATE)) < 0.1


def test_fsc_silence():
    x = sine(440)
    assert math.isnan(fine_structure_correlation(x, np.zeros_like(x), RATE))  # silent input
    assert fine_structure_correlation(np.zeros_like(x), x, RATE) == 0.0  # silent output


# ----------------------------------------------------------------------------- level

def test_level_error_of_half_amplitude_is_minus_6_db():
    h = harmonic(220)
    assert level_error_db(0.5 * h, h) == pytest.approx(-6.0206, abs=1e-4)
    assert level_error_db(2.0 * h, h) == pytest.approx(6.0206, abs=1e-4)
    assert level_error_db(h, h) == pytest.approx(0.0, abs=1e-12)
    stereo = np.stack([h, 0.5 * h])
    assert level_error_db(0.5 * stereo, stereo) == pytest.approx(-6.0206, abs=1e-4)


def test_level_error_of_silent_input_is_nan():
    h = harmonic(220)
    assert math.isnan(level_error_db(h, np.zeros_like(h)))


# ----------------------------------------------------------------------------- hop buzz

def test_tone_modulated_at_the_hop_rate_buzzes():
    plain = sine(440)
    modulated = (1 + 0.5 * np.sin(2 * np.pi * 172.27 * seconds())) * plain
    b_plain, b_mod = hop_buzz(plain, RATE, RATES), hop_buzz(modulated, RATE, RATES)
    assert b_plain < 10
    assert b_mod > 100 * b_plain
    # the figure looks only at the given rates: modulation at 172 Hz is not seen at 43 Hz
    assert hop_buzz(modulated, RATE, (43.07,)) < 10


def test_hop_buzz_of_a_pulse_train_at_the_hop_rate():
    # the artefact of issue 15: a comb of pulses at the STFT hop; a noise envelope does not
    rng = np.random.default_rng(0)
    noise = 0.1 * rng.standard_normal(RATE)
    pulses = np.zeros(RATE)
    pulses[::256] = 1.0  # 44100 / 256 = 172.27 Hz
    buzzing = noise * (1 + np.convolve(pulses, np.hanning(128), mode="same"))
    assert hop_buzz(noise, RATE, RATES) < 5
    assert hop_buzz(buzzing, RATE, RATES) > 10 * hop_buzz(noise, RATE, RATES)


def test_hop_buzz_is_level_invariant_and_nan_when_undefined():
    x = harmonic(220) * np.exp(-2 * seconds())
    assert hop_buzz(0.25 * x, RATE, RATES) == pytest.approx(hop_buzz(x, RATE, RATES), rel=1e-6)
    assert math.isnan(hop_buzz(np.zeros(RATE), RATE, RATES))  # silent
    assert math.isnan(hop_buzz(x[: RATE // 20], RATE, RATES))  # shorter than 0.1 s
    assert math.isnan(hop_buzz(x, RATE, ()))  # no rates


def test_frame_energy_distance_measures_level_in_log10_units():
    import torch
    from star_plugin.metrics import frame_energy_distance
    x = torch.randn(2, 1, 8192, generator=torch.Generator().manual_seed(0))
    assert float(frame_energy_distance(x, x)) == 0.0
    quieter = (x * 10 ** (-10 / 20)).requires_grad_()
    distance = frame_energy_distance(quieter, x)
    assert abs(float(distance) - 1.0) < 1e-3      # -10 dB = one decade of energy
    distance.backward()
    assert float((quieter.grad * quieter).sum()) < 0  # raising the level lowers the distance
