"""The native C++ engine (native/, docs/NATIVE.md) against the Python ONNX stream.

Builds ``star-engine-cli`` (and STAR.vst3 when JUCE is installed) once per session (CMake,
cached in build/native), exports tiny real models (v1 iSTFT head, v2 phase-vocoder head, v2
harmonic head, v2 with the pitch channel: each with different states, discovered from
manifest.json by the C++ side), runs WAV files through the CLI with uneven host blocks
including 1-sample blocks, and requires the output to equal ``OnnxVAE.streamer().process``
(export/runtime.py) fed the same blocks, to <= 1e-4. The VST3 is loaded by Pedalboard and
compared with the same Python stream after latency compensation.

Without cmake/g++ these tests skip, unless STAR_REQUIRE_NATIVE=1 (set by .ci/run), where a
missing toolchain (or a missing plugin) fails them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import V2, V2_HARMONIC, V2_PITCH, V3, tiny_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from star_plugin.engine import StreamingEngine  # noqa: E402
from star_plugin.export.exporter import export_model  # noqa: E402
from star_plugin.morph import MorphParams  # noqa: E402
from star_plugin.export.runtime import OnnxVAE  # noqa: E402
from star_plugin.native_build import (NativeBuildError, build_native, check_tools,  # noqa: E402
                                      juce_available)

HEADS = {"istft": dict(family="spectral", backbone="mamba"),
         "phase-vocoder": V2, "harmonic": V2_HARMONIC,
         "pitch": V2_PITCH,  # + the encoder's pitch-tracker window state
         "peak-locked": V3}  # v3: the phase locked to the magnitude's peaks
# uneven host blocks: runs of single samples, blocks that complete no hop, several hops at once
UNEVEN = [1, 1, 1, 5, 64, 3, 1000, 17, 1, 1, 250, 16, 15, 2]
TOLERANCE = 1e-4


REQUIRED = os.environ.get("STAR_REQUIRE_NATIVE") == "1"


@pytest.fixture(scope="session")
def native():
    """The CLI, and STAR.vst3 too when JUCE is installed (one CMake configuration)."""
    try:
        return build_native(jobs=2, plugin=None)
    except NativeBuildError as exc:
        if REQUIRED:
            raise
        pytest.skip(f"native engine not built: {exc}")


@pytest.fixture(scope="session")
def vst3(native):
    if native.vst3 is None:
        if REQUIRED:
            raise AssertionError("STAR_REQUIRE_NATIVE=1 but STAR.vst3 was not built (JUCE "
                                 f"found: {juce_available()})")
        pytest.skip("STAR.vst3 not built: install juce-modules-source")
    pytest.importorskip("pedalboard")
    return native.vst3


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("native-exports")
    out = {}
    for name, overrides in HEADS.items():
        directory = root / name
        export_model(tiny_model(seed=3, **overrides), directory, scan_body="scan")
        out[name] = directory
    return out


def _cli(native, *args, check=True):
    proc = subprocess.run([str(native.cli), *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"star-engine-cli failed ({proc.returncode}): {proc.stderr}")
    return proc


def _signal(channels: int, samples: int, seed: int = 0) -> np.ndarray:
    """Noise plus a sweep, different per channel, (channels, samples) float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 16000
    x = 0.15 * rng.standard_normal((channels, samples))
    x += 0.4 * np.sin(2 * np.pi * (200 + 900 * t) * t + np.arange(channels)[:, None])
    return x.astype(np.float32)


def _python_stream(directory, x: np.ndarray, blocks) -> np.ndarray:
    """The reference: OnnxVAE's streamer, one batch row per channel, the same block sizes."""
    streamer = OnnxVAE(directory).streamer(batch=x.shape[0])
    out, i, k = [], 0, 0
    while i < x.shape[-1]:
        n = min(blocks[k % len(blocks)], x.shape[-1] - i)
        out.append(streamer.process(x[:, None, i:i + n])[:, 0])
        i, k = i + n, k + 1
    return np.concatenate(out, axis=-1)


