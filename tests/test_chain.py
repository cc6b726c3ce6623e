"""Pedalboard integration: StarEffect's calling convention, StarChain mixing Pedalboard
built-ins with STAR effects (one-shot == streamed == file), chain text/JSON forms and their
errors, chunked file processing in constant memory, and live mode's no-device error."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pedalboard as pb
import pytest
import soundfile as sf

from star_plugin.chain import StarChain
from star_plugin.chain_file import process_file
from star_plugin.cli import main
from star_plugin.effects import StarEffect
from star_plugin.engine import render_offline
from star_plugin.errors import AudioFileError, ConfigError
from star_plugin.live import NoAudioDeviceError, audio_devices, run_live
from star_plugin.morph import MorphParams

from conftest import tiny_model

RATE = 44100
PARAMS = MorphParams(texture_amount=0.6, temperature=0.3, structure_amount=0.1)
SPEC = ("HighpassFilter(cutoff_frequency_hz=120) | star(texture_amount=0.6, temperature=0.3, "
        "structure_amount=0.1) | Reverb(room_size=0.3, wet_level=0.2)")
TOL = 1e-5  # the same float32 model run in different block sizes


@pytest.fixture(scope="module")
def model():
    return tiny_model(sample_rate=16000)


def _signal(channels=2, n=20000, seed=0):
    return (np.random.default_rng(seed).standard_normal((channels, n)) * 0.3).astype(np.float32)


def _stream_chain(chain, x, rng, max_chunk=3000, buffer_size=512):
    chain.reset()
    outs, pos = [], 0
    while pos < x.shape[1]:
        n = int(rng.integers(1, max_chunk))
        outs.append(chain.process_channels_first(x[:, pos:pos + n], RATE, buffer_size,
                                                 reset=False))
        pos += n
    got = sum(o.shape[1] for o in outs)
    outs.append(chain.drain(x.shape[1] - got, x.shape[0], RATE, buffer_size))
    return np.concatenate(outs, axis=1)


def test_star_effect_follows_pedalboards_calling_convention(model):
    fx = StarEffect(model, PARAMS, backend="torch")
    x = _signal()
    y = fx(x, RATE)
    assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() > 1e-2
    # aligned (latency compensated) like a one-shot Pedalboard call: equals the bounce
    bounce = render_offline(model, x, RATE, PARAMS)
    body = slice(2000, x.shape[1] - 2000)  # resampler edges, see test_engine.py
    assert np.abs(y[:, body] - bounce[:, body]).max() <= 1e-4
    # layouts: (n, channels) and 1-D mono come back in the same layout
    assert np.abs(fx(x.T.copy(), RATE) - y.T).max() <= TOL
    assert fx(x[0], RATE).shape == (x.shape[1],)
    # streaming: fewer samples while the latency fills, then everything, flush() the rest
    outs = [fx(x[:, i:i + 700], RATE, reset=False) for i in range(0, x.shape[1], 700)]
    assert outs[0].shape[1] < 700
    streamed = np.concatenate(outs + [fx.flush()], axis=1)
    assert streamed.shape == x.shape
    assert np.abs(streamed - y).max() <= TOL


def test_chain_round_trip_with_builtin_plugins(model, tmp_path):
    chain = StarChain.from_spec(SPEC, model=model, backend="torch")
    assert [type(s).__name__ for s in chain.stages] == ["HighpassFilter", "StarEffect", "Reverb"]
    x = _signal()
    one_shot = chain(x, RATE)
    assert one_shot.shape == x.shape and np.isfinite(one_shot).all()
    # the same as applying each stage by hand, Pedalboard one-shot calls included, except
    # the last latency samples (streaming feeds the filter's tail into the model, a chain of
    # one-shot calls feeds silence)
    fx = chain.stages[1]
    manual = pb.Reverb(room_size=0.3, wet_level=0.2)(
        fx(pb.HighpassFilter(cutoff_frequency_hz=120)(x, RATE), RATE), RATE)
    tail = fx.latency(RATE, 2)
    assert np.abs(one_shot[:, :-tail] - manual[:, :-tail]).max() <= TOL
    # streamed in random chunks (some smaller than the channel count), then drained
    streamed = _stream_chain(chain, x, np.random.default_rng(1))
    assert np.abs(streamed - one_shot).max() <= TOL
    # through a file, chunk by chunk
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, x.T, RATE, subtype="FLOAT")
    facts = process_file(chain, src, dst, buffer_size=256)
    assert facts["frames"] == x.shape[1] and facts["channels"] == 2
    written, rate = sf.read(dst, dtype="float32", always_2d=True)
    assert rate == RATE and np.abs(written.T - one_shot).max() <= TOL
    # the data form rebuilds the same chain
    again = StarChain.from_dict(json.loads(json.dumps(chain.to_dict())), model=model,
                                backend="torch")
    assert np.abs(again(x, RATE) - one_shot).max() == 0


def test_pedalboard_only_chain_streams_like_a_one_shot_pedalboard():
    """Pedalboard re-prepares (and so clears) its plugins when a streaming call is longer than
    any before it; the chain feeds whole buffers so that streaming equals one-shot exactly."""
    chain = StarChain([pb.LowpassFilter(cutoff_frequency_hz=900), pb.Chorus(),
                       pb.Delay(delay_seconds=0.01, feedback=0.4)])
    x = _signal(seed=3)
    reference = pb.Pedalboard([pb.LowpassFilter(cutoff_frequency_hz=900), pb.Chorus(),
                               pb.Delay(delay_seconds=0.01, feedback=0.4)])(x, RATE)
    assert np.abs(chain(x, RATE) - reference).max() == 0
    streamed = _stream_chain(chain, x, np.random.default_rng(4), max_chunk=5000)
    assert np.abs(streamed - reference).max() == 0


def test_chain_sanitises_nan_and_handles_tiny_blocks(model):
    chain = StarChain.from_spec("Gain(gain_db=-3) | star(texture_amount=0.2)", model=model,
                                backend="torch")
    x = _signal(n=6000)
    dirty = x.copy()
    dirty[:, 100:120] = np.nan
    dirty[1, 3000] = -np.inf
    clean = x.copy()
    clean[:, 100:120] = 0.0
    clean[1, 3000] = 0.0
    out = chain(dirty, RATE)
    assert np.isfinite(out).all()
    assert np.abs(out - chain(clean, RATE)).max() == 0
    # one-sample stereo blocks: (2, 1) must not be read as one channel of two samples
    chain.reset()
    ones = [chain.process_channels_first(x[:, i:i + 1], RATE, 64, reset=False)
            for i in range(x.shape[1])]
    got = np.concatenate(ones, axis=1)
    assert got.shape[0] == 2 and got.shape[1] > 1000
    assert np.abs(got - chain(x, RATE, buffer_size=64)[:, :got.shape[1]]).max() <= TOL
    assert chain(np.zeros((2, 0), np.float32), RATE).shape == (2, 0)


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("Wobble(depth=1)", "unknown effect 'Wobble'"),
    ("Reverb(rooom_size=0.3)", "unknown parameter 'rooom_size'"),
    ("Reverb(room_size=5.0)", "room_size=5.0 is not accepted"),
    ("Reverb(room_size=0.3", "write it as Name"),
    ("Gain(3, 4)", "2 positional values but it takes 1"),  # Gain(3) is Pedalboard's form
    ("star(0.5)", "named parameters"),
    ("Gain(gain_db=os.system('x'))", "literal"),
    ("plugin()", "plugin file"),
    ("plugin('/no/such/Effect.vst3')", "cannot load plugin file '/no/such/Effect.vst3'"),
    ("Convolution(mix=0.5)", "impulse_response_filename"),
    ("star(texture_amount=3.0)", "texture_amount"),
    ("star(preset='no-such-preset')", "no-such-preset"),
])
def test_bad_chain_specs_get_clear_errors(model, spec, message):
    with pytest.raises(ConfigError, match=message):
        StarChain.from_spec(spec, model=model, backend="torch")


def test_bad_chain_data_and_stages_get_clear_errors():
    with pytest.raises(ConfigError, match="format version 7"):
        StarChain.from_dict({"format_version": 7, "stages": []})
    with pytest.raises(ConfigError, match="'stages' list"):
        StarChain.from_dict({"format_version": 1})
    with pytest.raises(ConfigError, match="stage 1 is a str"):
        StarChain(["Reverb"])


def test_file_errors_and_atomic_output(model, tmp_path):
    chain = StarChain([pb.Gain(gain_db=-6)])
    with pytest.raises(AudioFileError, match="does not exist"):
        process_file(chain, tmp_path / "missing.wav", tmp_path / "out.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioFileError, match="cannot read .*garbage.wav"):
        process_file(chain, garbage, tmp_path / "out.wav")
    src = tmp_path / "in.wav"
    sf.write(src, _signal(n=4000).T, RATE)
    with pytest.raises(AudioFileError, match="is the input file"):
        process_file(chain, src, src)
    # a chain that fails half way leaves an existing output untouched and no temp files
    out = tmp_path / "keep.wav"
    out.write_bytes(b"precious")

    class Exploding(StarEffect):
        calls = 0

        def process_channels_first(self, *a, **k):
            Exploding.calls += 1
            if Exploding.calls > 1:
                raise RuntimeError("boom")
            return super().process_channels_first(*a, **k)

    bad = StarChain([Exploding(model, backend="torch")])
    long_src = tmp_path / "long.wav"
    sf.write(long_src, _signal(n=200000).T, RATE)
    with pytest.raises(RuntimeError, match="boom"):
        process_file(bad, long_src, out)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.wav", "in.wav", "keep.wav",
                                                          "long.wav"]


MEMORY_SCRIPT = r"""
import json, resource, sys, time
import numpy as np, pedalboard as pb, soundfile as sf
sys.path.insert(0, sys.argv[3])
from conftest import tiny_model
from star_plugin.chain import StarChain
from star_plugin.chain_file import process_file
from star_plugin.effects import StarEffect

