"""The backend seam (``star_plugin.backend``): the same engine, effect, chain, offline render
and texture code runs a torch model and its real ONNX export, with no backend sniffing; the
two agree within 1e-4 (ONNX Runtime vs PyTorch), and a block is guarded once."""
import warnings

import numpy as np
import pytest

from star_plugin.backend import AudioModel, Streamer, TorchModel, open_model
from star_plugin.errors import ConfigError
from star_plugin.guard import BlockSanitizedWarning
from star_plugin.morph import MorphParams, latent_from_frames, texture_from_audio

from conftest import tiny_model

pytest.importorskip("onnxruntime")

RATE = 16000  # the tiny model's rate
TOL = 1e-4
PARAMS = MorphParams(structure_amount=0.2, texture_amount=0.7, temperature=0.5)


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    """{backend: the same tiny model opened for it} (the ONNX one a real export on disk)."""
    from star_plugin.export.exporter import export_model
    from star_plugin.export.runtime import OnnxVAE

    module = tiny_model()
    out = tmp_path_factory.mktemp("seam-onnx")
    export_model(module, out, scan_body="scan")
    return {"torch": open_model(module, "torch"), "onnx": OnnxVAE(out)}


def _audio(channels=2, seconds=0.4, seed=0, rate=RATE):
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)


def _texture(model):
    return texture_from_audio(model, _audio(1, 0.3, seed=7), RATE)


def _both(backends, run):
    """``run(model)`` for each backend -> (torch result, onnx result)."""
    return run(backends["torch"]), run(backends["onnx"])


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.isfinite(a).all() and np.abs(a).max() > 1e-3
    assert np.abs(a - b).max() <= TOL


def test_both_backends_satisfy_the_protocol(backends):
    for name, model in backends.items():
        assert isinstance(model, AudioModel) and model.backend == name
        assert isinstance(model.streamer(2), Streamer)
        assert open_model(model) is model and open_model(model, name) is model
    t, o = backends["torch"], backends["onnx"]
    for fact in ("sample_rate", "hop", "audio_channels", "latent_channels",
                 "structure_channels", "synthesis_delay", "latency_samples", "causal"):
        assert getattr(t, fact) == getattr(o, fact), fact


def test_open_model_takes_a_module_a_name_or_an_opened_model(tmp_path):
    from star_plugin.model_io import save_vae

    module = tiny_model()
    directory = save_vae(module, tmp_path / "tiny")
    assert isinstance(open_model(module), TorchModel)
    assert open_model(directory).latent_channels == module.config.latent_channels
    with pytest.raises(ConfigError, match="backend"):
        open_model(module, "tensorflow")
    with pytest.raises(ConfigError, match="opened model"):
        open_model(42)


def test_an_onnx_model_cannot_become_torch(backends):
    with pytest.raises(ConfigError, match="PyTorch model"):
        open_model(backends["onnx"], "torch")


def test_encode_decode_agree(backends):
    x = _audio(1)[None]
    lt, lo = _both(backends, lambda m: m.encode(x))
    _close(lt.mean.numpy(), lo.mean.numpy())
    yt, yo = _both(backends, lambda m: m.decode(lt.mean.numpy(), num_samples=x.shape[-1]))
    assert isinstance(yt, np.ndarray) and isinstance(yo, np.ndarray)
    _close(yt, yo)


def test_streamers_agree(backends):
    x = _audio(2)[:, None, :]

    def run(model):
        streamer = model.streamer(2)
        return np.concatenate([streamer.process(x[..., i:i + 300])
                               for i in range(0, x.shape[-1], 300)], axis=-1)

    _close(*_both(backends, run))


@pytest.mark.parametrize("rate", [RATE, 44100])
def test_the_same_engine_code_runs_both(backends, rate):
    from star_plugin.engine import StreamingEngine

    x = _audio(2, rate=rate)

    def run(model):
        engine = StreamingEngine(model, rate, 2, backend=model.backend, params=PARAMS,
                                 texture_source=_texture(model))
        assert engine.backend == model.backend and engine.model is model
        return np.concatenate([engine.process(x[:, i:i + 257])
                               for i in range(0, x.shape[1], 257)], axis=1)

    _close(*_both(backends, run))


def test_threaded_engine_runs_both(backends):
    from star_plugin.threaded_engine import ThreadedEngine

    x = _audio(1)

    def run(model):
        with ThreadedEngine(model, RATE, 1, max_block=256, backend=model.backend) as engine:
            outs = []
            for i in range(0, x.shape[1], 256):
                outs.append(engine.process(x[:, i:i + 256]))
                engine.wait_idle()
            assert engine.misses == 0
        return np.concatenate(outs, axis=1)

    _close(*_both(backends, run))


@pytest.mark.parametrize("rate", [RATE, 48000])
def test_render_offline_takes_either_backend(backends, rate):
    from star_plugin.engine import render_offline

    x = _audio(2, rate=rate)
    _close(*_both(backends, lambda m: render_offline(m, x, rate, PARAMS,
                                                     texture_source=_texture(m))))


def test_render_offline_of_a_module_equals_its_torch_model(backends):
    from star_plugin.engine import render_offline

    x = _audio(1)
    module = backends["torch"].module
    np.testing.assert_array_equal(render_offline(module, x, RATE, PARAMS),
                                  render_offline(backends["torch"], x, RATE, PARAMS))


def test_effect_and_chain_run_both(backends):
    from star_plugin.chain import StarChain
    from star_plugin.effects import StarEffect

    x = _audio(2)

    def effect(model):
        return StarEffect(model, PARAMS, texture_source=_texture(model),
                          backend=model.backend)(x, RATE, buffer_size=300)

    def chain(model):
        spec = {"stages": [{"type": "Gain", "params": {"gain_db": -3.0}},
                           {"type": "star", "params": PARAMS.to_dict()}]}
        return StarChain.from_dict(spec, model=model, backend=model.backend)(x, RATE, 300)

    _close(*_both(backends, effect))
    _close(*_both(backends, chain))


def test_latent_from_frames_takes_either_backend(backends):
    frames = np.random.default_rng(3).standard_normal((8, 5)).astype(np.float32)
    a, b = _both(backends, lambda m: latent_from_frames(m, frames))
    assert a.channels == b.channels == 8 and a.hop == b.hop


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_an_engine_block_is_guarded_once(backends, backend):
    """The engine is the outermost boundary: its guard warns; the model's does not run
    again behind it."""
    from star_plugin.engine import StreamingEngine

    engine = StreamingEngine(backends[backend], RATE, 1, backend=backend)
    x = _audio(1)
    x[0, 100] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine.process(x)
    where = [str(w.message).split(":")[0] for w in caught
             if issubclass(w.category, BlockSanitizedWarning)]
    assert where == ["StreamingEngine.process"]
    assert engine.sanitized_samples == 1
