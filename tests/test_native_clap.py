"""STAR.clap (native/plugin/clap_wrapper.cpp: the VST3's and LV2's JUCE processor behind a
CLAP entry) in a minimal CLAP host (star-clap-host, native/clap) against the Python stream.

The session's native build (test_native_engine's ``native`` fixture) builds STAR.clap with the
other plugins and star-clap-host when dpf-source (whose CLAP headers both use) is installed.
The host dlopens the .clap, creates the plugin, selects the ports configuration with the
file's channel count (mono or stereo), sets parameters through the params extension,
activates it at the WAV file's rate, reads the latency extension and streams the file in
fixed blocks; the test compensates the latency the way a DAW does (``latency`` extra zeros
fed, the first ``latency`` samples dropped).

Without dpf-source these tests skip, unless STAR_REQUIRE_NATIVE=1 (set by .ci/run).
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
from star_plugin.morph import MorphParams  # noqa: E402
from star_plugin.native_build import dpf_available  # noqa: E402
from test_native_engine import (REQUIRED, TOLERANCE, _aligned_reference,  # noqa: E402
                                _compensated_engine, _signal, _texture, exported_symbols)
from test_native_engine import exports, native  # noqa: E402,F401  (session fixtures)

PARAMETERS = {"structure_amount": (0.0, 1.0, 0.0), "texture_amount": (0.0, 1.0, 0.0),
              "temperature": (0.0, 2.0, 0.0), "mix": (0.0, 1.0, 1.0),
              "output_gain": (-24.0, 24.0, 0.0)}


@pytest.fixture(scope="session")
def clap(native):  # noqa: F811
    if native.clap is None:
        if REQUIRED:
            raise AssertionError("STAR_REQUIRE_NATIVE=1 but STAR.clap was not built (dpf-source "
                                 f"found: {dpf_available()})")
        pytest.skip("STAR.clap not built: install dpf-source")
    return native


def _host(build, *args, model=None, texture=None, plugin=None, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("STAR_MODEL_DIR", None)
    env.pop("STAR_TEXTURE", None)
    if model is not None:
        env["STAR_MODEL_DIR"] = str(model)
    if texture is not None:
        env["STAR_TEXTURE"] = str(texture)
    proc = subprocess.run([str(build.clap_host), str(plugin or build.clap), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"star-clap-host failed ({proc.returncode}): {proc.stderr}")
    return proc


def _run(build, directory, x, rate, tmp_path, block, *extra, texture=None, plugin=None):
    """x (channels, n) through the plugin at ``rate`` in ``block``-frame blocks: the raw
    stream and the host's summary."""
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, rate, subtype="FLOAT")
    proc = _host(build, src, dst, "--block", block, *extra, model=directory, texture=texture,
                 plugin=plugin)
    y, out_rate = sf.read(dst, dtype="float32", always_2d=True)
    assert out_rate == rate
    return y.T, json.loads(proc.stdout)


def _compensated(build, directory, x, rate, tmp_path, block, *extra, **kwargs):
    """What a latency-compensating host hears: the stream fed `latency` extra zeros, the first
    `latency` samples dropped (the latency as the plugin reports it)."""
    info = json.loads(_host(build, "--info", "--rate", rate, "--block", block, *extra,
                            model=directory, plugin=kwargs.get("plugin")).stdout)
    latency = info["latency_samples"]
    padded = np.concatenate([x, np.zeros((x.shape[0], latency), np.float32)], axis=-1)
    y, summary = _run(build, directory, padded, rate, tmp_path, block, *extra, **kwargs)
    assert summary["latency_samples"] == latency
    return y[:, latency:], summary