src, dst = sys.argv[1], sys.argv[2]
rate, seconds = 48000, 600
noise = (np.random.default_rng(0).standard_normal((rate, 2)) * 0.1).astype(np.float32)
with sf.SoundFile(src, "w", rate, 2, subtype="PCM_16") as f:
    for _ in range(seconds):
        f.write(noise)
model = tiny_model(sample_rate=16000, n_fft=128, stft_hop=64, frame_strides=[4],
                   strides=[4, 8, 8])
chain = StarChain([pb.Gain(gain_db=-3), StarEffect(model), pb.LowpassFilter(4000)])
chain(np.zeros((2, 4096), np.float32), rate)  # warm up: sessions, buffers
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
facts = process_file(chain, src, dst, buffer_size=8192)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, **facts}))
"""


def test_ten_minute_file_processes_in_constant_memory(tmp_path):
    """10 minutes of 48 kHz stereo (230 MB as float32 samples) through a chain with a STAR
    effect: the process's peak memory grows by a few MB, not by the file's size."""
    src, dst = tmp_path / "long.flac", tmp_path / "long_out.flac"
    tests_dir = str(Path(__file__).parent)
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(src), str(dst), tests_dir],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    assert facts["frames"] == 600 * 48000 and facts["channels"] == 2
    growth_mb = (facts["after_kb"] - facts["before_kb"]) / 1024
    assert growth_mb < 40, f"peak memory grew by {growth_mb:.0f} MB"
    with sf.SoundFile(dst) as f:
        assert f.frames == 600 * 48000 and f.channels == 2
        f.seek(300 * 48000)
        middle = f.read(48000, dtype="float32")
    assert np.isfinite(middle).all() and np.abs(middle).max() > 1e-3


def test_live_mode_without_devices_says_so(model, capsys):
    inputs, outputs = audio_devices()
    if inputs and outputs:
        with pytest.raises(NoAudioDeviceError, match="not found; available"):
            run_live(StarChain([pb.Gain()]), input_device="no such device", seconds=0.1)
        return
    with pytest.raises(NoAudioDeviceError, match="no audio (input|output) device was found"):
        run_live(StarChain([pb.Gain()]), seconds=0.1)
    assert main(["live", "--chain", "Gain(gain_db=1)"]) == 2
    assert "no audio" in capsys.readouterr().err


def test_cli_chain_saves_and_reuses_the_chain(tmp_path, capsys):
    src = tmp_path / "in.wav"
    sf.write(src, _signal(n=8000).T, RATE)
    spec = "LowpassFilter(cutoff_frequency_hz=2000) | Gain(gain_db=-6)"
    saved = tmp_path / "chain.json"
    assert main(["chain", str(src), "-o", str(tmp_path / "a.flac"), "--chain", spec,
                 "--save-chain", str(saved)]) == 0
    assert json.loads(saved.read_text())["stages"][1] == {"type": "Gain",
                                                         "params": {"gain_db": -6.0}}
    assert main(["chain", str(src), "-o", str(tmp_path / "b.flac"), "--chain-file",
                 str(saved)]) == 0
    a, _ = sf.read(tmp_path / "a.flac")
    b, _ = sf.read(tmp_path / "b.flac")
    assert a.shape == (8000, 2) and np.array_equal(a, b)
    assert main(["chain", str(src), "-o", str(tmp_path / "c.flac"), "--chain",
                 "Foo()"]) == 2
    assert "unknown effect 'Foo'" in capsys.readouterr().err
    assert main(["chain", str(src), "-o", str(tmp_path / "d.flac"), "--chain", "Gain()",
                 "--buffer-size", "0"]) == 2
    assert "--buffer-size/--block: must be an integer in 1..65536, got 0" in \
        capsys.readouterr().err
    assert not (tmp_path / "d.flac").exists()


def test_positional_arguments_like_pedalboard():
    chain = StarChain.from_spec("Gain(6) | HighpassFilter(80) | Reverb(0.3, damping=0.2)")
    assert chain[0].gain_db == 6.0 and chain[1].cutoff_frequency_hz == 80.0
    assert chain[2].room_size == pytest.approx(0.3) and chain[2].damping == pytest.approx(0.2)
    for bad, message in [("Gain(6, 7)", "takes 1"), ("Gain(6, gain_db=3)", "both"),
                         ("star(0.5)", "named parameters")]:
        with pytest.raises(ConfigError, match=message):
            StarChain.from_spec(bad)


def test_star_chain_is_a_mutable_list_with_pedalboards_methods(model):
    """pedalboard.Pedalboard cannot hold a Python effect, so StarChain has its list methods;
    after each change it processes exactly like a chain built with those stages."""
    x = _signal(n=6000)
    fx = StarEffect(model, PARAMS, backend="torch")
    chain = StarChain([pb.Gain(gain_db=-3)])
    chain.append(fx)
    chain.insert(0, pb.HighpassFilter(cutoff_frequency_hz=100))
    chain.append(pb.Reverb(room_size=0.2))
    assert [type(s).__name__ for s in chain] == ["HighpassFilter", "Gain", "StarEffect", "Reverb"]
    removed = chain.pop(1)
    assert isinstance(removed, pb.Gain) and len(chain) == 3
    chain[2] = pb.Gain(gain_db=2)
    del chain[0]
    chain.remove(fx)
    chain.append(fx)
    expected = StarChain([pb.Gain(gain_db=2), StarEffect(model, PARAMS, backend="torch")])
    np.testing.assert_allclose(chain(x, RATE), expected(x, RATE), atol=TOL)
    with pytest.raises(ConfigError, match="stage 3 is a str"):
        chain.append("Reverb")
    assert len(chain) == 2


def test_star_effect_takes_a_texture_file(model, tmp_path):
    ref = tmp_path / "ref.wav"
    sf.write(ref, _signal(1, 8000).T, 16000)
    fx = StarEffect(model, MorphParams(texture_amount=1.0), texture_source=str(ref),
                    backend="torch")
    assert fx.texture_file == str(ref)
    y = fx(_signal(1, 4000)[0], 16000)
    assert y.shape == (4000,) and np.isfinite(y).all()
