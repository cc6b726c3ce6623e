"""The exported ``morph`` graph (export/graphs.py ``MorphGraph``) is the morph's one definition
for ONNX hosts (the Python ONNX engine and the native engine/plugin). The torch path keeps the
numpy formula in ``LatentMorph``; both must agree to 1e-6 on random frames and parameters,
every source mode, parameter changes mid-stream, seeds and noise-table wrap-around."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import V2, tiny_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from star_plugin.engine import StreamingEngine, render_offline  # noqa: E402
from star_plugin.export.exporter import export_model  # noqa: E402
from star_plugin.export.morph_spec import NOISE_FRAMES, noise_table  # noqa: E402
from star_plugin.export.runtime import OnnxVAE  # noqa: E402
from star_plugin.morph import LatentMorph, MorphParams  # noqa: E402


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("morph-graph")
    export_model(tiny_model(seed=2, **V2), directory, scan_body="scan")
    return OnnxVAE(directory)


def _pair(model, params, source, **kw):
    args = (model.latent_channels, model.structure_channels, model.sample_rate / model.hop,
            params, source)
    return LatentMorph(*args, **kw), LatentMorph(*args, kernel=model.morph_kernel, **kw)


@pytest.mark.parametrize("mode", ["loop", "hold", "mean", "match"])
def test_graph_equals_the_numpy_morph(onnx_model, mode):
    m = onnx_model
    C, rng = m.latent_channels, np.random.default_rng(1)
    source = rng.standard_normal((C, 7)).astype(np.float32)
    gains = list(rng.uniform(0.5, 1.5, C))
    params = MorphParams(0.3, 0.8, 0.9, mode=mode, gains=gains, seed=5)
    numpy_morph, graph_morph = _pair(m, params, source)
    numpy_morph.frame = graph_morph.frame = NOISE_FRAMES - 6  # the noise table wraps around
    worst = 0.0
    for step, n in enumerate([1, 3, 1, 9, 2, 14, 1]):
        mean = rng.standard_normal((2, C, n)).astype(np.float32)
        logsigma = rng.uniform(-3, 0.5, (2, C, n)).astype(np.float32)
        if step == 3:  # automation mid-stream: both glide the same way
            for morph in (numpy_morph, graph_morph):
                morph.set(structure_amount=0.9, texture_amount=0.1, temperature=2.5)
        a, b = numpy_morph.apply(mean, logsigma), graph_morph.apply(mean, logsigma)
        assert a.shape == b.shape == mean.shape and b.dtype == np.float32
        worst = max(worst, float(np.abs(a - b).max()))
    assert worst <= 1e-6


def test_graph_without_source_or_logsigma(onnx_model):
    m = onnx_model
    rng = np.random.default_rng(2)
    numpy_morph, graph_morph = _pair(m, MorphParams(0.5, 0.5, 1.0), None)
    mean = rng.standard_normal((1, m.latent_channels, 5)).astype(np.float32)
    logsigma = rng.uniform(-2, 0, mean.shape).astype(np.float32)
    assert np.abs(numpy_morph.apply(mean, logsigma) - graph_morph.apply(mean, logsigma)).max() \
        <= 1e-6
    assert np.abs(numpy_morph.apply(mean) - graph_morph.apply(mean)).max() <= 1e-6


def test_the_stored_noise_table_is_seed_zero(onnx_model):
    """Hosts that do not feed ``noise_table`` (the native engine) get MorphParams.seed 0's."""
    m, C, f = onnx_model, onnx_model.latent_channels, 4
    session = m.sessions["morph"]
    rng = np.random.default_rng(3)
    feeds = {"mean": np.zeros((1, C, f), np.float32),
             "logsigma": rng.uniform(-1, 0, (1, C, f)).astype(np.float32),
             "source": np.zeros((1, C, f), np.float32),
             "controls": np.array([[0] * f, [0] * f, [1] * f], np.float32),
             "gain": np.ones((C, f), np.float32), "first_frame": np.array([10], np.int64)}
    stored = session.run(None, feeds)[0]
    fed = session.run(None, {**feeds, "noise_table": noise_table(C, 0)})[0]
    assert np.array_equal(stored, fed)
    k = m.structure_channels
    expected = np.exp(feeds["logsigma"]) * noise_table(C, 0)[:, 10:14]
    assert np.abs(stored[0, k:] - expected[0, k:]).max() <= 1e-6
    assert not stored[0, :k].any()  # no temperature on the structure channels
    assert m.manifest["graphs"]["morph"]["defaults"]["noise_table"]["seed"] == 0


def test_onnx_engine_runs_the_graph_and_matches_torch(onnx_model, tmp_path):
    """The ONNX engine (morph graph) and the torch engine (numpy morph) with a texture source
    and non-default parameters: equal to 1e-4, streamed and bounced."""
    model = tiny_model(seed=2, **V2)
    rate = model.sample_rate
    rng = np.random.default_rng(4)
    x = (0.3 * rng.standard_normal((1, 3 * model.hop + 100))).astype(np.float32)
    texture = (0.3 * rng.standard_normal(2 * model.hop)).astype(np.float32)
    params = MorphParams(0.4, 0.7, 0.6)
    onnx_engine = StreamingEngine(onnx_model, rate, 1, backend="onnx", params=params,
                                  texture_source=texture)
    assert onnx_engine.morph.kernel is not None
    torch_engine = StreamingEngine(model, rate, 1, backend="torch", params=params,
                                   texture_source=texture)
    a = np.concatenate([onnx_engine.process(x[:, i:i + 300]) for i in range(0, x.shape[1], 300)],
                       axis=-1)
    b = np.concatenate([torch_engine.process(x[:, i:i + 300]) for i in range(0, x.shape[1], 300)],
                       axis=-1)
    assert np.abs(a).max() > 1e-3 and np.abs(a - b).max() <= 1e-4
    bounce = render_offline(onnx_model, x, rate, params, texture_source=(texture, rate))
    lat = onnx_engine.latency_samples
    assert np.abs(bounce[:, :x.shape[1] - lat] - a[:, lat:]).max() <= 1e-4