def test_clap_descriptor_parameters_and_latency(clap, exports):  # noqa: F811
    """The plugin's id, name, ports and parameters (the VST3's ranges and defaults); the latency
    it reports is the manifest's at the model's rate and the Python engine's at 48 kHz."""
    d = exports["phase-vocoder"]
    info = json.loads(_host(clap, "--info", "--rate", 16000, model=d).stdout)
    assert info["plugin_id"] == "org.starplugin.star" and info["plugin_name"] == "STAR"
    assert info["plugin_channels"] == 2 and info["input_ports"] == info["output_ports"] == 1
    # the VST3's parameters: the five shared ones, the texture choice (the bundled example
    # "texture" when a build bundled the examples beside the .clap, else Off) and the worker
    textures = sorted(p.stem for p in (clap.clap.parent / "textures").glob("*.wav"))
    choices = ["Off", *textures, "File"]
    assert info["params"] == {**{k: v[2] for k, v in PARAMETERS.items()},
                              "texture_source": float(choices.index("texture")
                                                      if "texture" in choices else 0),
                              "worker_thread": 0.0}
    manifest = json.loads((d / "manifest.json").read_text())["model"]
    assert info["latency_samples"] == manifest["latency_samples"] == OnnxVAE(d).latency_samples
    assert info["latency_changed"] >= 1  # DPF announced it (the host's latency extension)
    info = json.loads(_host(clap, "--info", "--rate", 48000, model=d).stdout)
    expected = StreamingEngine(OnnxVAE(d), 48000, 2, backend="onnx").latency_samples
    assert info["latency_samples"] == expected != manifest["latency_samples"]
    # parameters are clamped to their ranges and found by id, name or symbol
    info = json.loads(_host(clap, "--info", "--param", "mix=3", "--param", "4=-30",
                            "--param", "Texture Amount=0.5", model=d).stdout)
    assert info["params"]["mix"] == 1.0 and info["params"]["output_gain"] == -24.0
    assert info["params"]["texture_amount"] == 0.5


@pytest.mark.parametrize("block", [64, 512])
@pytest.mark.parametrize("channels", [1, 2])
def test_clap_equals_the_python_stream(clap, exports, tmp_path, channels, block):  # noqa: F811
    d = exports["phase-vocoder"]
    x = _signal(channels, 2 * 16000, seed=11 + channels)
    y, summary = _compensated(clap, d, x, 16000, tmp_path, block)
    ref = _aligned_reference(d, x)
    assert summary["channels"] == channels and summary["frames"] == x.shape[-1] + \
        summary["latency_samples"]
    assert y.shape == ref.shape == x.shape
    assert np.abs(ref).max() > 1e-3  # the model really produced sound
    assert np.abs(y - ref).max() <= TOLERANCE


OPTIONAL_HOST_EXTENSIONS = ("clap.latency", "clap.params", "clap.thread-check", "clap.log",
                            "clap.audio-ports")


@pytest.mark.parametrize("missing", ["all", *OPTIONAL_HOST_EXTENSIONS])
def test_clap_survives_a_host_without_optional_extensions(clap, exports, tmp_path,  # noqa: F811
                                                          missing):
    """Every host extension is optional in CLAP. DPF 1.6 called the host's latency extension
    without checking that the host has one (a SIGSEGV in deactivate in any host without it,
    free-audio's clap-info among them); star plugin build compiles a guarded copy. With an
    extension missing the plugin still activates at two rates (its latency changes), processes
    and deactivates, and sounds as with every extension present."""
    d = exports["phase-vocoder"]
    for rate in (16000, 48000):
        info = _host(clap, "--info", "--rate", rate, "--without", missing, model=d, check=False)
        assert info.returncode == 0, (missing, rate, info.returncode, info.stderr[-300:])
    x = _signal(2, 16000, seed=5)
    full, _ = _run(clap, d, x, 16000, tmp_path, 256)
    bare, summary = _run(clap, d, x, 16000, tmp_path, 256, "--without", missing)
    assert np.abs(full).max() > 1e-3
    assert np.array_equal(bare, full)
    if missing in ("all", "clap.latency"):
        assert summary["latency_changed"] == 0    # nothing to announce it through
    assert _host(clap, "--info", "--without", "clap.bogus", check=False).returncode == 2


