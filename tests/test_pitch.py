"""YIN f0 at the model's STFT frames: the harmonic head's training target."""
import math

import numpy as np
import pytest
import torch

from star_plugin.pitch import f0_distance, frame_centres, model_frame_f0

SR, N_FFT, HOP = 44100, 1024, 256
FRAMES = SR // HOP


def tone(f0, seconds=1.0, partials=(1.0, 0.5, 0.25)):
    t = torch.arange(int(SR * seconds)) / SR
    return sum(a * torch.sin(2 * math.pi * (h + 1) * f0 * t + h) for h, a in enumerate(partials))


@pytest.mark.parametrize("f0", [55.0, 110.0, 261.6, 440.0, 987.8, 1760.0])
def test_steady_tones_within_a_tenth_of_a_semitone(f0):
    est, voiced, _ = model_frame_f0(0.3 * tone(f0)[None], SR, N_FFT, HOP, FRAMES)
    inner = slice(8, -8)
    assert voiced[0, inner].all()
    cents = 1200 * torch.log2(est[0, inner] / f0)
    assert cents.abs().max() < 10.0


def test_missing_fundamental_still_reads_the_fundamental():
    est, voiced, _ = model_frame_f0(0.3 * tone(150.0, partials=(0.0, 1.0, 0.8, 0.6))[None],
                                    SR, N_FFT, HOP, FRAMES)
    assert abs(float(est[0, 20:-20].median()) - 150.0) < 1.0


def test_noise_and_silence_are_unvoiced():
    noise = torch.randn(2, SR, generator=torch.Generator().manual_seed(0)) * 0.1
    _, voiced, _ = model_frame_f0(noise, SR, N_FFT, HOP, FRAMES)
    assert voiced.float().mean() < 0.05
    _, voiced, _ = model_frame_f0(torch.zeros(1, SR), SR, N_FFT, HOP, FRAMES)
    assert not voiced.any()


def test_frames_are_centred_where_the_model_frames_are():
    """A switch from 200 to 300 Hz at sample 22050: frames centred well before read 200."""
    x = torch.cat([tone(200.0, 0.5), tone(300.0, 0.5)])[None] * 0.3
    est, _, _ = model_frame_f0(x, SR, N_FFT, HOP, FRAMES)
    centres = frame_centres(FRAMES, N_FFT, HOP)
    before = centres < 22050 - 1200
    after = centres > 22050 + 1200
    assert torch.allclose(est[0, before][5:], torch.tensor(200.0), rtol=5e-3)
    assert torch.allclose(est[0, after][:-5], torch.tensor(300.0), rtol=5e-3)
    assert int(centres[0]) == HOP - N_FFT // 2


def test_f0_distance_is_in_octaves_over_voiced_frames():
    x = (0.3 * tone(220.0))[None, None]                  # (batch, channels, samples)
    right = torch.full((1, 1, FRAMES), 220.0)
    assert float(f0_distance(right, x, SR, N_FFT, HOP)) < 0.01
    octave_up = torch.full((1, 1, FRAMES), 440.0)
    assert abs(float(f0_distance(octave_up, x, SR, N_FFT, HOP)) - 1.0) < 0.01
    silence = torch.zeros(1, 1, SR)
    assert float(f0_distance(octave_up, silence, SR, N_FFT, HOP)) == 0.0


def test_pitch_error_in_cents_between_two_recordings():
    from star_plugin.metrics import pitch_error_cents
    a = (0.3 * tone(220.0)).numpy()[None]
    semitone_up = (0.3 * tone(220.0 * 2 ** (1 / 12))).numpy()[None]
    assert pitch_error_cents(a, a, SR) < 1.0
    assert abs(pitch_error_cents(semitone_up, a, SR) - 100.0) < 3.0
    assert abs(pitch_error_cents(0.2 * a, a, SR)) < 1.0          # level does not matter
    noise = np.random.default_rng(0).normal(0, 0.1, (1, SR))
    assert math.isnan(pitch_error_cents(a, noise, SR))          # nothing voiced to compare


