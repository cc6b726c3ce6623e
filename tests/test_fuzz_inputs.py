"""Bad inputs and faults (issue 16), one class per test: real files on disk, real tiny models,
real ONNX Runtime and Pedalboard. Each bad input gets a one-line error naming the argument or
file (exit 2), or correct output; never a traceback, a crash, lost input or a poisoned stream.
"""
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import tiny_model
from star_plugin.cli import main
from star_plugin.errors import ConfigError, ModelFileError
from star_plugin.guard import SAMPLE_LIMIT, BlockSanitizedWarning

RATE = 16000  # the tiny model's rate


def write_tone(path, rate=RATE, channels=1, seconds=0.3, subtype=None):
    t = np.arange(int(rate * seconds)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])
    sf.write(path, audio.T.astype(np.float32), rate, subtype=subtype)
    return audio.astype(np.float32)


def run_cli(capsys, *argv):
    """-> (exit code, stderr); argparse's own exit (bad option values) counts as a code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *names):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not line.startswith("usage:")
             and not line.startswith(" ")]
    assert len(lines) == 1, err
    for name in names:
        assert str(name) in lines[0], (name, err)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from star_plugin.model_io import save_vae

    return save_vae(tiny_model(), tmp_path_factory.mktemp("fuzz") / "tiny")


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    from star_plugin.export.exporter import export_model

    out = tmp_path_factory.mktemp("fuzz-onnx")
    export_model(tiny_model(), out, scan_body="scan")
    return out


# ----------------------------------------------------------------------------- crash

def test_huge_buffer_size_is_refused_before_pedalboard(tmp_path, capsys):
    """`--buffer-size 100000000` segfaulted inside Pedalboard and left a hidden temp file."""
    from star_plugin.chain import StarChain
    from star_plugin.chain_file import process_file

    src = tmp_path / "in.wav"
    write_tone(src)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "out.wav",
                        "--chain", "Gain(gain_db=1)", "--buffer-size", "100000000")
    assert_one_line_error(code, err, "--buffer-size")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]
    chain = StarChain.from_spec("Gain(gain_db=1)")
    with pytest.raises(ConfigError, match="buffer_size"):
        process_file(chain, src, tmp_path / "out.wav", buffer_size=100_000_000)
    with pytest.raises(ConfigError, match="buffer_size"):
        chain(np.zeros((1, 100), np.float32), RATE, buffer_size=100_000_000)
    # the largest allowed buffer runs
    facts = process_file(chain, src, tmp_path / "out.wav", buffer_size=65536)
    assert facts["frames"] == sf.info(src).frames


# ----------------------------------------------------------------------------- input destroyed

def _link(kind, src, tmp_path, name):
    target = tmp_path / name
    if kind == "same":
        return src
    if kind == "symlink":
        target.symlink_to(src)
    else:
        os.link(src, target)
    return target


@pytest.mark.parametrize("kind", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("command", ["encode", "morph", "stream", "chain", "decode"])
def test_output_onto_the_input_is_refused(model_dir, tmp_path, capsys, command, kind):
    src = tmp_path / "a.wav"
    write_tone(src)
    if command == "decode":
        latent = tmp_path / "a.safetensors"
        assert main(["encode", str(src), "-o", str(latent), "--model", str(model_dir)]) == 0
        capsys.readouterr()
        src = latent
    before = src.read_bytes()
    out = _link(kind, src, tmp_path, "link" + src.suffix)
    argv = {"encode": ["encode", src, "-o", out],
            "decode": ["decode", src, "-o", out],
            "morph": ["morph", src, "-o", out, "--texture", src],
            "stream": ["stream", src, "-o", out, "--backend", "torch"],
            "chain": ["chain", src, "-o", out, "--chain", "Gain(gain_db=1)"]}[command]
    code, err = run_cli(capsys, *argv, "--model", model_dir)
    assert_one_line_error(code, err, "same file")
    assert src.read_bytes() == before


def test_morph_output_onto_the_texture_file_is_refused(model_dir, tmp_path, capsys):
    src, ref = tmp_path / "a.wav", tmp_path / "ref.wav"
    write_tone(src)
    write_tone(ref, seconds=0.2)
    before = ref.read_bytes()
    code, err = run_cli(capsys, "morph", src, "-o", ref, "--texture", ref, "--model", model_dir)
    assert_one_line_error(code, err, "ref.wav", "same file")
    assert ref.read_bytes() == before


def test_recon_refuses_to_write_onto_an_input(model_dir, tmp_path, capsys):
    """recon writes DIR/STEM.recon.wav: refused when that name is a hard link to the input."""
    src = tmp_path / "a.wav"
    write_tone(src)
    out = tmp_path / "out"
    out.mkdir()
    os.link(src, out / "a.recon.wav")
    before = src.read_bytes()
    code = main(["recon", str(src), "-o", str(out), "--model", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "same file" in err and "Traceback" not in err
    assert src.read_bytes() == before


# ----------------------------------------------------------------------------- poisoned streams

def _bad_blocks(rng, n_blocks=40, size=256, channels=1):
    """Clean blocks with block 3 holding one NaN, block 5 one Inf, block 7 all 1e20; and the
    same sequence with the guard's replacements written in (0, 0, SAMPLE_LIMIT)."""
    clean = [0.1 * rng.standard_normal((channels, size)).astype(np.float32)
             for _ in range(n_blocks)]
    bad = [b.copy() for b in clean]
    expected = [b.copy() for b in clean]
    bad[3][0, 17] = np.nan
    expected[3][0, 17] = 0.0
    bad[5][0, 40] = np.inf
    expected[5][0, 40] = 0.0
    bad[7][:] = 1e20
    expected[7][:] = SAMPLE_LIMIT
    return bad, expected


