"""The real-time engine: streamed == offline (bounce) delayed by latency_samples at host rates
from 8 to 96 kHz, impulse latency, NaN safety, morph parity and click-free automation."""
import numpy as np
import pytest
import torch

from star_plugin.engine import StreamingEngine, render_offline
from star_plugin.errors import ConfigError
from star_plugin.morph import MorphParams, latent_from_frames

from conftest import tiny_model

MODEL_RATE = 16000
# Streamed and offline resampling are the same soxr filter (the stream's output equals a
# one-shot resampling bit for bit), and model streaming equals offline within 1e-4, so the
# chains agree to ~1e-4 except within a resampler filter length of the signal's ends, where
# a one-shot resampler sees the file end and the stream sees the silence that follows.
TOL = 1e-4
EDGE = 2000


def _model():
    return tiny_model(sample_rate=MODEL_RATE)


def _stream(engine, x, rng, max_block=700):
    lat = engine.latency_samples
    padded = np.concatenate([x, np.zeros((x.shape[0], lat), np.float32)], axis=1)
    outs, pos = [], 0
    while pos < padded.shape[1]:
        n = int(rng.integers(1, max_block))
        block = padded[:, pos:pos + n]
        out = engine.process(block)
        assert out.shape == block.shape and out.dtype == np.float32
        outs.append(out)
        pos += n
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 96000])
@pytest.mark.parametrize("channels", [1, 2])
def test_stream_equals_bounce_delayed_by_latency(rate, channels):
    model = _model()
    params = MorphParams(structure_amount=0.2, texture_amount=0.7, temperature=0.5)
    texture = latent_from_frames(model, torch.randn(1, model.config.latent_channels, 9))
    engine = StreamingEngine(model, rate, channels, backend="torch", params=params,
                             texture_source=texture)
    rng = np.random.default_rng(rate + channels)
    x = (rng.standard_normal((channels, rate // 2)) * 0.3).astype(np.float32)
    streamed = _stream(engine, x, rng)
    bounced = render_offline(model, x, rate, params, texture_source=texture)
    lat = engine.latency_samples
    assert engine.underruns == 0
    assert np.abs(streamed[:, :lat]).max() == 0
    body = slice(EDGE, x.shape[1] - EDGE)
    assert np.abs(streamed[:, lat:][:, body] - bounced[:, body]).max() <= TOL
    assert np.abs(bounced).max() > 1e-2
    # one sample off would not pass: the latency is pinned exactly
    assert np.abs(streamed[:, lat + 1:][:, body] - bounced[:, body]).max() > 10 * TOL


@pytest.mark.parametrize("rate", [MODEL_RATE, 44100, 48000, 22050, 96000])
def test_impulse_arrives_after_exactly_the_reported_latency(rate):
    """The engine's output is the offline render of the impulse, shifted by latency_samples:
    its peak lands where the bounce's peak lands, plus the latency (to the sample)."""
    model = _model()
    engine = StreamingEngine(model, rate, 1, backend="torch",
                             params=MorphParams(texture_amount=0.0))
    x = np.zeros((1, rate // 4), np.float32)
    x[0, rate // 8] = 1.0
    streamed = _stream(engine, x, np.random.default_rng(0), max_block=300)
    bounced = render_offline(model, x, rate, MorphParams(texture_amount=0.0))
    assert np.argmax(np.abs(streamed)) == np.argmax(np.abs(bounced)) + engine.latency_samples


def test_onnx_backend_matches_torch_backend():
    model = _model()
    x = (np.random.default_rng(1).standard_normal((2, 8000)) * 0.3).astype(np.float32)
    engines = {backend: StreamingEngine(model, 48000, 2, backend=backend,
                                        params=MorphParams(temperature=0.3))
               for backend in ("torch", "onnx")}
    assert engines["torch"].latency_samples == engines["onnx"].latency_samples
    outs = {backend: _stream(engine, x, np.random.default_rng(2))
            for backend, engine in engines.items()}
    assert np.abs(outs["torch"]).max() > 1e-2
    assert np.abs(outs["torch"] - outs["onnx"]).max() <= TOL


def test_nan_and_inf_never_reach_the_state():
    model = _model()
    engine = StreamingEngine(model, MODEL_RATE, 1, backend="torch")
    clean = StreamingEngine(model, MODEL_RATE, 1, backend="torch")
    x = (np.random.default_rng(3).standard_normal((1, 4000)) * 0.3).astype(np.float32)
    dirty = x.copy()
    dirty[0, 100:110] = np.nan
    dirty[0, 500] = np.inf
    cleaned = x.copy()
    cleaned[0, 100:110] = 0.0
    cleaned[0, 500] = 0.0
    a = np.concatenate([engine.process(dirty[:, i:i + 64]) for i in range(0, 4000, 64)], 1)
    b = np.concatenate([clean.process(cleaned[:, i:i + 64]) for i in range(0, 4000, 64)], 1)
    assert np.isfinite(a).all()
    assert np.abs(a - b).max() == 0


def test_silence_one_sample_blocks_and_reset():
    model = _model()
    engine = StreamingEngine(model, 44100, 1, backend="torch")
    silent = np.concatenate([engine.process(np.zeros((1, 1), np.float32))
                             for _ in range(3000)], axis=1)
    # one-sample blocks give the bounce of silence (the untrained model's own response to it)
    lat = engine.latency_samples
    assert lat < 3000 and np.abs(silent[:, :lat]).max() == 0 and engine.underruns == 0
    bounced = render_offline(model, np.zeros((1, 6000), np.float32), 44100)
    assert np.isfinite(silent).all()
    assert np.abs(silent[:, lat:] - bounced[:, :3000 - lat]).max() <= TOL
    x = (np.random.default_rng(4).standard_normal((1, 5000)) * 0.3).astype(np.float32)
    engine.reset()
    first = np.concatenate([engine.process(x[:, i:i + 100]) for i in range(0, 5000, 100)], 1)
    engine.reset()
    again = np.concatenate([engine.process(x[:, i:i + 100]) for i in range(0, 5000, 100)], 1)
    assert np.abs(first - again).max() == 0


def test_bad_arguments_get_clear_errors():
    model = _model()
    with pytest.raises(ConfigError, match="sample_rate"):
        StreamingEngine(model, 1000, 1, backend="torch")
    with pytest.raises(ConfigError, match="backend"):
        StreamingEngine(model, MODEL_RATE, 1, backend="jax")
    engine = StreamingEngine(model, MODEL_RATE, 2, backend="torch")
    with pytest.raises(ValueError, match=r"channels=2"):
        engine.process(np.zeros((1, 10), np.float32))
    with pytest.raises(ConfigError, match="texture_amount"):
        engine.morph.set(texture_amount=1.5)


def test_parameter_automation_is_click_free():
    """Jumping the amounts mid-stream (from another thread, in a host) glides frame by frame:
    the output's largest sample-to-sample step stays within the signal's own."""
    model = _model()
    rng = np.random.default_rng(5)
    texture = latent_from_frames(model, torch.randn(1, model.config.latent_channels, 5) * 2)
    t = np.arange(16000) / MODEL_RATE
    x = (0.3 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32)

    def run(automate):
        engine = StreamingEngine(model, MODEL_RATE, 1, backend="torch",
                                 params=MorphParams(texture_amount=0.0),
                                 texture_source=texture)
        outs = []
        for i in range(0, 16000, 128):
            if automate and i // 128 % 20 == 10:
                engine.morph.set(texture_amount=float(rng.uniform(0, 1)),
                                 structure_amount=float(rng.uniform(0, 1)))
            outs.append(engine.process(x[:, i:i + 128]))
        return np.concatenate(outs, axis=1)

    steady = run(False)
    automated = run(True)
    assert np.abs(automated - steady).max() > 1e-3  # the automation did change the sound
    own = max(np.abs(np.diff(steady)).max(), np.abs(np.diff(x)).max())
    assert np.abs(np.diff(automated)).max() <= 1.5 * own


def test_dry_wet_mix_and_output_gain_line_up_with_the_latency():
    """mix=0 gives the input delayed by exactly latency_samples; mix and gain combine the
    aligned dry and wet signals; the offline bounce applies the same rule."""
    model = tiny_model()
    rng = np.random.default_rng(9)
    x = (0.2 * rng.standard_normal((2, 4096))).astype(np.float32)

    def stream(params):
        engine = StreamingEngine(model, 16000, 2, backend="torch", params=params)
        y = np.concatenate([engine.process(x[:, i:i + 300]) for i in range(0, 4096, 300)], 1)
        return y, engine.latency_samples

    dry, lat = stream(MorphParams(mix=0.0))
    np.testing.assert_array_equal(dry[:, lat:], x[:, :4096 - lat])
    wet, _ = stream(MorphParams())
    half, _ = stream(MorphParams(mix=0.5, output_gain_db=-6.0))
    gain = 10 ** (-6 / 20)
    np.testing.assert_allclose(half, gain * (0.5 * wet + 0.5 * dry), atol=1e-6)
    bounce = render_offline(model, x, 16000, MorphParams(mix=0.5, output_gain_db=-6.0))
    np.testing.assert_allclose(bounce[:, :4096 - lat], half[:, lat:], atol=1e-4)
    for bad in (dict(mix=1.5), dict(mix=True), dict(output_gain_db=100.0)):
        with pytest.raises(ConfigError):
            MorphParams(**bad).validate()


def test_parameters_set_between_reset_and_the_first_block_apply_without_a_glide():
    """A host may set parameters after it resets the engine but before playback (an LV2
    session restore does): nothing has sounded yet, so the first block starts at them -- the
    output equals an engine built with those parameters (changes while playing glide:
    test_parameter_automation_is_click_free)."""
    model = tiny_model()
    rng = np.random.default_rng(4)
    x = (0.3 * rng.standard_normal((1, 3000))).astype(np.float32)
    wanted = MorphParams(structure_amount=0.4, temperature=0.7, mix=0.6, output_gain_db=-5.0)

    def stream(engine):
        return np.concatenate([engine.process(x[:, i:i + 1000]) for i in range(0, 3000, 1000)],
                              axis=1)

    built = stream(StreamingEngine(model, 16000, 1, backend="torch", params=wanted))
    late = StreamingEngine(model, 16000, 1, backend="torch")
    late.reset()
    late.morph.set(**wanted.to_dict())
    np.testing.assert_allclose(stream(late), built, atol=1e-6)