def test_loading_and_processing_leave_home_untouched(clap, exports, tmp_path,  # noqa: F811
                                                     monkeypatch):
    """A plugin is loaded at every DAW's plugin scan: neither STAR.clap nor star-engine-cli may
    write in the user's home (ONNX Runtime's telemetry did: ~/.cache/Microsoft/...)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    d = exports["phase-vocoder"]
    x = _signal(2, 16000, seed=9)
    _run(clap, d, x, 16000, tmp_path, 512)
    sf.write(tmp_path / "cli_in.wav", x.T, 16000, subtype="FLOAT")
    proc = subprocess.run([str(clap.cli), str(d), str(tmp_path / "cli_in.wav"),
                           str(tmp_path / "cli_out.wav")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert list(home.rglob("*")) == []


def test_clap_module_exports_only_clap_entry(clap):
    assert exported_symbols(clap.clap) == {"clap_entry"}


def test_clap_at_48k_equals_the_python_engine(clap, exports, tmp_path):  # noqa: F811
    """At a host rate other than the model's the plugin resamples like StreamingEngine."""
    d = exports["harmonic"]
    rate = 48000
    x = _signal(2, rate, seed=33)
    y, summary = _compensated(clap, d, x, rate, tmp_path, 512)
    ref, latency = _compensated_engine(d, x, rate=rate)
    assert summary["latency_samples"] == latency
    assert np.abs(ref).max() > 1e-3
    assert np.abs(y - ref).max() <= TOLERANCE


def test_clap_mix_and_gain_match_the_python_engine_rule(clap, exports, tmp_path):  # noqa: F811
    d = exports["harmonic"]
    x = _signal(1, 16000, seed=12)
    y, summary = _compensated(clap, d, x, 16000, tmp_path, 512, "--param", "mix=0.25",
                              "--param", "output_gain=-6")
    assert summary["params"]["mix"] == 0.25 and summary["params"]["output_gain"] == -6.0
    g = np.float32(10 ** (-6 / 20))
    expected = 0.25 * g * _aligned_reference(d, x) + 0.75 * g * x
    assert np.abs(y - expected).max() <= 1e-4


GLIDE_BLOCK, GLIDE_AT = 256, 4096


def gain_glide_case(latency: int):
    """A 62.5 Hz sine (1, 2 * GLIDE_AT) and what a plugin at mix 0 must output when the output
    gain goes to -24 dB at frame GLIDE_AT, a block boundary: the input delayed by the latency,
    the gain ramping linearly over that block (StreamingEngine._mix_output's rule)."""
    x = (0.5 * np.sin(2 * np.pi * 62.5 * np.arange(2 * GLIDE_AT) / 16000)).astype(np.float32)
    raw = np.concatenate([np.zeros(latency, np.float32), x])[:x.size]
    g = np.float32(10 ** (-24 / 20))
    gain = np.ones(raw.size, np.float32)
    gain[GLIDE_AT:] = g
    gain[GLIDE_AT:GLIDE_AT + GLIDE_BLOCK] = 1 + (g - 1) * np.arange(
        1, GLIDE_BLOCK + 1, dtype=np.float32) / GLIDE_BLOCK
    return x[None], raw * gain


def test_clap_parameter_change_mid_stream_glides(clap, exports, tmp_path):  # noqa: F811
    """Output gain -> -24 dB at a block boundary (a CLAP param event): the gain ramps linearly
    over that block, like the VST3 and StreamingEngine._mix_output. mix=0 makes the raw output
    the input delayed by the latency, so the expected signal is known exactly."""
    d = exports["phase-vocoder"]
    x, expected = gain_glide_case(OnnxVAE(d).latency_samples)
    y, _ = _run(clap, d, x, 16000, tmp_path, GLIDE_BLOCK, "--param", "mix=0",
                "--change", f"{GLIDE_AT}:output_gain=-24")
    assert np.abs(y[0] - expected).max() <= 1e-6
    assert np.abs(np.diff(y[0])).max() <= 1.5 * np.abs(np.diff(x[0])).max()  # no click


def test_clap_morph_parameters_equal_the_python_engine(clap, exports, tmp_path):  # noqa: F811
    """Structure Amount / Texture Amount / Temperature with a texture file ($STAR_TEXTURE): the
    plugin equals the Python engine with the same MorphParams and texture."""
    d = exports["phase-vocoder"]
    texture = _texture(tmp_path)
    amounts = {"structure_amount": 0.4, "texture_amount": 0.7, "temperature": 0.6}
    params = MorphParams(*(float(np.float32(v)) for v in amounts.values()))
    x = _signal(2, 2 * 16000, seed=23)
    extra = [a for k, v in amounts.items() for a in ("--param", f"{k}={v}")]
    y, _ = _compensated(clap, d, x, 16000, tmp_path, 512, *extra, texture=texture)
    ref, _ = _compensated_engine(d, x, params, texture)
    assert np.abs(ref - _aligned_reference(d, x)).max() > 0.01  # the morph acts
    assert np.abs(y - ref).max() <= TOLERANCE