def _native_stream(native, directory, x, tmp_path, blocks, *extra, subtype="FLOAT"):
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, 16000, subtype=subtype)
    proc = _cli(native, directory, src, dst, "--blocks", ",".join(map(str, blocks)), *extra)
    y, rate = sf.read(dst, dtype="float32", always_2d=True)
    assert rate == 16000
    return y.T, json.loads(proc.stdout)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("head", list(HEADS))
def test_cli_with_uneven_blocks_equals_the_python_stream(native, exports, tmp_path, head,
                                                         channels):
    x = _signal(channels, 2600, seed=channels)
    y, info = _native_stream(native, exports[head], x, tmp_path, UNEVEN)
    ref = _python_stream(exports[head], x, UNEVEN)
    assert y.shape == ref.shape == x.shape
    assert np.abs(ref).max() > 1e-3  # the model really produced sound
    assert np.abs(y - ref).max() <= TOLERANCE
    assert info["latency_samples"] == OnnxVAE(exports[head]).latency_samples
    assert info["channels"] == channels and info["frames"] == x.shape[-1]
    # blocks that complete no hop run no graph and allocate nothing (the CLI counts every
    # operator new in the process, ONNX Runtime's included)
    assert info["allocations_in_idle_blocks"] == 0


def test_single_sample_blocks_and_large_blocks(native, exports, tmp_path):
    d = exports["harmonic"]
    x = _signal(2, 700, seed=5)
    y, _ = _native_stream(native, d, x, tmp_path, [1])
    assert np.abs(y - _python_stream(d, x, [1])).max() <= TOLERANCE
    x = _signal(1, 20000, seed=6)
    for blocks in ([8192], [4096, 8192, 1, 3000]):
        y, _ = _native_stream(native, d, x, tmp_path, blocks)
        assert np.abs(y - _python_stream(d, x, blocks)).max() <= TOLERANCE


def test_latency_and_states_come_from_the_manifest(native, exports):
    for directory in exports.values():
        info = json.loads(_cli(native, directory, "--info").stdout)
        model = OnnxVAE(directory)
        assert info["latency_samples"] == model.latency_samples
        assert info["synthesis_delay"] == model.synthesis_delay
        manifest = json.loads((directory / "manifest.json").read_text())
        listed = [s["name"] for kind in ("encoder_stream", "decoder_stream")
                  for s in manifest["graphs"][kind]["states"]]
        assert [s["name"] for s in info["states"]] == listed
    harmonic = json.loads(_cli(native, exports["harmonic"], "--info").stdout)
    assert any(s["name"].endswith("f0_phase") for s in harmonic["states"])


def test_compensated_output_is_the_stream_advanced_by_the_latency(native, exports, tmp_path):
    d = exports["phase-vocoder"]
    latency = OnnxVAE(d).latency_samples
    x = _signal(1, 1500, seed=7)
    y, info = _native_stream(native, d, x, tmp_path, [100, 7], "--compensate")
    assert info["compensated"] is True
    padded = np.concatenate([x, np.zeros((1, latency), np.float32)], axis=-1)
    ref = _python_stream(d, padded, [100, 7])[:, latency:]
    assert y.shape == x.shape
    assert np.abs(y - ref).max() <= TOLERANCE


