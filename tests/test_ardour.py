"""STAR in a real DAW: Debian's Ardour 7, headless (its Lua session tool ardour7-lua and the
"None (Dummy)" backend), hosts STAR.vst3 / STAR.lv2 and exports; the export must equal
star-engine-cli's output on the same file, sample-aligned after Ardour's latency compensation.

Each case (tests/ardour_host.py does the Ardour side): a session at 44.1 or 48 kHz with a
period of 64 or 1024 frames, a 1.5 s noise + sweep WAV at the session rate embedded and put on
a track (stereo; one mono case), STAR inserted on the track, the session range exported as float
WAV through the master bus. HOME and the XDG folders point into the test's temp dir; the real
HOME is replaced by an empty folder that must stay empty.

What "equal" can mean in a DAW. A plugin instance processes everything the host feeds it from
its last reset on. Before an export the Dummy backend runs in real time (a number of idle
cycles that differs from run to run); STAR starts every offline render from silence (it resets
when the host switches to offline processing), so in an export it is fed the export pre-roll
(2 s) and the latency pre-roll, and only then the region's first sample (before that reset,
exports of one session with a recurrent model differed by as much as the signal:
test_ardour_bounces_of_a_model_with_memory_are_reproducible). That silence is a whole number
of periods minus the plugin's latency L
(Session::process_export_fw: the pre-rolls are whole cycles; the disk reader starts the region
L samples before the end of the latency pre-roll). STAR's output depends on it: its frames are
cut on a grid that starts at the reset, and a model with recurrent or phase state carries it
for ever. Against star-engine-cli on the bare file the export differs by about the signal
itself (0.2-0.3 peak with these models), and two exports of one session differ as much.

So the reference is star-engine-cli (--compensate, the same period as block size) on the same
file preceded by S samples of silence, S >= 0.5 s (longer than the model's memory) and
S = -L (mod period), its first S output samples dropped; the models have finite memory
(family="waveform", backbone="cnn": no recurrent or phase state) and run at half the session
rate (22.05 / 24 kHz: the plugin still resamples with libsoxr, 2:1), so that the plugin's frame
period in host samples (2 x hop = 16) divides both periods and the number of idle cycles no
longer matters. The export then equals the reference to ~3e-7 (float rounding), and the same
reference one sample off differs by ~0.08. A 16 kHz model at 48 kHz (ratio 3, frame period 24
samples) leaves 24 / gcd(period, 24) = 3 possible grid phases: test_ardour_16k_model_at_48k
requires the export to equal the reference of exactly one of them.

The plugin runs with Texture Source "Off" (what star-engine-cli does without --texture): the
test's copy of the bundle has no Resources/textures, so that is its default.

Skips when ardour7-lua is not installed, unless STAR_REQUIRE_ARDOUR=1 (then it fails). The
plugins and star-engine-cli come from build/native (build them with `star plugin build`); with
STAR_REQUIRE_NATIVE=1 (.ci/run) the session's native build (test_native_engine's ``native``
fixture) provides them, and a missing bundle fails instead of skipping.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ardour_host import ardour_available, render_through_ardour
from conftest import tiny_model
from test_native_engine import native  # noqa: F401  (session fixture: STAR_REQUIRE_NATIVE=1)

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "native"
REQUIRE_ARDOUR = os.environ.get("STAR_REQUIRE_ARDOUR") == "1"
REQUIRE_NATIVE = os.environ.get("STAR_REQUIRE_NATIVE") == "1"
TOLERANCE = 1e-4
SECONDS = 1.5
WARMUP_SECONDS = 0.5   # the reference's silence before the file: longer than the model's memory
# finite memory (no recurrent or phase state): the output forgets the silence before the file
CNN = {"family": "waveform", "backbone": "cnn"}
A_EQ = Path("/usr/lib/lv2/a-eq.lv2")  # Debian's ardour-lv2-plugins


@pytest.fixture(scope="session")
def ardour():
    if not ardour_available():
        if REQUIRE_ARDOUR:
            raise AssertionError("STAR_REQUIRE_ARDOUR=1 but ardour7-lua is not installed "
                                 "(apt-get install --no-install-recommends ardour)")
        pytest.skip("Ardour not installed (apt-get install --no-install-recommends ardour)")


@pytest.fixture(scope="session")
def built(request):
    """{'cli', 'vst3', 'lv2'}: star-engine-cli and the plugin bundles (None when not built)."""
    pytest.importorskip("onnxruntime")
    if REQUIRE_NATIVE:
        native = request.getfixturevalue("native")
        return {"cli": native.cli, "vst3": native.vst3, "lv2": native.lv2}
    cli = BUILD / "bin" / "star-engine-cli"
    if not cli.is_file():
        pytest.skip(f"{cli} not built (star plugin build)")
    found = {fmt: sorted(BUILD.glob(f"plugin/**/STAR.{fmt}")) for fmt in ("vst3", "lv2")}
    return {"cli": cli, **{fmt: (paths[0] if paths else None) for fmt, paths in found.items()}}


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Exported finite-memory models: at 22050 and 24000 Hz (half the session rates) and 16 kHz
    (the rate of STAR's own models)."""
    from star_plugin.export.exporter import export_model

    root = tmp_path_factory.mktemp("ardour-models")
    out = {}
    for rate in (22050, 24000, 16000):
        export_model(tiny_model(seed=3, sample_rate=rate, **CNN), root / str(rate),
                     scan_body="scan")
        out[rate] = root / str(rate)
    return out