def test_clap_without_a_model_passes_audio_through(clap, tmp_path):
    """No model (none beside the .clap, no $STAR_MODEL_DIR): latency 0, the input unchanged
    (the VST3's and LV2's rule: the same processor), and one line on stderr saying why."""
    x = _signal(2, 3000, seed=3)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, 16000, subtype="FLOAT")
    proc = _host(clap, src, dst, "--block", 128, model=tmp_path / "nothing")
    assert json.loads(proc.stdout)["latency_samples"] == 0
    assert "no model" in proc.stderr and "manifest.json" in proc.stderr
    y = sf.read(dst, dtype="float32", always_2d=True)[0].T
    assert np.array_equal(y, x)


def test_clap_offers_mono_and_stereo_ports(clap, exports, tmp_path):  # noqa: F811
    """A mono file selects the plugin's mono ports configuration (clap.audio-ports-config):
    one channel in and out, equal to the Python engine's mono stream."""
    d = exports["phase-vocoder"]
    x = _signal(1, 16000, seed=21)
    y, summary = _compensated(clap, d, x, 16000, tmp_path, 512)
    assert summary["ports_config"] == "Mono" and summary["plugin_channels"] == 1
    assert np.abs(y - _aligned_reference(d, x)).max() <= TOLERANCE
    _, stereo = _run(clap, d, _signal(2, 2000, seed=2), 16000, tmp_path, 512)
    assert stereo["ports_config"] == "Stereo" and stereo["plugin_channels"] == 2


def test_clap_reset_starts_from_silence(clap, exports, tmp_path):  # noqa: F811
    """plugin->reset() clears the model's states, the resampler and the delay lines: a second
    pass after it equals the first, sample for sample (DPF's wrapper had an empty reset)."""
    d = exports["harmonic"]
    x = _signal(2, 24000, seed=8)
    once, _ = _run(clap, d, x, 48000, tmp_path, 256)
    again, _ = _run(clap, d, x, 48000, tmp_path, 256, "--reset-after")
    assert np.abs(once).max() > 1e-3
    assert np.array_equal(again, once)


def test_clap_worker_thread_bounce_equals_the_python_engine(clap, exports, tmp_path):  # noqa: F811
    """Worker Thread on, rendered offline (clap.render): the plugin waits for its worker, so
    the compensated bounce equals the Python engine; the latency grows by the headroom."""
    d = exports["harmonic"]
    x = _signal(2, 16000, seed=31)
    y, summary = _compensated(clap, d, x, 16000, tmp_path, 256, "--param", "worker_thread=1",
                              "--offline")
    assert summary["params"]["worker_thread"] == 1.0
    assert summary["latency_samples"] > OnnxVAE(d).latency_samples
    assert np.abs(y - _aligned_reference(d, x)).max() <= TOLERANCE