def _texture(tmp_path, seconds: float = 0.4, seed: int = 21):
    """A texture source file at the tiny models' rate (16 kHz, mono float WAV)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)
             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    path = tmp_path / "texture.wav"
    sf.write(path, audio, 16000, subtype="FLOAT")
    return path


def _engine_stream(directory, x, blocks, params, texture, changes=()):
    """The Python ONNX engine (its morph runs the export's morph graph) fed ``blocks``;
    ``changes``: (sample index, {param: value}) applied there (a block is split at it)."""
    engine = StreamingEngine(OnnxVAE(directory), 16000, x.shape[0], backend="onnx",
                             params=params, texture_source=texture)
    assert engine.morph.kernel is not None
    pending = dict(changes)
    out, i, k = [], 0, 0
    while i < x.shape[-1]:
        if i in pending:
            engine.morph.set(**pending.pop(i))
        n = min([blocks[k % len(blocks)], x.shape[-1] - i] + [at - i for at in pending if at > i])
        out.append(engine.process(x[:, i:i + n]))
        i, k = i + n, k + 1
    return np.concatenate(out, axis=-1)


def _compensated_engine(directory, x, params=None, texture=None, rate: int = 16000):
    """(the Python ONNX engine's output for ``x`` at ``rate`` in 512-sample blocks, advanced
    by its latency -- what a latency-compensating host hears --, that latency)."""
    engine = StreamingEngine(OnnxVAE(directory), rate, x.shape[0], backend="onnx",
                             params=params, texture_source=texture)
    latency = engine.latency_samples
    padded = np.concatenate([x, np.zeros((x.shape[0], latency), np.float32)], axis=-1)
    out = np.concatenate([engine.process(padded[:, i:i + 512])
                          for i in range(0, padded.shape[1], 512)], axis=-1)
    return out[:, latency:], latency


@pytest.mark.parametrize("mode", ["loop", "hold", "mean"])
def test_cli_morph_equals_the_python_engine(native, exports, tmp_path, mode):
    """Structure/texture amounts, temperature and a texture file through the export's morph
    graph: the native engine equals the Python ONNX engine (MorphParams, same texture)."""
    d = exports["pitch"]
    texture = _texture(tmp_path)
    x = _signal(2, 6000, seed=22)
    y, info = _native_stream(native, d, x, tmp_path, UNEVEN, "--texture", texture,
                             "--texture-mode", mode, "--structure-amount", "0.35",
                             "--texture-amount", "0.6", "--temperature", "0.8")
    assert info["morph"] is True and info["texture_frames"] > 0
    ref = _engine_stream(d, x, UNEVEN, MorphParams(0.35, 0.6, 0.8, mode=mode), texture)
    plain = _python_stream(d, x, UNEVEN)
    assert np.abs(ref - plain).max() > 0.01  # the morph really changed the sound
    assert np.abs(y - ref).max() <= TOLERANCE


def test_int16_input_and_output(native, exports, tmp_path):
    d = exports["istft"]
    x = _signal(1, 900, seed=8)
    y, _ = _native_stream(native, d, x, tmp_path, [33], "--pcm16", subtype="PCM_16")
    pcm = sf.read(tmp_path / "in.wav", dtype="float32", always_2d=True)[0].T
    ref = _python_stream(d, pcm, [33])
    assert np.abs(y - np.clip(ref, -1, 1)).max() <= 1.0 / 32767 + TOLERANCE


def test_reset_free_runs_are_deterministic_and_nan_is_guarded(native, exports, tmp_path):
    d = exports["harmonic"]
    x = _signal(1, 800, seed=9)
    a, _ = _native_stream(native, d, x, tmp_path, [64])
    b, _ = _native_stream(native, d, x, tmp_path, [64])
    assert np.array_equal(a, b)
    bad = x.copy()
    bad[0, 100] = np.nan
    bad[0, 200] = 1e9
    y, info = _native_stream(native, d, bad, tmp_path, [64])
    assert info["sanitized_samples"] == 2 and np.isfinite(y).all()


def test_clear_errors(native, exports, tmp_path):
    proc = _cli(native, tmp_path / "nothing", "--info", check=False)
    assert proc.returncode == 1 and "manifest.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # other rates in 8000..384000 are resampled (tests/test_native_resample.py)
    sf.write(tmp_path / "in.wav", np.zeros(100, np.float32), 4000)
    proc = _cli(native, exports["istft"], tmp_path / "in.wav", tmp_path / "o.wav", check=False)
    assert proc.returncode == 1 and "4000 Hz" in proc.stderr and "8000..384000" in proc.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in exports["istft"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "decoder_stream.onnx").write_bytes(b"not onnx")
    proc = _cli(native, broken, "--info", check=False)
    assert proc.returncode == 1 and "decoder_stream.onnx" in proc.stderr
    proc = _cli(native, exports["istft"], "a.wav", check=False)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_missing_tools_are_named_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NativeBuildError, match="needs cmake") as info:
        check_tools()
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------- the VST3 in Pedalboard
def _load(vst3, directory, monkeypatch, rate: int = 16000):
    """The plugin, prepared once at ``rate``. Pedalboard loads a plugin at 44.1 kHz and asks a
    re-prepared VST3 for its latency before the plugin can announce the new one (JUCE's VST3
    host queries it before activating), so the first call at a new rate would be compensated
    with the old latency; a DAW re-reads it (restartComponent). One short call settles it."""
    from pedalboard import load_plugin

    monkeypatch.setenv("STAR_MODEL_DIR", str(directory))
    plugin = load_plugin(str(vst3))
    plugin.process(np.zeros((1, 16), np.float32), rate, buffer_size=16, reset=False)
    return plugin


def _aligned_reference(directory, x):
    """The Python stream advanced by the latency (what a latency-compensating host hears)."""
    latency = OnnxVAE(directory).latency_samples
    padded = np.concatenate([x, np.zeros((x.shape[0], latency), np.float32)], axis=-1)
    return _python_stream(directory, padded, [512])[:, latency:]


@pytest.mark.parametrize("channels", [1, 2])
def test_vst3_in_pedalboard_equals_the_python_stream(vst3, exports, monkeypatch, channels):
    d = exports["phase-vocoder"]
    plugin = _load(vst3, d, monkeypatch)
    assert {"structure_amount", "texture_amount", "temperature", "mix"} <= set(plugin.parameters)
    x = _signal(channels, 3 * 16000, seed=11)
    ref = _aligned_reference(d, x)
    for buffer_size in (64, 512, 1000, 8192):
        y = plugin.process(x, 16000, buffer_size=buffer_size, reset=True)
        assert y.shape == x.shape
        assert np.abs(y - ref).max() <= TOLERANCE, buffer_size
    again = plugin.process(x, 16000, buffer_size=512, reset=True)
    assert np.array_equal(again, plugin.process(x, 16000, buffer_size=512, reset=True))


def exported_symbols(binary) -> set:
    """The dynamic symbols a shared object defines (``nm -D --defined-only``)."""
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    out = subprocess.run([nm, "-D", "--defined-only", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def test_vst3_module_exports_only_its_entry_points(vst3):
    """A plugin shares the host's process: STAR.so once exported 184 symbols (the engine,
    ONNX Runtime's C++ API, libstdc++ templates) that could clash with the host's or another
    plugin's; now only what a VST3 host looks up."""
    module = next((Path(vst3) / "Contents").glob("*-linux/STAR.so"))
    assert exported_symbols(module) == {"GetPluginFactory", "ModuleEntry", "ModuleExit"}


def test_vst3_mix_and_gain_match_the_python_engine_rule(vst3, exports, monkeypatch):
    d = exports["harmonic"]
    plugin = _load(vst3, d, monkeypatch)
    gain_name = next(k for k in plugin.parameters if k.startswith("output_gain"))
    plugin.mix = 0.25
    setattr(plugin, gain_name, -6.0)
    x = _signal(1, 16000, seed=12)
    y = plugin.process(x, 16000, buffer_size=512, reset=True)
    g = np.float32(10 ** (-6 / 20))
    expected = 0.25 * g * _aligned_reference(d, x) + 0.75 * g * x
    assert np.abs(y - expected).max() <= 1e-4


def test_vst3_parameter_change_mid_stream_glides(vst3, exports, monkeypatch):
    """Output gain -> -24 dB between two calls (reset=False): the plugin ramps the gain
    linearly over the next block, like StreamingEngine._mix_output, so no sample jumps.

    Pedalboard's latency compensation: a reset=True call feeds `latency` extra zeros after the
    input and drops the first `latency` outputs; the following reset=False call returns the
    plugin's raw output. mix=0 makes the plugin's output its delayed dry input, so the expected
    signal is known exactly."""
    d = exports["phase-vocoder"]
    plugin = _load(vst3, d, monkeypatch)
    gain_name = next(k for k in plugin.parameters if k.startswith("output_gain"))
    latency = OnnxVAE(d).latency_samples
    block, half = 512, 8192
    x = (0.5 * np.sin(2 * np.pi * 62.5 * np.arange(2 * half) / 16000)).astype(np.float32)[None]
    plugin.mix = 0.0
    first = plugin.process(x[:, :half], 16000, buffer_size=block, reset=True)
    setattr(plugin, gain_name, -24.0)
    second = plugin.process(x[:, half:], 16000, buffer_size=block, reset=False)
    assert np.abs(first - x[:, :half]).max() <= 1e-6
    fed = np.concatenate([x[0, :half], np.zeros(latency, np.float32), x[0, half:]])
    raw = np.concatenate([np.zeros(latency, np.float32), fed])[half + latency:fed.size]
    g = np.float32(10 ** (-24 / 20))
    ramp = np.full(raw.size, g, np.float32)
    ramp[:block] = 1 + (g - 1) * np.arange(1, block + 1, dtype=np.float32) / block
    assert np.abs(second[0] - raw * ramp).max() <= 1e-5
    jumps = np.abs(np.diff(np.concatenate([first, second], axis=-1)[0]))
    assert jumps.max() <= 1.5 * np.abs(np.diff(x[0])).max()


def test_vst3_morph_parameters_equal_the_python_engine(vst3, exports, monkeypatch, tmp_path):
    """Structure Amount / Texture Amount / Temperature and a texture source ($STAR_TEXTURE):
    the plugin equals the Python engine with the same MorphParams and texture, latency
    compensated, at every buffer size; an automated change mid-stream glides frame by frame
    exactly like the Python morph (no click)."""
    d = exports["phase-vocoder"]
    texture = _texture(tmp_path)
    monkeypatch.setenv("STAR_TEXTURE", str(texture))
    plugin = _load(vst3, d, monkeypatch)
    plugin.structure_amount, plugin.texture_amount, plugin.temperature = 0.4, 0.7, 0.6
    params = MorphParams(float(plugin.structure_amount), float(plugin.texture_amount),
                         float(plugin.temperature))
    x = _signal(2, 3 * 16000, seed=23)
    ref, latency = _compensated_engine(d, x, params, texture)
    assert np.abs(ref - _aligned_reference(d, x)).max() > 0.01  # the morph acts
    for buffer_size in (64, 512, 1000, 8192):
        y = plugin.process(x, 16000, buffer_size=buffer_size, reset=True)
        assert np.abs(y - ref).max() <= TOLERANCE, buffer_size
    # automation between two calls: texture amount 0.7 -> 0.1, temperature 0.6 -> 0
    half = 8192
    first = plugin.process(x[:, :half], 16000, buffer_size=512, reset=True)
    plugin.texture_amount, plugin.temperature = 0.1, 0.0
    second = plugin.process(x[:, half:2 * half], 16000, buffer_size=512, reset=False)
    fed = np.concatenate([x[:, :half], np.zeros((2, latency), np.float32), x[:, half:2 * half]],
                         axis=-1)
    change = {half + latency: dict(texture_amount=float(plugin.texture_amount), temperature=0.0)}
    stream = _engine_stream(d, fed, [512], params, texture, change.items())
    assert np.abs(first - stream[:, latency:half + latency]).max() <= TOLERANCE
    assert np.abs(second - stream[:, -half:]).max() <= TOLERANCE
    jumps = np.abs(np.diff(second, axis=-1)).max()
    assert jumps <= 1.5 * np.abs(np.diff(stream[:, latency:half + latency], axis=-1)).max()


def test_plugin_build_command_ships_relocatable_binaries(native, tmp_path, monkeypatch):
    """`star plugin build -o DIR --model M` (the CLI command, star_plugin/commands/plugin.py ->
    native_build): M is exported and bundled in STAR.vst3 with the example texture; the copied
    CLI and plugin find the ONNX Runtime library beside themselves (RUNPATH $ORIGIN) wherever
    they are moved."""
    from star_plugin.cli import main
    from star_plugin.model_io import save_vae

    model = save_vae(tiny_model(seed=5, **V2_HARMONIC), tmp_path / "model")
    argv = ["plugin", "build", "-o", str(tmp_path / "dist"), "--model", str(model)]
    assert main(argv + ([] if native.vst3 else ["--no-vst3"])) == 0
    if native.vst3 is not None:  # the example sounds are the Texture Source choices
        textures = tmp_path / "dist" / "STAR.vst3" / "Contents" / "Resources" / "textures"
        assert sorted(p.name for p in textures.iterdir()) == \
            ["drums.wav", "melody.wav", "speech.wav", "texture.wav"]
    moved = tmp_path / "elsewhere"
    (tmp_path / "dist").rename(moved)
    assert (moved / "libonnxruntime.so.1").is_file()
    proc = subprocess.run([str(moved / "star-engine-cli"), str(moved / "model"), "--info"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    latency = OnnxVAE(moved / "model").latency_samples
    assert json.loads(proc.stdout)["latency_samples"] == latency
    if native.vst3 is not None:
        from pedalboard import load_plugin

        monkeypatch.delenv("STAR_MODEL_DIR", raising=False)
        plugin = load_plugin(str(moved / "STAR.vst3"))  # the bundled model
        plugin.process(np.zeros((1, 16), np.float32), 16000, buffer_size=16)  # see _load
        assert list(plugin.parameters["texture_source"].valid_values) == \
            ["Off", "drums", "melody", "speech", "texture", "File"]
        assert plugin.texture_source == "texture"  # 44.1 kHz: refused by the 16 kHz model
        plugin.texture_source = "Off"
        x = _signal(1, 4000, seed=14)
        y = plugin.process(x, 16000, buffer_size=256, reset=True)
        assert np.abs(y - _aligned_reference(moved / "model", x)).max() <= TOLERANCE


@pytest.mark.parametrize("channels", [1, 2])
def test_stereo_model_takes_channel_pairs(native, tmp_path, channels):
    """A model with audio_channels=2 (states with batch multiple 2): a stereo host feeds the
    pair, a mono host is duplicated to a pair and folded back by the mean (star_plugin.convert)."""
    directory = tmp_path / "stereo-model"
    export_model(tiny_model(seed=4, audio_channels=2, **V2), directory, scan_body="scan")
    x = _signal(channels, 1800, seed=13)
    y, _ = _native_stream(native, directory, x, tmp_path, UNEVEN)
    pair = np.concatenate([x, x]) if channels == 1 else x
    streamer = OnnxVAE(directory).streamer(batch=1)
    out, i, k = [], 0, 0
    while i < pair.shape[-1]:
        n = min(UNEVEN[k % len(UNEVEN)], pair.shape[-1] - i)
        out.append(streamer.process(pair[None, :, i:i + n])[0])
        i, k = i + n, k + 1
    ref = np.concatenate(out, axis=-1)
    ref = ref.mean(axis=0, keepdims=True) if channels == 1 else ref
    assert np.abs(y - ref).max() <= TOLERANCE


# ---------------------------------------------------------------------- worker thread, texture
def _raw_delay(plugin, latency_hint: int, buffer_size: int) -> int:
    """The plugin's true delay: with mix 0 its output is its dry input delayed by exactly its
    latency. After a reset=True call Pedalboard hands back the raw stream (reset=False): an
    impulse at the start of that call comes out `latency` samples later."""
    plugin.mix = 0.0
    plugin.process(np.zeros((1, 4000), np.float32), 16000, buffer_size=buffer_size, reset=True)
    x = np.zeros((1, latency_hint + 4 * buffer_size), np.float32)
    x[0, 0] = 1.0
    y = plugin.process(x, 16000, buffer_size=buffer_size, reset=False)
    return int(np.argmax(np.abs(y[0])))


@pytest.mark.parametrize("buffer_size", [64, 512, 1000])
def test_vst3_worker_thread_equals_the_python_stream(vst3, exports, monkeypatch, buffer_size):
    """Worker Thread on: the model runs on the plugin's worker thread. The reported latency
    grows by the host block plus one hop (ThreadedEngine's headroom, as in Python), and as a
    bounce (Pedalboard renders offline, so the audio thread waits for the worker) the output,
    latency compensated, equals the Python stream, run after run."""
    d = exports["harmonic"]
    plugin = _load(vst3, d, monkeypatch)
    manifest = json.loads((d / "manifest.json").read_text())["model"]
    latency, hop = manifest["latency_samples"], manifest["hop"]
    assert _raw_delay(plugin, latency + 2 * buffer_size + hop, buffer_size) == latency
    plugin.worker_thread = True
    assert _raw_delay(plugin, latency + 2 * buffer_size + hop, buffer_size) == \
        latency + buffer_size + hop
    plugin.mix = 1.0
    x = _signal(1, 3 * 16000, seed=31)
    ref = _aligned_reference(d, x)
    y = plugin.process(x, 16000, buffer_size=buffer_size, reset=True)
    assert np.abs(y - ref).max() <= TOLERANCE
    assert np.array_equal(y, plugin.process(x, 16000, buffer_size=buffer_size, reset=True))


def test_vst3_texture_source_parameter(vst3, exports, monkeypatch, tmp_path):
    """Texture Source: "File" ($STAR_TEXTURE, the initial choice when set) morphs towards that
    texture exactly as the Python engine does; "Off" removes the texture (the amounts then do
    nothing, temperature still acts), and switching back restores it. The choices list the
    bundled textures between Off and File."""
    d = exports["phase-vocoder"]
    texture = _texture(tmp_path)
    monkeypatch.setenv("STAR_TEXTURE", str(texture))
    plugin = _load(vst3, d, monkeypatch)
    choices = list(plugin.parameters["texture_source"].valid_values)
    assert choices[0] == "Off" and choices[-1] == "File"
    assert plugin.texture_source == "File"
    plugin.structure_amount, plugin.texture_amount, plugin.temperature = 0.5, 0.8, 0.3
    params = MorphParams(float(plugin.structure_amount), float(plugin.texture_amount),
                         float(plugin.temperature))
    x = _signal(1, 2 * 16000, seed=32)
    with_texture, _ = _compensated_engine(d, x, params, texture)
    without, _ = _compensated_engine(d, x, params, None)
    assert np.abs(with_texture - without).max() > 0.01  # the texture matters
    assert np.abs(plugin.process(x, 16000, buffer_size=512, reset=True) - with_texture).max() \
        <= TOLERANCE
    plugin.texture_source = "Off"
    assert np.abs(plugin.process(x, 16000, buffer_size=512, reset=True) - without).max() \
        <= TOLERANCE
    plugin.texture_source = "File"
    assert np.abs(plugin.process(x, 16000, buffer_size=512, reset=True) - with_texture).max() \
        <= TOLERANCE


@pytest.mark.parametrize("rate", [48000, 22050])
def test_vst3_at_other_host_rates_equals_the_python_engine(vst3, exports, monkeypatch,
                                                          tmp_path, rate):
    """A session at another rate: the plugin resamples with libsoxr like the Python engine
    (star::ResampledEngine) and reports the same latency, so the compensated output equals
    StreamingEngine at that rate; a texture file at a third rate is resampled as Python's
    texture_source is."""
    d = exports["harmonic"]
    texture = tmp_path / "texture-32k.wav"
    t = np.arange(int(0.5 * 32000)) / 32000
    sf.write(texture, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 32000,
             subtype="FLOAT")
    monkeypatch.setenv("STAR_TEXTURE", str(texture))
    plugin = _load(vst3, d, monkeypatch, rate)
    plugin.structure_amount, plugin.texture_amount = 0.3, 0.9
    params = MorphParams(float(plugin.structure_amount), float(plugin.texture_amount), 0.0)
    x = _signal(2, 2 * rate, seed=33)
    ref, latency = _compensated_engine(d, x, params, str(texture), rate)
    assert latency != OnnxVAE(d).latency_samples
    y = plugin.process(x, rate, buffer_size=512, reset=True)
    assert np.abs(y - ref).max() <= TOLERANCE


def test_cli_worker_thread_bounce_equals_the_synchronous_stream(native, exports, tmp_path):
    """--worker-thread (star::ThreadedEngine) as a bounce: the main thread waits for the worker,
    so the raw stream is the synchronous one delayed by the headroom (largest block + one hop),
    to float rounding, with uneven blocks including 1-sample blocks; the main ("audio") thread
    allocates nothing in any block, and the summary reports the grown latency."""
    d = exports["harmonic"]
    manifest = json.loads((d / "manifest.json").read_text())["model"]
    x = _signal(2, 16000, seed=41)
    blocks = UNEVEN
    sync, s_sync = _native_stream(native, d, x, tmp_path, blocks)
    threaded, s_thr = _native_stream(native, d, x, tmp_path, blocks, "--worker-thread")
    headroom = max(blocks) + manifest["hop"]
    assert s_thr["worker_thread"] and s_thr["headroom"] == headroom
    assert s_thr["latency_samples"] == s_sync["latency_samples"] + headroom
    assert s_thr["misses"] == 0 and s_thr["allocations_per_graph_block"] == 0
    assert s_sync["allocations_per_graph_block"] > 0  # ONNX Runtime's Run, on the caller
    # the worker groups the blocks differently, so ONNX Runtime rounds a little differently
    assert np.abs(threaded[:, headroom:] - sync[:, :-headroom]).max() <= 1e-5
    assert not threaded[:, :headroom].any()


def test_cli_worker_thread_in_real_time_never_drifts(native, exports, tmp_path):
    """--worker-thread --realtime: blocks arrive at an audio callback's pace and the main thread
    never waits. Whatever the machine's load, every sample is either the synchronous stream's
    sample at the same delay or silence in a counted late block: the output never drifts."""
    d = exports["harmonic"]
    x = _signal(1, 2 * 16000, seed=42)
    sync, _ = _native_stream(native, d, x, tmp_path, [256])
    live, summary = _native_stream(native, d, x, tmp_path, [256], "--worker-thread", "--realtime")
    headroom = summary["headroom"]
    expected = np.concatenate([np.zeros((1, headroom), np.float32), sync[:, :-headroom]], -1)
    heard = live != 0
    assert heard.mean() > 0.5  # most of it arrived in time
    assert np.abs(live[heard] - expected[heard]).max() <= 1e-5
    assert (summary["misses"] > 0) == bool(((expected != 0) & ~heard).any())
    assert summary["allocations_per_graph_block"] == 0


def test_engine_bench_has_native_rows_at_any_rate_in_both_modes(native, exports, monkeypatch):
    """`star bench engine --backends native`: the C++ engine at the model's rate and at 48 kHz
    (resampled), synchronous and with the worker thread (paced like an audio callback)."""
    from star_plugin.bench.engine_speed import format_engine_bench, run_engine_bench

    monkeypatch.setenv("STAR_ENGINE_CLI", str(native.cli))
    result = run_engine_bench(exports["harmonic"], rates=[16000, 48000], blocks=[256],
                              seconds=0.3, backends=["native"], modes=["sync", "threaded"],
                              progress=None)
    rows = {(r["rate"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {(16000, "sync"), (16000, "threaded"), (48000, "sync"),
                         (48000, "threaded")} and result["skipped"] == []
    for rate in (16000, 48000):
        sync, threaded = rows[rate, "sync"], rows[rate, "threaded"]
        assert sync["blocks"] == threaded["blocks"] == int(0.3 * rate) // 256
        assert threaded["latency_samples"] > sync["latency_samples"]
        assert 0 <= threaded["misses"] <= threaded["blocks"]
        assert threaded["allocations_per_graph_block"] == 0  # the audio thread only copies
    assert rows[48000, "sync"]["latency_samples"] != rows[16000, "sync"]["latency_samples"]
    assert "| native | threaded | 48000 | 256 |" in format_engine_bench(result)