def _run_warned(fn, blocks):
    """Run ``fn`` per block; -> (outputs, the guards' warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = [np.asarray(fn(b)) for b in blocks]
    return outs, [str(w.message) for w in caught if issubclass(w.category, BlockSanitizedWarning)]


def _assert_unpoisoned(got, want, warned):
    got, want = np.concatenate(got, axis=-1), np.concatenate(want, axis=-1)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    # each guard (engine, model, chain: named before the colon) warned once, not per block;
    # a model behind a resampling engine may clamp the resampler's overshoot too
    guards = [m.split(":")[0] for m in warned]
    assert guards and len(guards) == len(set(guards)), warned


def test_torch_model_stream_survives_a_bad_block():
    model = tiny_model()
    bad, expected = _bad_blocks(np.random.default_rng(0))

    def runner():
        state = {"s": model.init_state(1)}

        def step(block):
            with torch.no_grad():
                out, state["s"] = model.stream(torch.from_numpy(block[None]), state["s"])
            return out[0].numpy()
        return step

    got, warned = _run_warned(runner(), bad)
    want, _ = _run_warned(runner(), expected)
    _assert_unpoisoned(got, want, warned)


def test_onnx_stream_and_streamer_survive_a_bad_block(onnx_dir):
    from star_plugin.export.runtime import OnnxVAE

    bad, expected = _bad_blocks(np.random.default_rng(1))

    def functional(model):
        state = {"s": model.init_state(1)}

        def step(block):
            out, state["s"] = model.stream(block[None], state["s"])
            return out[0]
        return step

    got, warned = _run_warned(functional(OnnxVAE(onnx_dir)), bad)
    want, _ = _run_warned(functional(OnnxVAE(onnx_dir)), expected)
    _assert_unpoisoned(got, want, warned)
    got, warned = _run_warned(OnnxVAE(onnx_dir).streamer().process, [b[None] for b in bad])
    want, _ = _run_warned(OnnxVAE(onnx_dir).streamer().process, [b[None] for b in expected])
    _assert_unpoisoned(got, want, warned)


@pytest.mark.parametrize("backend,rate", [("torch", RATE), ("torch", 44100), ("onnx", RATE)])
def test_engine_survives_a_bad_block(backend, rate):
    from star_plugin.engine import StreamingEngine

    model = tiny_model()
    bad, expected = _bad_blocks(np.random.default_rng(2), channels=2)
    engine = StreamingEngine(model, rate, 2, backend=backend)
    got, warned = _run_warned(engine.process, bad)
    assert engine.sanitized_samples == 2 + bad[7].size
    reference = StreamingEngine(model, rate, 2, backend=backend)
    want, _ = _run_warned(reference.process, expected)
    _assert_unpoisoned(got, want, warned)


def test_star_effect_and_chain_survive_a_bad_block():
    from star_plugin.chain import StarChain
    from star_plugin.effects import StarEffect

    model = tiny_model()
    bad, expected = _bad_blocks(np.random.default_rng(3))
    for make in (lambda: StarEffect(model, backend="torch"),
                 lambda: StarChain([StarEffect(model, backend="torch")])):
        effect, reference = make(), make()
        got, warned = _run_warned(lambda b: effect(b, RATE, 256, reset=False), bad)
        want, _ = _run_warned(lambda b: reference(b, RATE, 256, reset=False), expected)
        _assert_unpoisoned(got, want, warned)


def test_chain_cli_with_a_star_stage_on_a_file_of_huge_values(model_dir, tmp_path, capsys):
    """It wrote an all-NaN WAV with exit 0; now the guard keeps the output finite."""
    src = tmp_path / "huge.wav"
    audio = write_tone(src, subtype="FLOAT")
    audio[:, 100:600] = 1e30
    sf.write(src, audio.T, RATE, subtype="FLOAT")
    out = tmp_path / "out.wav"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlockSanitizedWarning)
        code, err = run_cli(capsys, "chain", src, "-o", out, "--chain", "star()",
                            "--model", model_dir, "--backend", "torch")
    assert code == 0, err
    y, _ = sf.read(out)
    assert np.isfinite(y).all() and len(y) == audio.shape[1]


# ----------------------------------------------------------------------------- integer PCM

def test_int16_blocks_are_scaled_like_float(onnx_dir):
    from star_plugin.engine import StreamingEngine
    from star_plugin.export.runtime import OnnxVAE

    rng = np.random.default_rng(4)
    pcm = (rng.standard_normal((1, 2048)) * 3000).astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768
    model = tiny_model()
    a, b = StreamingEngine(model, RATE, 1, "torch"), StreamingEngine(model, RATE, 1, "torch")
    got = np.concatenate([a.process(pcm[:, i:i + 512]) for i in range(0, 2048, 512)], axis=1)
    want = np.concatenate([b.process(as_float[:, i:i + 512]) for i in range(0, 2048, 512)], 1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(want).max() > 0
    onnx = OnnxVAE(onnx_dir)
    np.testing.assert_allclose(onnx.posterior(pcm[None])[0], onnx.posterior(as_float[None])[0],
                               atol=1e-6)
    out_int, _ = onnx.stream(pcm[None], onnx.init_state())
    out_float, _ = onnx.stream(as_float[None], onnx.init_state())
    np.testing.assert_allclose(out_int, out_float, atol=1e-6)


# ----------------------------------------------------------------------------- batch abort

def test_recon_batch_reports_and_skips_empty_files(model_dir, tmp_path, capsys):
    good = tmp_path / "good.wav"
    write_tone(good)
    empty = tmp_path / "zero-length.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), RATE)
    huge = tmp_path / "huge.wav"
    sf.write(huge, np.full((4000, 1), 1e30, np.float32), RATE, subtype="FLOAT")
    melody = tmp_path / "melody.flac"
    write_tone(melody, 22050, 2)
    out = tmp_path / "out"
    code = main(["recon", str(good), str(empty), str(huge), str(melody), "-o", str(out),
                 "--model", str(model_dir)])
    captured = capsys.readouterr()
    assert code == 1
    assert "zero-length.wav" in captured.err and "no samples" in captured.err
    assert "Traceback" not in captured.err
    for name in ("good", "huge", "melody"):
        y, _ = sf.read(out / f"{name}.recon.wav")
        assert np.isfinite(y).all()
    assert not (out / "zero-length.recon.wav").exists()


# ----------------------------------------------------------------------------- silent wrongness

def test_morph_without_a_texture_source_is_an_error(model_dir, tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    code, err = run_cli(capsys, "morph", src, "-o", tmp_path / "b.wav", "--model", model_dir)
    assert_one_line_error(code, err, "--texture")
    code, err = run_cli(capsys, "morph", src, "-o", tmp_path / "b.wav", "--model", model_dir,
                        "--texture-prompt", "")
    assert_one_line_error(code, err, "--texture-prompt")
    assert not (tmp_path / "b.wav").exists()


def test_chain_warns_about_a_truncated_input_and_does_not_pad(tmp_path):
    from star_plugin.audio import TruncatedAudioWarning
    from star_plugin.chain import StarChain
    from star_plugin.chain_file import process_file

    src = tmp_path / "cut.wav"
    write_tone(src, seconds=1.0, subtype="PCM_16")
    data = src.read_bytes()
    src.write_bytes(data[:len(data) // 2])
    available = (len(data) // 2 - 44) // 2
    with pytest.warns(TruncatedAudioWarning, match="cut.wav"):
        facts = process_file(StarChain.from_spec("Gain(gain_db=0)"), src, tmp_path / "o.wav")
    assert facts["frames"] == available
    assert sf.info(tmp_path / "o.wav").frames == available


@pytest.mark.parametrize("value", ["0", "-5", "44100.5", "x"])
def test_bad_sample_rate_options(model_dir, tmp_path, capsys, value):
    src = tmp_path / "a.wav"
    write_tone(src)
    code, err = run_cli(capsys, "stream", src, "-o", tmp_path / "b.wav", "--sample-rate", value)
    assert_one_line_error(code, err, "--sample-rate")
    assert not (tmp_path / "b.wav").exists()


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("structure_channels"), "missing structure_channels"),
    (lambda d: d.update(sample_rate="44100"), "sample_rate must be a JSON int"),
    (lambda d: d.update(causal=1), "causal must be a JSON bool"),
])
def test_config_that_would_load_silently_wrong(model_dir, tmp_path, change, message):
    import json
    import shutil

    from star_plugin.model_io import load_vae

    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    data = json.loads((target / "config.json").read_text())
    change(data)
    (target / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=message):
        load_vae(target)


def test_values_that_were_silently_accepted():
    from star_plugin.chain import StarChain
    from star_plugin.engine import StreamingEngine
    from star_plugin.gen.flow import integrate
    from star_plugin.morph import MorphParams

    with pytest.raises(ConfigError, match="gain_db=inf"):
        StarChain.from_spec("Gain(gain_db=1e309)")
    for bad in (dict(texture_amount=True), dict(structure_amount=False), dict(seed=True), dict(seed=2 ** 64)):
        with pytest.raises(ConfigError):
            MorphParams(**bad).validate()
    with pytest.raises(ConfigError, match="steps"):
        integrate(lambda z, t: z, torch.zeros(1, 2, 3), True)
    with pytest.raises(ConfigError, match="44100.5"):
        StreamingEngine(tiny_model(), 44100.5, 1, backend="torch")


def test_generate_refuses_a_zero_sample_length():
    from star_plugin.gen.store import load_generator

    gen = load_generator("default")
    with pytest.raises(ConfigError, match="at least one sample"):
        gen.frames_for(1e-9)
    with pytest.raises(ConfigError, match="seed"):
        gen.generate_latent("a drum", seconds=0.5, steps=1, seed=2 ** 70)


# ----------------------------------------------------------------------------- raw tracebacks

def test_unwritable_outputs_give_one_line_errors(model_dir, tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    for out in (a_file / "out.safetensors", "/proc/star-fuzz/out.safetensors"):
        code, err = run_cli(capsys, "encode", src, "-o", out, "--model", model_dir)
        assert_one_line_error(code, err)
        assert str(out).split("/")[-2] in err
    for out in (a_file / "out.wav", "/proc/star-fuzz/out.wav"):
        code, err = run_cli(capsys, "chain", src, "-o", out, "--chain", "Gain(gain_db=1)")
        assert_one_line_error(code, err)
        assert str(out).split("/")[-2] in err
    code, err = run_cli(capsys, "export", model_dir, "-o", a_file)
    assert_one_line_error(code, err, "plain.txt", "existing file")


def test_chain_files_and_specs_that_crashed(tmp_path, capsys):
    import json

    src = tmp_path / "a.wav"
    write_tone(src)
    out = tmp_path / "o.wav"
    code, err = run_cli(capsys, "chain", src, "-o", out, "--chain-file", tmp_path / "none.json")
    assert_one_line_error(code, err, "none.json")
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"stages": ["Gain"]}))
    code, err = run_cli(capsys, "chain", src, "-o", out, "--chain-file", spec)
    assert_one_line_error(code, err, "stage 1", "object")
    code, err = run_cli(capsys, "chain", src, "-o", out,
                        "--chain", "Gain(gain_db=" + "(" * 3000 + "1" + ")" * 3000 + ")")
    assert_one_line_error(code, err, "stage 1", "nested")
    assert not out.exists()


def test_seed_overflow_and_empty_stream_input(model_dir, tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    code, err = run_cli(capsys, "morph", src, "-o", tmp_path / "b.wav", "--texture", src,
                        "--seed", str(2 ** 80))
    assert_one_line_error(code, err, "--seed")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), RATE)
    code, err = run_cli(capsys, "stream", empty, "-o", tmp_path / "c.wav", "--model", model_dir,
                        "--backend", "torch")
    assert_one_line_error(code, err, "empty.wav", "no samples")
    assert not (tmp_path / "c.wav").exists()


def test_model_encode_says_what_it_takes():
    model = tiny_model()
    x = np.zeros((1, 1, 256), np.float32)
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.encode(x)
    with pytest.raises(TypeError, match="float32"):
        model.encode(torch.zeros(1, 1, 256, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        model.encode(torch.zeros(1, 1, 256, dtype=torch.int16))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.decode(np.zeros((1, model.config.latent_channels, 4), np.float32))


# ----------------------------------------------------------------------------- temps and modes

def test_outputs_respect_the_umask(model_dir, tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    old = os.umask(0o022)
    try:
        assert main(["chain", str(src), "-o", str(tmp_path / "c.wav"), "--chain",
                     "Gain(gain_db=1)"]) == 0
        assert main(["encode", str(src), "-o", str(tmp_path / "e.safetensors"),
                     "--model", str(model_dir)]) == 0
        assert main(["recon", str(src), "-o", str(tmp_path / "r"), "--model",
                     str(model_dir)]) == 0
    finally:
        os.umask(old)
    for out in ("c.wav", "e.safetensors", "r/a.recon.wav"):
        assert (tmp_path / out).stat().st_mode & 0o777 == 0o644, out


def test_stale_temps_of_a_killed_run_are_removed_and_live_ones_kept(tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.wav.star-{dead.pid}-0123456789ab.tmp.wav"
    live = tmp_path / f".out.wav.star-{os.getpid()}-0123456789ab.tmp.wav"
    other = tmp_path / ".out.wav.someone-elses.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    assert main(["chain", str(src), "-o", str(tmp_path / "out.wav"), "--chain",
                 "Gain(gain_db=1)"]) == 0
    assert not stale.exists() and live.exists() and other.exists()


def test_sigterm_during_a_long_chain_leaves_no_temp_file(tmp_path):
    src = tmp_path / "long.wav"
    sf.write(src, np.zeros((RATE * 600, 1), np.float32), RATE, subtype="PCM_16")
    out = tmp_path / "out.wav"
    proc = subprocess.Popen([sys.executable, "-m", "star_plugin.cli", "chain", str(src), "-o",
                             str(out), "--chain", "Reverb(room_size=0.9) | Chorus()",
                             "--buffer-size", "32"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".out.wav.star-") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]


# ----------------------------------------------------------------------------- everyday frictions

def test_version_and_early_output_format_check(model_dir, tmp_path, capsys):
    from star_plugin import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"star {__version__}"
    src = tmp_path / "a.wav"
    write_tone(src)
    code, err = run_cli(capsys, "morph", src, "-o", tmp_path / "out.m4a", "--texture", src,
                        "--model", tmp_path / "no-such-model")  # refused before any loading
    assert_one_line_error(code, err, "out.m4a", ".wav")


def test_chain_summary_and_saved_chain_are_clean(tmp_path, capsys):
    import json

    src = tmp_path / "a.wav"
    write_tone(src)
    saved = tmp_path / "chain.json"
    assert main(["chain", str(src), "-o", str(tmp_path / "o.wav"), "--chain",
                 "Reverb(room_size=0.3) | Gain(gain_db=-6.1)", "--save-chain", str(saved)]) == 0
    out = capsys.readouterr().out
    assert " at 0x" not in out and "Reverb(room_size=0.3," in out
    stages = json.loads(saved.read_text())["stages"]
    assert stages[0]["params"]["room_size"] == 0.3 and stages[1]["params"]["gain_db"] == -6.1


def test_subtype_option_and_one_block_size_name(model_dir, tmp_path, capsys):
    src = tmp_path / "a.wav"
    write_tone(src)
    latent = tmp_path / "a.safetensors"
    assert main(["encode", str(src), "-o", str(latent), "--model", str(model_dir)]) == 0
    out = tmp_path / "b.wav"
    assert main(["decode", str(latent), "-o", str(out), "--model", str(model_dir),
                 "--subtype", "pcm_16"]) == 0
    assert sf.info(out).subtype == "PCM_16"
    code, err = run_cli(capsys, "decode", latent, "-o", tmp_path / "c.flac", "--model",
                        model_dir, "--subtype", "FLOAT")
    assert_one_line_error(code, err, "--subtype", ".flac")
    assert not (tmp_path / "c.flac").exists()
    # --block and --buffer-size name the same thing on stream and chain
    assert main(["stream", str(src), "-o", str(tmp_path / "s.wav"), "--buffer-size", "256",
                 "--model", str(model_dir), "--backend", "torch"]) == 0
    assert "blocks of 256" in capsys.readouterr().out
    assert main(["chain", str(src), "-o", str(tmp_path / "k.wav"), "--chain", "Gain(6)",
                 "--block", "256"]) == 0
    y, _ = sf.read(tmp_path / "k.wav")
    x, _ = sf.read(src)
    np.testing.assert_allclose(y, x * 10 ** (6 / 20), atol=1e-4)


def test_info_reports_the_latency_per_host_rate(model_dir, capsys):
    import json

    assert main(["info", str(model_dir), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    at = facts["latency_ms_at_host_rate"]
    assert set(at) == {"22050", "44100", "48000", "96000"}
    own = facts["latency_ms"]
    assert all(ms >= own - 0.1 for ms in at.values())  # resampling only adds latency


def test_help_does_not_import_torch():
    """`star --help` was 2.3-2.7 s on a quiet machine, all of it torch: it must stay out."""
    code = ("import sys, contextlib, io\n"
            "from star_plugin.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['--help']) == 0 and main(['chain', '--help']) == 0\n"
            "print(sorted(m for m in ('torch', 'pedalboard', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