def _signal(channels: int, rate: int, seed: int) -> np.ndarray:
    """Noise plus a sweep, different per channel, (frames, channels) float32."""
    n = int(SECONDS * rate)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = 0.15 * rng.standard_normal((n, channels))
    x += 0.4 * np.sin(2 * np.pi * (200 + 900 * t[:, None]) * t[:, None] + np.arange(channels))
    return x.astype(np.float32)


class Case:
    """One Ardour render and its star-engine-cli references, in a temp dir of copies."""

    def __init__(self, built, fmt, model, tmp_path, monkeypatch, rate, period, channels,
                 seed=11):
        bundle = built[fmt]
        if bundle is None:
            if REQUIRE_NATIVE:
                raise AssertionError(f"STAR_REQUIRE_NATIVE=1 but STAR.{fmt} was not built")
            pytest.skip(f"STAR.{fmt} not built (star plugin build)")
        self.rate, self.period, self.model, self.fmt = rate, period, Path(model), fmt
        # copies: the build folder may be rebuilt while the test runs
        self.dir = tmp_path
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        self.bundle = plugins / bundle.name
        shutil.copytree(bundle, self.bundle, symlinks=True,
                        ignore=shutil.ignore_patterns("textures"))  # Texture Source: Off
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for f in (built["cli"], built["cli"].parent / "libonnxruntime.so.1"):
            if f.exists():
                shutil.copy2(f, bindir / f.name)
        self.cli = bindir / built["cli"].name
        # the real HOME replaced by an empty folder that must stay empty
        self.outer_home = tmp_path / "outer-home"
        self.outer_home.mkdir()
        monkeypatch.setenv("HOME", str(self.outer_home))
        for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            monkeypatch.delenv(name, raising=False)
        self.x = _signal(channels, rate, seed)
        self.wav_in = tmp_path / "in.wav"
        sf.write(self.wav_in, self.x, rate, subtype="FLOAT")

    def cli_run(self, *args) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.cli), str(self.model), *map(str, args)],
                              capture_output=True, text=True, timeout=300, check=False,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, f"star-engine-cli failed: {proc.stderr}"
        return proc

    def cli_latency(self) -> int:
        return json.loads(self.cli_run("--info", "--rate", self.rate).stdout)[
            "host_latency_samples"]

    def render(self, **kwargs) -> tuple[np.ndarray, dict]:
        t = time.perf_counter()
        info = render_through_ardour(
            self.fmt, self.bundle, self.wav_in, self.dir / "ardour.wav", self.rate,
            self.period, self.x.shape[1], self.dir / "ardour",
            env=dict(os.environ, STAR_MODEL_DIR=str(self.model)), **kwargs)
        info["render_seconds"] = time.perf_counter() - t
        out = sf.info(str(self.dir / "ardour.wav"))
        assert (out.samplerate, out.subtype) == (self.rate, "FLOAT")
        y, _ = sf.read(self.dir / "ardour.wav", dtype="float32", always_2d=True)
        print(f"\n{self.fmt} {self.rate} Hz period {self.period} {self.x.shape[1]} ch: "
              f"{info['render_seconds']:.1f} s ("
              + ", ".join(f"{k} {v:.1f}" for k, v in info["seconds"].items())
              + f"), latency {info['plugin_latency']}, export tries "
              f"{info['export_attempts']} (crashed {info['export_crashes']})")
        return y, info

    def reference(self, silence: int) -> np.ndarray:
        """star-engine-cli on `silence` zeros + the file, compensated, the zeros' part dropped."""
        padded = np.concatenate([np.zeros((silence, self.x.shape[1]), np.float32), self.x])
        src, dst = self.dir / "ref_in.wav", self.dir / "ref_out.wav"
        sf.write(src, padded, self.rate, subtype="FLOAT")
        self.cli_run(src, dst, "--block", self.period, "--compensate")
        y, rate = sf.read(dst, dtype="float32", always_2d=True)
        assert rate == self.rate and y.shape == padded.shape
        return y[silence:]

    def host_silence(self, latency: int) -> int:
        """The reference's silence: >= WARMUP_SECONDS, and = -latency (mod period) like the
        silence Ardour's export feeds the plugin before the region."""
        s0 = int(WARMUP_SECONDS * self.rate)
        return s0 + (-latency - s0) % self.period

    def check_home(self):
        assert list(self.outer_home.rglob("*")) == [], "Ardour wrote into HOME"
        assert (self.dir / "ardour" / "home" / ".config" / "ardour7").is_dir()


