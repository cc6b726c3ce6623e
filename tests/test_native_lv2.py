"""STAR.lv2 (native/plugin: the VST3's JUCE processor built as LV2) in star-lv2-host
(native/lv2/lv2_host.cpp: lilv, the library Linux DAWs load LV2 bundles with).

The session's native build (test_native_engine's ``native`` fixture) builds STAR.lv2 with the
VST3 and star-lv2-host when liblilv-dev is installed. The host loads the bundle's .ttl files
with lilv, instantiates the plugin with the features JUCE requires, sets parameters through
patch:Set messages and reads the lv2:latency port; the tests compare its output with the Python
ONNX engine after latency compensation, as test_native_clap does for the CLAP.

Without JUCE or lilv these tests skip, unless STAR_REQUIRE_NATIVE=1 (set by .ci/run).
"""
from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import V2_HARMONIC, tiny_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from star_plugin.engine import StreamingEngine  # noqa: E402
from star_plugin.export.runtime import OnnxVAE  # noqa: E402
from star_plugin.native_build import juce_available  # noqa: E402
from test_native_clap import GLIDE_AT, GLIDE_BLOCK, PARAMETERS, gain_glide_case  # noqa: E402
from test_native_engine import (REQUIRED, TOLERANCE, _aligned_reference,  # noqa: E402,F401
                                _compensated_engine, _signal, exported_symbols, exports, native)

URI = "https://starplugin.org/lv2/star"


@pytest.fixture(scope="session")
def lv2(native):  # noqa: F811
    if native.lv2 is None or native.lv2_host is None:
        if REQUIRED:
            raise AssertionError("STAR_REQUIRE_NATIVE=1 but STAR.lv2 / star-lv2-host were not "
                                 f"built (JUCE found: {juce_available()}; star-lv2-host needs "
                                 "liblilv-dev)")
        pytest.skip("STAR.lv2 or star-lv2-host not built: install juce-modules-source and "
                    "liblilv-dev")
    return native


