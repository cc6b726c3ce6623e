"""The v3 decoder's analysis targets and error measures (star_plugin.analysis), and the stage-1
trainer that uses them (no audio rendered in the step)."""
import csv
import math

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN_MODEL
from star_plugin.analysis import (DB, analyse, head_errors, magnitude_errors, partial_error_db,
                                  power_envelope)
from star_plugin.spectral import stft_magnitude
from star_plugin.errors import ConfigError
from star_plugin.model_io import load_vae
from star_plugin.synthesis import PeakLockedHead
from star_plugin.training.trainer import Trainer
from test_trainer import tiny_train_config

SR, N_FFT, HOP = 44100, 1024, 256


def tone(f0: float, seconds: float = 1.0, partials=(1.0, 0.5, 0.25), noise: float = 0.0):
    t = np.arange(int(seconds * SR)) / SR
    x = sum(a * np.sin(2 * np.pi * (h + 1) * f0 * t) for h, a in enumerate(partials))
    x = x + noise * np.random.default_rng(0).standard_normal(t.size)
    return torch.from_numpy((0.2 * x).astype(np.float32))[None, None]


def test_targets_of_a_harmonic_tone():
    head = PeakLockedHead(N_FFT, HOP, SR, harmonics=8)
    target = analyse(tone(220.0), SR, N_FFT, HOP, 8, head.drawable_hz)
    steady = slice(10, -4)
    assert target.magnitude.shape[1] == N_FFT // 2 + 1
    assert bool(target.voiced[..., steady].all())
    assert abs(float(target.f0[..., steady].median()) - 220.0) < 1.0
    # the partials' magnitudes fall as asked: 1, 1/2, 1/4 -> -6 dB, -12 dB (within 1.5 dB:
    # the lobe's top is sampled at the nearest bin), and partials 4.. are far down
    partial_db = DB * torch.log(target.partial[0, :, 20] / target.partial[0, 0, 20])
    assert abs(float(partial_db[1]) + 6.0) < 1.5 and abs(float(partial_db[2]) + 12.0) < 1.5
    assert float(partial_db[3:].max()) < -30.0
    assert bool(target.partial_mask[..., steady].all())


def test_error_measures_read_what_was_changed():
    target = analyse(tone(330.0, noise=0.01), SR, N_FFT, HOP, 8, 7800.0)
    same = magnitude_errors(target.magnitude, target)
    assert all(float(v) < 1e-4 for v in same.values())
    louder = magnitude_errors(target.magnitude * 2.0, target)        # +6 dB everywhere
    assert abs(float(louder["loudness_db"]) - 6.02) < 0.1
    assert abs(float(louder["envelope_db"]) - 6.02) < 0.5
    assert float(louder["fine_db"]) < 0.3                              # same fine structure
    # the fine structure flattened to its envelope (the peaks gone): fine error, not loudness
    flat = torch.exp(torch.nn.functional.avg_pool1d(
        torch.log(target.magnitude + 1e-4).transpose(1, 2), 7, 1, 3, count_include_pad=False)
        .transpose(1, 2))
    blurred = magnitude_errors(flat, target)
    assert float(blurred["fine_db"]) > 3.0 * float(louder["fine_db"]) + 2.0
    # the envelope is the power's: a smooth spectrum on it has no envelope error and about the
    # input's power (on the log's mean it would be several dB too quiet)
    smooth = magnitude_errors(torch.exp(power_envelope(target.magnitude)), target)
    assert float(smooth["envelope_db"]) < 1.5 and float(smooth["loudness_db"]) < 1.5
    assert float(blurred["loudness_db"]) > float(smooth["loudness_db"]) + 2.0
    assert float(partial_error_db(target.partial * 10 ** (3 / 20), target)) == pytest.approx(3.0, abs=0.15)
    # the compressed error: twice the magnitude is 2 ** (1/3) - 1 of the cube roots; one loud
    # spike where the input has nothing raises the frame's power error down to zero but costs
    # here (the decoder learned exactly that cheat from a frame-power term)
    # (at most: the per-frame reference has a floor, so quiet frames weigh less)
    assert 0.15 < float(louder["compressed"]) <= 2 ** (1 / 3) - 1
    quiet = target.magnitude * 10 ** (-6 / 20)
    spike = quiet.clone()
    missing = target.magnitude.pow(2).sum(1) - quiet.pow(2).sum(1)
    spike[:, 300] = torch.sqrt(spike[:, 300] ** 2 + missing)       # 6 dB of power in one bin
    quiet_errors, spike_errors = magnitude_errors(quiet, target), magnitude_errors(spike, target)
    assert float(spike_errors["loudness_db"]) < 0.1 < float(quiet_errors["loudness_db"])
    assert float(spike_errors["compressed"]) > float(quiet_errors["compressed"])


