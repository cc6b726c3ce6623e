"""The native engine at host rates other than the model's (star::ResampledEngine, libsoxr)
against the Python ``StreamingEngine(..., sample_rate=rate, backend="onnx")``.

``star-engine-cli`` processes a WAV at its own rate: at the model's rate it runs star::Engine
directly; at any other rate in 8000..384000 Hz it wraps it in star::ResampledEngine
(native/engine/star_resample.{h,cpp}): guard, libsoxr "LQ" stream to the model's rate, the
engine's aligned output, libsoxr back, one FIFO primed with the latency that
``StreamingEngine._measure_latency`` computes. The tiny test models run at 16 kHz, so 48000,
22050, 44100 and 96000 Hz all resample. The output must equal the Python engine's stream fed
the same blocks (uneven, 1-sample blocks included) to <= 1e-4 (measured: 0.0 to 4e-8), and
the latency must be the same number of samples.

Skips like tests/test_native_engine.py without cmake/g++ (or libsoxr-dev), unless
STAR_REQUIRE_NATIVE=1.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import V2_HARMONIC, tiny_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("soxr")

from star_plugin.engine import StreamingEngine  # noqa: E402
from star_plugin.export.exporter import export_model  # noqa: E402
from star_plugin.export.runtime import OnnxVAE  # noqa: E402
from star_plugin.guard import BlockSanitizedWarning  # noqa: E402
from star_plugin.morph import MorphParams  # noqa: E402
from test_native_engine import TOLERANCE, UNEVEN, _cli, _signal, _texture  # noqa: E402
from test_native_engine import native  # noqa: E402,F401  (the session's native build)

MODEL_RATE = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny v2 harmonic-head export with the morph graph, at 16 kHz."""
    directory = tmp_path_factory.mktemp("native-resample") / "harmonic"
    export_model(tiny_model(seed=3, **V2_HARMONIC), directory, scan_body="scan")
    return directory


def _native_at(native, directory, x, rate, tmp_path, blocks, *extra):  # noqa: F811
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, rate, subtype="FLOAT")
    proc = _cli(native, directory, src, dst, "--blocks", ",".join(map(str, blocks)), *extra)
    y, out_rate = sf.read(dst, dtype="float32", always_2d=True)
    assert out_rate == rate  # the output WAV keeps the input's rate
    return y.T, json.loads(proc.stdout)


def _python_engine(directory, x, rate, blocks, **kwargs):
    """The reference: StreamingEngine with the ONNX backend, fed the same blocks."""
    engine = StreamingEngine(OnnxVAE(directory), rate, x.shape[0], backend="onnx", **kwargs)
    out, i, k = [], 0, 0
    while i < x.shape[-1]:
        n = min(blocks[k % len(blocks)], x.shape[-1] - i)
        out.append(engine.process(x[:, i:i + n]))
        i, k = i + n, k + 1
    assert engine.underruns == 0
    return np.concatenate(out, axis=-1), engine


@pytest.mark.parametrize("rate,channels", [(48000, 1), (48000, 2), (22050, 2), (96000, 1)])
def test_cli_at_a_host_rate_equals_the_python_engine(native, model_dir, tmp_path, rate,  # noqa: F811
                                                     channels):
    x = _signal(channels, int(0.3 * rate), seed=channels)
    y, info = _native_at(native, model_dir, x, rate, tmp_path, UNEVEN)
    ref, engine = _python_engine(model_dir, x, rate, UNEVEN)
    assert engine.latency_samples > OnnxVAE(model_dir).latency_samples  # it really resamples
    assert info["latency_samples"] == engine.latency_samples
    assert info["sample_rate"] == rate and info["model_rate"] == MODEL_RATE
    assert info["channels"] == channels and info["frames"] == x.shape[-1]
    assert info["underruns"] == 0
    assert y.shape == ref.shape == x.shape
    assert np.abs(ref[:, engine.latency_samples:]).max() > 1e-3  # the model really sounds
    assert np.abs(y - ref).max() <= TOLERANCE