def test_plugin_build_copies_the_clap_beside_its_model(clap, tmp_path):
    """`star plugin build -o DIR --model M`: DIR/STAR.clap beside DIR/libonnxruntime.so.1,
    DIR/model and DIR/textures, relocatable; moved elsewhere it loads that model without
    $STAR_MODEL_DIR and offers those textures."""
    from star_plugin.cli import main
    from star_plugin.model_io import save_vae

    model = save_vae(tiny_model(seed=5, **V2_HARMONIC), tmp_path / "model")
    argv = ["plugin", "build", "-o", str(tmp_path / "dist"), "--model", str(model),
            "--build-dir", str(clap.build_dir)]
    assert main(argv + ([] if clap.vst3 else ["--no-vst3"])) == 0
    moved = tmp_path / "elsewhere"
    (tmp_path / "dist").rename(moved)
    assert (moved / "STAR.clap").is_file() and (moved / "model" / "manifest.json").is_file()
    x = _signal(1, 4000, seed=14)
    y, summary = _compensated(clap, None, x, 16000, tmp_path, 256, plugin=moved / "STAR.clap")
    assert summary["latency_samples"] == OnnxVAE(moved / "model").latency_samples
    assert np.abs(y - _aligned_reference(moved / "model", x)).max() <= TOLERANCE
    # the example textures beside it are the Texture Source choices, as in the VST3
    textures = sorted(p.stem for p in (moved / "textures").glob("*.wav"))
    assert "melody" in textures
    choice = 1 + textures.index("melody")  # after "Off"
    y, summary = _compensated(clap, None, x, 16000, tmp_path, 256, "--param",
                              f"texture_source={choice}", "--param", "texture_amount=1",
                              plugin=moved / "STAR.clap")
    ref, _ = _compensated_engine(moved / "model", x, MorphParams(0.0, 1.0, 0.0),
                                 str(moved / "textures" / "melody.wav"))
    assert np.abs(ref - _aligned_reference(moved / "model", x)).max() > 0.01  # it acts
    assert np.abs(y - ref).max() <= TOLERANCE


def test_clap_reports_the_models_tail(clap, exports):  # noqa: F811
    """clap.tail is the tail measured at export (manifest.json, star_plugin/tail.py), beyond
    the latency: at the model's rate as it is, at 48 kHz in 48 kHz samples; not the latency."""
    d = exports["harmonic"]
    tail = json.loads((d / "manifest.json").read_text())["model"]["tail_samples"]
    info = json.loads(_host(clap, "--info", "--rate", 16000, model=d).stdout)
    assert info["tail_samples"] == tail > 0 and tail != info["latency_samples"]
    info = json.loads(_host(clap, "--info", "--rate", 48000, model=d).stdout)
    assert info["tail_samples"] == round(tail * 48000 / 16000)


def test_clap_worker_thread_switch_while_playing_asks_for_a_restart(clap, exports,  # noqa: F811
                                                                    tmp_path):
    """A Worker Thread switch during a live session (blocks paced like an audio callback):
    the chain is swapped in at a block boundary and, its latency having changed while active,
    the plugin asks the host for a restart (CLAP: request_restart), after which the host reads
    the new latency."""
    d = exports["harmonic"]
    x = _signal(2, 2 * 16000, seed=6)
    _, summary = _run(clap, d, x, 16000, tmp_path, 256, "--realtime",
                      "--change", "8000:worker_thread=1")
    assert summary["params"]["worker_thread"] == 1.0
    assert summary["restart_requests"] >= 1


def test_requiring_the_clap_without_the_plugins_says_why(clap, tmp_path):
    """`star plugin build --clap --no-vst3`: STAR.clap is the plugins' processor, so asking
    for it without them is an error naming the flag, before anything is configured."""
    from star_plugin.native_build import NativeBuildError, build_native

    with pytest.raises(NativeBuildError, match="--no-vst3"):
        build_native(tmp_path / "build", plugin=False, clap=True)
    assert not (tmp_path / "build").exists()


def test_clap_texture_file_is_saved_with_the_session(clap, exports, tmp_path):  # noqa: F811
    """Texture Source "File" in a CLAP session: the state (clap.state) holds the file, so a
    session saved with it and reopened without $STAR_TEXTURE sounds the same; without the
    file the same settings sound different."""
    d = exports["phase-vocoder"]
    x = _signal(2, 16000, seed=27)
    state = tmp_path / "session.state"
    saved, _ = _run(clap, d, x, 16000, tmp_path, 512, "--param", "texture_amount=1",
                    "--save-state", state, texture=_texture(tmp_path))
    assert b"texture_file" in state.read_bytes()
    reopened, summary = _run(clap, d, x, 16000, tmp_path, 512, "--load-state", state)
    assert summary["params"]["texture_amount"] == 1.0
    assert np.array_equal(reopened, saved)
    untextured, _ = _run(clap, d, x, 16000, tmp_path, 512, "--param", "texture_amount=1")
    assert np.abs(untextured - saved).max() > 0.01