def _check_session(info, case, latency):
    n = case.x.shape[0]
    assert info["rate"] == case.rate and info["block"] == case.period
    assert info["plugin_name"] == "STAR"
    # the latency STAR reports to Ardour (after insertion and after reloading the session)
    # is star-engine-cli's at the session rate, and Ardour compensates the track by it
    assert info["plugin_latency"] == info["export_plugin_latency"] == latency
    assert info["track_latency"] == info["export_track_latency"] == latency
    # the file on the track from 0, the session range over it: a full-length export
    assert info["region_start"] == 0 and info["region_frames"] == info["source_frames"] == n
    assert (info["range_start"], info["range_end"]) == (0, n)


def _check_equal(y, ref, x):
    assert y.shape == ref.shape
    assert np.abs(y).max() > 1e-2, "the export is silent"
    assert np.abs(y - x).max() > 1e-2, "the export is the dry signal"
    diff = float(np.abs(y - ref).max())
    assert diff <= TOLERANCE, f"export - star-engine-cli: max |diff| {diff:.3g}"
    # the comparison pins the alignment: one sample off is far outside the tolerance
    assert np.abs(y[1:] - ref[:-1]).max() > 100 * TOLERANCE
    assert np.abs(y[:-1] - ref[1:]).max() > 100 * TOLERANCE
    return diff