def test_single_sample_and_large_blocks_at_host_rates(native, model_dir, tmp_path):  # noqa: F811
    x = _signal(2, 3000, seed=5)
    y, _ = _native_at(native, model_dir, x, 48000, tmp_path, [1])
    assert np.abs(y - _python_engine(model_dir, x, 48000, [1])[0]).max() <= TOLERANCE
    x = _signal(1, 30000, seed=6)
    for blocks in ([8192], [4096, 8192, 1, 3000]):
        y, _ = _native_at(native, model_dir, x, 44100, tmp_path, blocks)
        ref = _python_engine(model_dir, x, 44100, blocks)[0]
        assert np.abs(y - ref).max() <= TOLERANCE


def test_info_reports_the_python_engines_latency_at_a_rate(native, model_dir):  # noqa: F811
    model_latency = OnnxVAE(model_dir).latency_samples
    for rate in (8000, 22050, 48000, 192000):
        info = json.loads(_cli(native, model_dir, "--info", "--rate", rate).stdout)
        expected = StreamingEngine(OnnxVAE(model_dir), rate, 1, backend="onnx").latency_samples
        assert info["host_rate"] == rate
        assert info["host_latency_samples"] == expected
        assert info["latency_samples"] == model_latency  # the model's own, at the model rate
    info = json.loads(_cli(native, model_dir, "--info", "--rate", MODEL_RATE).stdout)
    assert info["host_latency_samples"] == model_latency
    plain = json.loads(_cli(native, model_dir, "--info").stdout)
    assert "host_rate" not in plain and plain["latency_samples"] == model_latency


def test_compensated_output_at_a_host_rate(native, model_dir, tmp_path):  # noqa: F811
    rate = 48000
    x = _signal(1, 6000, seed=7)
    y, info = _native_at(native, model_dir, x, rate, tmp_path, [100, 7], "--compensate")
    latency = info["latency_samples"]
    padded = np.concatenate([x, np.zeros((1, latency), np.float32)], axis=-1)
    ref, engine = _python_engine(model_dir, padded, rate, [100, 7])
    assert latency == engine.latency_samples
    assert y.shape == x.shape
    assert np.abs(y - ref[:, latency:]).max() <= TOLERANCE


def test_morph_at_a_host_rate_equals_the_python_engine(native, model_dir, tmp_path):  # noqa: F811
    """Structure/texture amounts, temperature and a texture file (at the model's rate) act
    through the wrapped engine exactly as in the Python engine at 44.1 kHz."""
    texture = _texture(tmp_path)
    x = _signal(2, 20000, seed=22)
    params = MorphParams(0.35, 0.6, 0.8)
    y, info = _native_at(native, model_dir, x, 44100, tmp_path, UNEVEN, "--texture", texture,
                         "--structure-amount", "0.35", "--texture-amount", "0.6",
                         "--temperature", "0.8")
    assert info["morph"] is True and info["texture_frames"] > 0
    ref, _ = _python_engine(model_dir, x, 44100, UNEVEN, params=params, texture_source=texture)
    plain, _ = _python_engine(model_dir, x, 44100, UNEVEN)
    assert np.abs(ref - plain).max() > 0.01  # the morph really changed the sound
    assert np.abs(y - ref).max() <= TOLERANCE


def test_bad_samples_are_guarded_before_the_resampler(native, model_dir, tmp_path):  # noqa: F811
    x = _signal(1, 5000, seed=9)
    x[0, 100] = np.nan
    x[0, 2000] = 1e9
    x[0, 3000] = -np.inf
    y, info = _native_at(native, model_dir, x, 48000, tmp_path, [64])
    with pytest.warns(BlockSanitizedWarning):
        ref, engine = _python_engine(model_dir, x, 48000, [64])
    assert info["sanitized_samples"] == engine.sanitized_samples == 3
    assert np.isfinite(y).all()
    assert np.abs(y - ref).max() <= TOLERANCE


def test_rates_outside_the_range_are_one_line_errors(native, model_dir, tmp_path):  # noqa: F811
    sf.write(tmp_path / "slow.wav", np.zeros(100, np.float32), 4000)
    proc = _cli(native, model_dir, tmp_path / "slow.wav", tmp_path / "o.wav", check=False)
    assert proc.returncode == 1
    assert "4000 Hz" in proc.stderr and "8000..384000" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = _cli(native, model_dir, "--info", "--rate", "500", check=False)
    assert proc.returncode == 2 and "--rate" in proc.stderr and "500" in proc.stderr
    proc = _cli(native, model_dir, "in.wav", "out.wav", "--rate", "48000", check=False)
    assert proc.returncode == 2 and "--rate goes with --info" in proc.stderr