def host(build, *args, model=None, bundle=None, check=True, env=None):
    """star-lv2-host on ``bundle`` (default: the built STAR.lv2) with $STAR_MODEL_DIR=model."""
    env = dict(env or os.environ, OMP_NUM_THREADS="1")
    env.pop("STAR_MODEL_DIR", None)
    env.pop("STAR_TEXTURE", None)
    if model is not None:
        env["STAR_MODEL_DIR"] = str(model)
    proc = subprocess.run([str(build.lv2_host), str(bundle or build.lv2), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"star-lv2-host failed ({proc.returncode}): {proc.stderr}")
    return proc


def run(build, directory, x, rate, tmp_path, block, *extra, **kwargs):
    """x (channels, n) through STAR.lv2 at ``rate`` in ``block``-frame blocks: the raw stream
    and the host's summary."""
    src, dst = tmp_path / "lv2_in.wav", tmp_path / "lv2_out.wav"
    sf.write(src, x.T, rate, subtype="FLOAT")
    proc = host(build, src, dst, "--block", block, *extra, model=directory, **kwargs)
    y, out_rate = sf.read(dst, dtype="float32", always_2d=True)
    assert out_rate == rate
    return y.T, json.loads(proc.stdout)


def compensated(build, directory, x, rate, tmp_path, block, *extra, **kwargs):
    """What a latency-compensating host hears: the stream fed ``latency`` extra zeros (the
    latency the plugin reports on its lv2:latency port with the same settings), the first
    ``latency`` samples dropped."""
    info = json.loads(host(build, "--info", "--rate", rate, "--block", block, *extra,
                           model=directory, **kwargs).stdout)
    latency = info["latency_samples"]
    padded = np.concatenate([x, np.zeros((x.shape[0], latency), np.float32)], axis=-1)
    y, summary = run(build, directory, padded, rate, tmp_path, block, *extra, **kwargs)
    assert summary["latency_samples"] == latency
    return y[:, latency:], summary


def test_lv2_bundle_describes_the_plugin_its_parameters_and_latency(lv2, exports):
    """lilv reads the bundle's .ttl: the URI, the name, two audio inputs and outputs, the
    VST3's parameters (patch:writable, the same ranges and defaults); the lv2:latency port
    reports the manifest's latency at the model's rate and the Python engine's at 48 kHz."""
    d = exports["phase-vocoder"]
    info = json.loads(host(lv2, "--info", "--rate", 16000, model=d).stdout)
    assert info["plugin_uri"] == URI and info["plugin_name"] == "STAR"
    assert info["plugin_channels"] == 2
    ranges = info["param_ranges"]
    assert {k: ranges[k] for k in PARAMETERS} == {k: list(v) for k, v in PARAMETERS.items()}
    assert {"texture_source", "worker_thread"} <= set(ranges)
    assert info["latency_samples"] == OnnxVAE(d).latency_samples
    info = json.loads(host(lv2, "--info", "--rate", 48000, model=d).stdout)
    expected = StreamingEngine(OnnxVAE(d), 48000, 2, backend="onnx").latency_samples
    assert info["latency_samples"] == expected != OnnxVAE(d).latency_samples


def test_lv2_module_exports_only_its_descriptors(lv2):
    assert exported_symbols(lv2.lv2 / "STAR.so") == {"lv2_descriptor", "lv2ui_descriptor"}


def test_lv2_mix_and_gain_match_the_python_engine_rule(lv2, exports, tmp_path):
    """Parameters set as patch:Set messages before playback (a restored session)."""
    d = exports["harmonic"]
    x = _signal(1, 16000, seed=12)
    y, summary = compensated(lv2, d, x, 16000, tmp_path, 512, "--param", "mix=0.25",
                             "--param", "output_gain=-6")
    assert summary["params"]["mix"] == 0.25 and summary["params"]["output_gain"] == -6.0
    g = np.float32(10 ** (-6 / 20))
    expected = 0.25 * g * _aligned_reference(d, x) + 0.75 * g * x
    assert np.abs(y - expected).max() <= 1e-4


def test_lv2_parameter_change_mid_stream_glides(lv2, exports, tmp_path):
    """Output gain -> -24 dB as a patch:Set at a block boundary: the gain ramps linearly over
    that block, the VST3's and StreamingEngine._mix_output's rule (mix=0: the output is the
    input delayed by the latency, so the expected signal is known exactly)."""
    d = exports["phase-vocoder"]
    x, expected = gain_glide_case(OnnxVAE(d).latency_samples)
    y, _ = run(lv2, d, x, 16000, tmp_path, GLIDE_BLOCK, "--param", "mix=0",
               "--change", f"{GLIDE_AT}:output_gain=-24")
    assert np.abs(y[0] - expected).max() <= 1e-6


def test_lv2_worker_thread_bounce_equals_the_python_engine(lv2, exports, tmp_path):
    """Worker Thread on in a freewheeling (offline) run: the audio thread waits for the worker,
    so the compensated bounce equals the Python engine; the latency grows by the headroom."""
    d = exports["harmonic"]
    x = _signal(2, 16000, seed=31)
    sync = json.loads(host(lv2, "--info", "--rate", 16000, "--block", 256, model=d).stdout)
    worker = ("--param", "worker_thread=1", "--freewheel")
    threaded = json.loads(host(lv2, "--info", "--rate", 16000, "--block", 256, *worker,
                               model=d).stdout)
    assert threaded["latency_samples"] > sync["latency_samples"]
    y, summary = compensated(lv2, d, x, 16000, tmp_path, 256, *worker)
    assert np.abs(y - _aligned_reference(d, x)).max() <= TOLERANCE


def test_lv2_without_a_model_passes_audio_through(lv2, tmp_path):
    """No model (none in the bundle, no $STAR_MODEL_DIR): the bundle still loads (JUCE's .ttl
    writer instantiates it at build time too), reports latency 0 and passes audio through."""
    x = _signal(2, 3000, seed=3)
    y, summary = run(lv2, tmp_path / "nothing", x, 16000, tmp_path, 128)
    assert summary["latency_samples"] == 0
    assert np.abs(y - x).max() <= 1e-6


def test_lv2_host_names_a_bundle_without_a_plugin(lv2, tmp_path):
    empty = tmp_path / "Empty.lv2"
    empty.mkdir()
    proc = host(lv2, "--info", bundle=empty, check=False)
    assert proc.returncode == 1 and "holds no LV2 plugin" in proc.stderr
    proc = host(lv2, "--info", "--param", "nonsense", check=False)
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr


def test_loading_and_processing_the_lv2_leave_home_untouched(lv2, exports, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
                        "XDG_DATA_HOME")}
    env["HOME"] = str(home)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, _signal(2, 16000, seed=9).T, 16000, subtype="FLOAT")
    host(lv2, src, dst, "--block", 512, model=exports["phase-vocoder"], env=env)
    assert list(home.rglob("*")) == []