@pytest.mark.parametrize("period", [64, 1024])
@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("fmt", ["vst3", "lv2"])
def test_ardour_export_equals_star_engine_cli(ardour, built, models, tmp_path, monkeypatch,
                                              fmt, rate, period):
    case = Case(built, fmt, models[rate // 2], tmp_path, monkeypatch, rate, period, 2)
    latency = case.cli_latency()
    y, info = case.render()
    _check_session(info, case, latency)
    assert info["plugin_inputs"] == info["plugin_outputs"] == 2
    assert y.shape == case.x.shape
    ref = case.reference(case.host_silence(latency))
    _check_equal(y, ref, case.x)
    case.check_home()


def test_ardour_mono_track(ardour, built, models, tmp_path, monkeypatch):
    """A mono track: Ardour feeds the stereo plugin's first input and routes its first output
    to the master's left channel (the track's second output, added for the plugin's, reaches
    no bus): left = star-engine-cli on the mono file, right silent."""
    case = Case(built, "vst3", models[24000], tmp_path, monkeypatch, 48000, 1024, 1)
    latency = case.cli_latency()
    y, info = case.render()
    _check_session(info, case, latency)
    assert info["plugin_inputs"] == 1 and info["region_channels"] == 1
    assert y.shape == (case.x.shape[0], 2)
    ref = case.reference(case.host_silence(latency))
    _check_equal(y[:, :1], ref, case.x)
    assert not y[:, 1].any()
    case.check_home()


def test_ardour_16k_model_at_48k(ardour, built, models, tmp_path, monkeypatch):
    """STAR's own rate, 16 kHz, in a 48 kHz session (libsoxr 3:1): the plugin's frame period is
    3 x hop host samples, which 1024 does not divide, so the frame grid's phase under the region
    depends on the silence fed before it: the export equals star-engine-cli after exactly one
    of the possible silences."""
    case = Case(built, "vst3", models[16000], tmp_path, monkeypatch, 48000, 1024, 2)
    manifest = json.loads((case.model / "manifest.json").read_text())["model"]
    ratio, rest = divmod(case.rate, manifest["sample_rate"])
    assert rest == 0
    frame_period = ratio * manifest["hop"]
    phases = frame_period // math.gcd(case.period, frame_period)
    assert phases == 3
    latency = case.cli_latency()
    y, info = case.render()
    _check_session(info, case, latency)
    assert np.abs(y).max() > 1e-2, "the export is silent"
    base = case.host_silence(latency)
    diffs = [float(np.abs(y - case.reference(base + k * case.period)).max())
             for k in range(phases)]
    print(f"phases: {diffs}")
    assert sum(d <= TOLERANCE for d in diffs) == 1, diffs
    assert sorted(diffs)[1] > 100 * TOLERANCE
    case.check_home()


@pytest.mark.skipif(not A_EQ.is_dir(), reason="ardour-lv2-plugins not installed")
def test_ardour_finds_lv2_plugins_along_lv2_path(ardour, tmp_path, monkeypatch):
    """The LV2 lookup (LV2_PATH, the URI) and the render path with Ardour's own ACE EQ: at its
    defaults (every band at 0 dB) it is the identity, so the export is the file, bit for bit,
    over the full length."""
    monkeypatch.setenv("HOME", str(tmp_path / "outer-home"))
    (tmp_path / "outer-home").mkdir()
    x = _signal(2, 48000, seed=4)
    sf.write(tmp_path / "in.wav", x, 48000, subtype="FLOAT")
    info = render_through_ardour("lv2", A_EQ, tmp_path / "in.wav", tmp_path / "out.wav", 48000,
                                 1024, 2, tmp_path / "ardour", plugin_id="urn:ardour:a-eq")
    assert info["plugin_name"] == "ACE EQ" and info["plugin_latency"] == 0
    assert (info["range_start"], info["range_end"]) == (0, x.shape[0])
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 48000 and np.array_equal(y, x)
    assert list((tmp_path / "outer-home").rglob("*")) == []


def test_ardour_bounces_of_a_model_with_memory_are_reproducible(ardour, built, tmp_path,
                                                                monkeypatch):
    """A model with recurrent state (STAR's kind) remembers what the host fed it before the
    region, and Ardour runs a varying number of idle cycles before an export: the plugin
    starts every offline render from silence, so three exports of one session are identical
    (without that reset they differed by as much as the signal)."""
    from star_plugin.export.exporter import export_model

    model = tmp_path / "recurrent"
    export_model(tiny_model(seed=3), model, scan_body="scan")  # Mamba: state kept for ever
    exports = []
    for k in range(3):
        (tmp_path / f"render{k}").mkdir()
        case = Case(built, "vst3", model, tmp_path / f"render{k}", monkeypatch, 48000, 1024, 2)
        y, _ = case.render()
        exports.append(y)
    assert np.abs(exports[0]).max() > 1e-2, "the export is silent"
    assert all(np.array_equal(y, exports[0]) for y in exports[1:])