def test_stage1_errors_drive_the_heads_magnitudes():
    """head_errors on a PeakLockedHead input: gradients reach the residual and the harmonic
    envelope at the partials of the input's f0 (the code says 220 Hz, the tone is 196 Hz)."""
    head = PeakLockedHead(N_FFT, HOP, SR, harmonics=8)
    audio = tone(196.0)
    target = analyse(audio, SR, N_FFT, HOP, 8, head.drawable_hz)
    t = target.magnitude.shape[-1]
    x = torch.zeros(1, head.bins + head.extra_channels + 1, t, requires_grad=True)
    errors = head_errors(head, x, target, partials_on_analysis_f0=True)
    sum(errors[k] for k in ("envelope_db", "fine_db", "loudness_db", "partial_db")).backward()
    grad = x.grad[0].abs().sum(-1)
    assert float(grad[:head.bins].sum()) > 0                          # residual
    envelope = grad[head.bins:2 * head.bins]
    # the envelope learns around the partials only: the input's (196 Hz x h: bins 4.55, 9.1)
    # through the partial loss, the drawn comb's (220 Hz x h: bins 5.1, 10.2) through the
    # magnitude losses; nothing in between
    assert float(envelope[4:6].sum()) > 0 and float(envelope[9:11].sum()) > 0
    assert float(envelope[7:9].sum()) == 0
    # with the code at 220 Hz (x's last channel 0) the own-f0 error reads ~200 cents off 196 Hz
    own = head_errors(head, x.detach(), target)["head_f0_cents"]
    assert abs(float(own) - 1200 * math.log2(220 / 196)) < 10.0


def test_stage1_training_renders_no_audio_and_logs_the_target_errors(tiny_corpus, tmp_path):
    model = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="peak-locked", harmonics=4,
                 pitch_channel=0)
    loss = {"render": False, "magnitude_envelope": 0.1, "magnitude_fine": 0.3,
            "loudness": 0.05, "partials": 0.1, "f0": 1.0}
    run = tmp_path / "run"
    trainer = Trainer(tiny_train_config(tiny_corpus, steps=3, model=model, loss=loss,
                                        eval={"every_steps": 3}), run)
    rendered = []
    head = trainer.model.decoder.layers[-1]
    hook = head.register_forward_hook(lambda *_: rendered.append(trainer.model.training))
    trainer.fit()
    hook.remove()
    assert not any(rendered)       # the head synthesised audio only in eval mode
    rows = list(csv.DictReader(open(run / "log.csv")))
    for key in ("envelope_db", "fine_db", "loudness_db", "partial_db", "head_f0_cents"):
        assert all(math.isfinite(float(r[key])) for r in rows), key
    assert all(r["mel"] == "" for r in rows)
    last_eval = (run / "eval.jsonl").read_text().splitlines()[-1]
    assert '"fine_db"' in last_eval and '"partial_db"' in last_eval
    with pytest.raises(ConfigError, match="peak-locked"):
        Trainer(tiny_train_config(tiny_corpus, steps=1, loss={"render": False}), tmp_path / "x")


def test_stft_magnitude_matches_the_models_analysis_frames():
    audio = tone(440.0, seconds=0.2)
    magnitude = stft_magnitude(audio, N_FFT, HOP)
    assert magnitude.shape == (1, N_FFT // 2 + 1, audio.shape[-1] // HOP)


def test_stage1_resumes_exactly(tiny_corpus, tmp_path):
    model = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="peak-locked", harmonics=4,
                 pitch_channel=0)
    loss = {"render": False, "magnitude_compressed": 3.0, "magnitude_envelope": 0.1,
            "magnitude_fine": 0.3, "partials": 0.1, "f0": 1.0, "rate_target_bps": 100}

    def config():
        return tiny_train_config(tiny_corpus, steps=4, model=model, loss=loss)
    straight = Trainer(config(), tmp_path / "a").fit()
    Trainer(config(), tmp_path / "b").fit(until=2)
    resumed = Trainer(config(), tmp_path / "b", resume=True)
    assert resumed.step == 2
    a, b = load_vae(straight).state_dict(), load_vae(resumed.fit()).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_head_hidden_layer_continues_a_linear_projection_and_learns(tiny_corpus, tmp_path):
    """A v3 model trained with the linear projection loads into one with ``head_hidden``
    (init_from, not strict): it sounds exactly as before, and stage 1 then trains the new
    layer (its output layer leaves zero)."""
    linear = dict(TINY_TRAIN_MODEL, decoder_blocks=1, head="peak-locked", harmonics=4,
                  pitch_channel=0)
    loss = {"render": False, "magnitude_fine": 1.0}
    first = Trainer(tiny_train_config(tiny_corpus, steps=1, model=linear, loss=loss),
                    tmp_path / "one").fit()
    wide = dict(linear, head_hidden=16)
    trainer = Trainer(tiny_train_config(tiny_corpus, steps=2, model=wide, loss=loss,
                                        init_from=str(first), init_strict=False), tmp_path / "two")
    new = {k for k in trainer.model.state_dict() if k not in load_vae(first).state_dict()}
    assert new and all(".detail." in k for k in new)
    x = 0.1 * torch.randn(1, 1, 4096, generator=torch.Generator().manual_seed(1))
    before = load_vae(first).reconstruct(x)
    assert torch.equal(trainer.model.eval().reconstruct(x), before)
    trained = load_vae(trainer.fit()).state_dict()
    output_layer = [k for k in new if k.endswith("detail.2.weight")]
    assert output_layer and float(trained[output_layer[0]].abs().max()) > 0
    with pytest.raises(ConfigError, match="head_hidden"):
        Trainer(tiny_train_config(tiny_corpus, steps=1, model=dict(linear, head="istft",
                                                                   head_hidden=8)), tmp_path / "x")