def test_plugin_build_bundles_the_model_and_textures_in_the_lv2(lv2, tmp_path):
    """`star plugin build -o DIR --model M`: DIR/STAR.lv2 holds the ONNX Runtime library, the
    model and the example textures under Resources/, and its .ttl lists those textures as the
    Texture Source choices; moved elsewhere, the bundle loads its own model."""
    from star_plugin.cli import main
    from star_plugin.model_io import save_vae

    model = save_vae(tiny_model(seed=5, **V2_HARMONIC), tmp_path / "model")
    argv = ["plugin", "build", "-o", str(tmp_path / "dist"), "--model", str(model),
            "--build-dir", str(lv2.build_dir)]
    assert main(argv + ([] if lv2.clap else ["--no-clap"])) == 0
    moved = tmp_path / "elsewhere" / "STAR.lv2"
    moved.parent.mkdir()
    (tmp_path / "dist" / "STAR.lv2").rename(moved)
    assert (moved / "libonnxruntime.so.1").is_file()
    assert (moved / "Resources" / "model" / "manifest.json").is_file()
    textures = sorted(p.stem for p in (moved / "Resources" / "textures").glob("*.wav"))
    assert textures
    ttl = (moved / "dsp.ttl").read_text()
    assert all(f'rdfs:label "{name}"' in ttl for name in ["Off", *textures, "File"])
    x = _signal(1, 4000, seed=14)
    y, summary = compensated(lv2, None, x, 16000, tmp_path, 256, bundle=moved)
    assert summary["latency_samples"] == OnnxVAE(moved / "Resources" / "model").latency_samples
    assert np.abs(y - _aligned_reference(moved / "Resources" / "model", x)).max() <= TOLERANCE


def test_lv2_worker_thread_switch_while_playing_takes_effect(lv2, exports, tmp_path):
    """JUCE's LV2 client never re-prepares the plugin, so a Worker Thread switch during a live
    session (blocks paced like an audio callback) is built by the service thread and swapped
    in by the audio thread at a block boundary; the lv2:latency port then reports the
    threaded chain's latency (what an offline bounce with the switch on reports), and the
    sound goes on."""
    d = exports["harmonic"]
    worker = ("--param", "worker_thread=1", "--freewheel")
    threaded = json.loads(host(lv2, "--info", "--rate", 16000, "--block", 256, *worker,
                               model=d).stdout)
    x = _signal(2, 3 * 16000, seed=6)
    y, summary = run(lv2, d, x, 16000, tmp_path, 256, "--realtime",
                     "--change", "8000:worker_thread=1")
    assert summary["latency_changes"] == 1
    assert summary["final_latency_samples"] == threaded["latency_samples"] \
        > summary["latency_samples"]
    assert np.isfinite(y).all() and np.abs(y[:, -16000:]).max() > 1e-3
    # the chain really switched (the latency is not just announced): with mix 0 the output is
    # the dry signal, delayed by the new chain's latency once the switch is through
    y, summary = run(lv2, d, x, 16000, tmp_path, 256, "--realtime", "--param", "mix=0",
                     "--change", "8000:worker_thread=1")
    late = summary["final_latency_samples"]
    assert np.array_equal(y[:, -16000:], x[:, -16000 - late:-late])