def test_latent_pitch_code_distance_reads_each_latent_frame_at_its_centre():
    from star_plugin.pitch import f0_to_code, latent_f0_distance
    hop = 1024
    x = torch.cat([tone(110.0, 0.5), tone(440.0, 0.5)])[None, None] * 0.3
    frames = x.shape[-1] // hop
    centres = torch.arange(frames) * hop + hop // 2
    truth = torch.where(centres < SR // 2, torch.tensor(110.0), torch.tensor(440.0))
    code = f0_to_code(truth)[None]
    assert float(code.min()) == -1.0 and float(code.max()) == 1.0   # octaves from A3
    assert float(latent_f0_distance(code, x, SR, hop)) < 0.05
    assert abs(float(latent_f0_distance(code + 0.5, x, SR, hop)) - 0.5) < 0.05


@pytest.mark.parametrize("f0", [55.0, 146.8, 440.0, 1318.5])
def test_causal_tracker_codes_steady_tones_within_ten_cents(f0):
    from star_plugin.pitch import CausalPitchTracker, f0_to_code
    tracker = CausalPitchTracker(SR, 1024)
    assert tracker.factor == 4                       # decimated to 11025 Hz
    with torch.no_grad():
        code = tracker((0.3 * tone(f0))[None, None, :43 * 1024])[0, 0]
    steady = code[4:]                                # once the window is full of the tone
    cents = 1200 * (steady - f0_to_code(torch.tensor(f0)))
    assert cents.abs().max() < 10.0, cents


def test_causal_tracker_is_zero_for_noise_and_silence_and_sees_no_future():
    from star_plugin.pitch import CausalPitchTracker
    tracker = CausalPitchTracker(SR, 1024)
    noise = torch.randn(1, 1, 20 * 1024, generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        assert (tracker(noise) == 0).float().mean() > 0.9
        assert (tracker(torch.zeros(1, 2, 8 * 1024)) == 0).all()
        # a tone starting at frame 10: the frames before it are unchanged (causal)
        x = torch.zeros(1, 1, 20 * 1024)
        x[..., 10 * 1024:] = 0.3 * tone(220.0)[:10 * 1024]
        assert (tracker(x)[0, 0, :10] == 0).all() and tracker(x)[0, 0, 14:].abs().max() < 0.01


def test_pitch_channel_is_the_code_with_a_tiny_sigma():
    from conftest import tiny_model
    from star_plugin.pitch import PITCH_LOGSIGMA, f0_to_code
    model = tiny_model(family="spectral", backbone="mamba", decoder_blocks=1, head="harmonic",
                       harmonics=4, pitch_channel=2, sample_rate=SR, n_fft=1024, stft_hop=256,
                       frame_strides=[4])
    x = (0.3 * tone(330.0))[None, None, :30 * 1024]
    with torch.no_grad():
        latent = model.encode(x)
    code = latent.mean[0, 2, 5:25]
    assert (1200 * (code - f0_to_code(torch.tensor(330.0)))).abs().max() < 10.0
    assert torch.all(latent.logsigma[0, 2] == PITCH_LOGSIGMA)
    assert latent.mean[0, 1].std() > 0 and not torch.allclose(latent.mean[0, 3], code[:1])


def test_harmonic_head_reads_the_pitch_channel_directly():
    """With a pitch channel the head's f0 is the code plus a bounded learned correction: with
    the correction's weights at zero, the head plays exactly the tracked pitch."""
    from conftest import tiny_model
    model = tiny_model(family="spectral", backbone="mamba", decoder_blocks=1, head="harmonic",
                       harmonics=4, pitch_channel=0, sample_rate=SR, n_fft=1024, stft_hop=256,
                       frame_strides=[4])
    head = model.decoder.layers[-1].inner
    projection = model.decoder.layers[-2]
    with torch.no_grad():
        projection.harmonic.weight[0].zero_()        # the f0 correction row (mono model)
        projection.harmonic.bias[0] = 0.0
        x = (0.3 * tone(261.6))[None, None, :30 * 1024]
        _, latent, features = model.forward_with_head(x, sample=False)
        f0 = head.f0(features)[0, 0, 4 * 5:4 * 25]      # head frames of latent frames 5..24
    assert (1200 * torch.log2(f0 / 261.6)).abs().max() < 10.0
