"""Reliability, second round (issue 24): every path a command writes is protected, a failed run
writes nothing, chain literals and parameters are checked before any audio is read, and the
API follows the CLI's rules. Real files, the real CLI (in process through ``main`` and as
``python -m star_plugin.cli``), tiny real models, ONNX Runtime and Pedalboard; no mocks.
"""
import json
import os
import resource
import shutil
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
from star_plugin.errors import ConfigError, OutputError
from star_plugin.guard import BlockSanitizedWarning
from test_fuzz_inputs import assert_one_line_error, run_cli, write_tone
# the same tiny model and export as the fuzz tests (pytest fixtures, used by name)
from test_fuzz_inputs import model_dir, onnx_dir  # noqa: F401

RATE = 16000  # the tiny model's rate


def star(*argv, timeout=180, **kwargs):
    """``python -m star_plugin.cli ARGV`` -> CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "star_plugin.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def names(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- 1. every output

@pytest.mark.parametrize("form", ["same", "dot", "updown", "symlink", "hardlink"])
def test_save_chain_onto_the_input_is_refused_and_the_input_kept(tmp_path, capsys, form):
    """--save-chain in.wav replaced the input audio with JSON, then failed."""
    src = tmp_path / "in.wav"
    write_tone(src)
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    target = {"same": src, "dot": f"{tmp_path}/./in.wav", "updown": tmp_path / "sub/../in.wav",
              "symlink": tmp_path / "link.wav", "hardlink": tmp_path / "hard.wav"}[form]
    if form == "symlink":
        target.symlink_to(src)
    elif form == "hardlink":
        os.link(src, target)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        "Gain(gain_db=-6)", "--save-chain", target)
    assert_one_line_error(code, err, "--save-chain", "same file")
    assert src.read_bytes() == before
    assert not (tmp_path / "o.wav").exists()


def test_two_outputs_of_one_run_must_differ(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write_tone(src)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "x.json", "--chain", "Gain()",
                        "--save-chain", tmp_path / "x.json")
    assert_one_line_error(code, err, "--save-chain", "same file")
    assert names(tmp_path) == ["in.wav"]


def _make_inputs(tmp_path, model_dir):
    """Files a command reads besides its main input: a copy of the model, a preset, a texture
    source, an impulse response, a fake generator directory."""
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    src, ref, ir = tmp_path / "in.wav", tmp_path / "ref.wav", tmp_path / "ir.wav"
    write_tone(src)
    write_tone(ref, seconds=0.2)
    sf.write(ir, np.r_[1.0, np.zeros(31)].astype(np.float32), RATE)
    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps({"name": "mine", "params": {"texture_amount": 0.5}}))
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "weights.bin").write_bytes(b"not a generator")
    return {"model": model, "in": src, "ref": ref, "ir": ir, "preset": preset,
            "gen": gen, "gen_file": gen / "weights.bin",
            "weights": model / "model.safetensors", "config": model / "config.json"}


WRITES_ONTO_AN_INPUT = {
    # command line (with {names} of _make_inputs) -> the input it would have replaced
    "encode onto the model's weights":
        ("encode {in} -o {weights} --model {model}", "weights"),
    "decode onto the model's config":
        ("decode {in} -o {config} --model {model}", "config"),
    "morph onto its preset file":
        ("morph {in} -o {preset} --texture {ref} --preset {preset} --model {model}", "preset"),
    "stream onto its texture source":
        ("stream {in} -o {ref} --texture {ref} --model {model} --backend torch", "ref"),
    "chain onto a star() stage's texture source":
        ("chain {in} -o {ref} --chain star(texture_source='{ref}') --model {model} "
         "--backend torch", "ref"),
    "chain onto a Convolution's impulse response":
        ("chain {in} -o {ir} --chain Convolution(impulse_response_filename='{ir}')", "ir"),
    "chain --save-chain onto the model's config":
        ("chain {in} -o {tmp}/o.wav --chain Gain() --model {model} --save-chain {config}",
         "config"),
    "generate onto the generator's file":
        ("generate a_drum -o {gen_file} --generator {gen}", "gen_file"),
}


@pytest.mark.parametrize("case", sorted(WRITES_ONTO_AN_INPUT))
def test_every_writing_command_refuses_to_replace_an_input(model_dir, tmp_path, capsys, case):
    files = _make_inputs(tmp_path, model_dir)
    line, victim = WRITES_ONTO_AN_INPUT[case]
    if case.startswith("decode"):
        latent = tmp_path / "in.safetensors"
        assert main(["encode", str(files["in"]), "-o", str(latent), "--model",
                     str(files["model"])]) == 0
        capsys.readouterr()
        files["in"] = latent
    before = files[victim].read_bytes()
    argv = line.format(tmp=tmp_path, **files).split()
    code, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "same file", files[victim].name)
    assert files[victim].read_bytes() == before
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("argv,option", [
    (["export", "{model}", "-o", "{file}"], "-o/--output"),
    (["demo", "-o", "{file}", "--model", "{model}"], "-o/--output"),
    (["recon", "{in}", "-o", "{file}", "--model", "{model}"], "-o/--output"),
    # --build-dir onto a file as well: even without the guard nothing would be compiled
    (["plugin", "build", "-o", "{file}", "--build-dir", "{file}", "--model", "none"],
     "-o/--output"),
    (["bench", "speed", "--json", "{folder}"], "--json"),
    (["chain", "{in}", "-o", "{folder}", "--chain", "Gain()"], "-o/--output"),
])
def test_directory_and_report_outputs_are_checked_first(model_dir, tmp_path, capsys, argv,
                                                        option):
    """export/demo/recon/plugin build write directories, bench --json a file: a file where a
    directory belongs (and the reverse) is refused before anything is loaded or built."""
    files = _make_inputs(tmp_path, model_dir)
    plain, folder = tmp_path / "plain.txt", tmp_path / "folder"
    plain.write_text("keep")
    folder.mkdir()
    before = names(tmp_path)
    t0 = time.perf_counter()
    code, err = run_cli(capsys, *[a.format(file=plain, folder=folder, **files) for a in argv])
    assert_one_line_error(code, err, option)
    assert time.perf_counter() - t0 < 30  # refused at once: no benchmark, no build
    assert plain.read_text() == "keep" and names(tmp_path) == before


# ----------------------------------------------------------------------------- 2. collisions

def test_recon_gives_colliding_outputs_distinct_names(model_dir, tmp_path, capsys):
    """a/x.wav b/x.wav -o out wrote one out/x.recon.wav (the second replaced the first)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_tone(tmp_path / "a/x.wav", seconds=0.3)
    write_tone(tmp_path / "b/x.wav", seconds=0.5)
    out = tmp_path / "out"
    assert main(["recon", str(tmp_path / "a/x.wav"), str(tmp_path / "b/x.wav"), "-o", str(out),
                 "--model", str(model_dir)]) == 0
    said = capsys.readouterr().out
    assert names(out) == ["x-2.recon.wav", "x.recon.wav"]
    assert sf.info(out / "x.recon.wav").frames == int(0.3 * RATE)
    assert sf.info(out / "x-2.recon.wav").frames == int(0.5 * RATE)
    assert "x-2.recon.wav" in said and "shares its name" in said


def test_recon_of_two_formats_of_one_name_into_the_current_directory(model_dir, tmp_path):
    """recon in.wav in.flac -o . : both results kept, said in the output (the real CLI)."""
    audio = write_tone(tmp_path / "in.wav", seconds=0.3)
    sf.write(tmp_path / "in.flac", audio[:, :int(0.2 * RATE)].T, RATE)
    run = star("recon", "in.wav", "in.flac", "-o", ".", "--model", model_dir, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sf.info(tmp_path / "in.recon.wav").frames == int(0.3 * RATE)
    assert sf.info(tmp_path / "in-2.recon.wav").frames == int(0.2 * RATE)
    assert "in.flac -> in-2.recon.wav" in run.stdout


# ----------------------------------------------------------------------------- 3. nothing written

def test_a_failed_chain_writes_nothing(tmp_path, capsys):
    """A missing input wrote --save-chain first; a stage making NaN left the chain file."""
    code, err = run_cli(capsys, "chain", tmp_path / "nope.wav", "-o", tmp_path / "o.wav",
                        "--chain", "Gain(gain_db=-6)", "--save-chain", tmp_path / "c.json")
    assert_one_line_error(code, err, "nope.wav", "does not exist")
    src = tmp_path / "in.wav"
    write_tone(src)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        "HighpassFilter(cutoff_frequency_hz=9000)", "--save-chain",
                        tmp_path / "c.json")  # above Nyquist at 16 kHz: Inf
    assert_one_line_error(code, err, "NaN/Inf", "HighpassFilter")
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain", "Gain()",
                        "--save-chain", src / "c.json")  # unwritable place for the second
    assert_one_line_error(code, err, "not a directory")
    assert names(tmp_path) == ["in.wav"]
    # and a good run writes both
    assert main(["chain", str(src), "-o", str(tmp_path / "o.wav"), "--chain", "Gain()",
                 "--save-chain", str(tmp_path / "c.json")]) == 0
    assert names(tmp_path) == ["c.json", "in.wav", "o.wav"]


def test_outputs_written_together_are_all_or_nothing(tmp_path):
    from star_plugin.atomic import OutputGuard, write_bytes_atomic

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    with pytest.raises(OutputError, match="name the same file"):
        OutputGuard(files=[("--a", a), ("--b", tmp_path / "sub" / ".." / "a.json")])
    guard = OutputGuard(files=[("--a", a), ("--b", b)])
    with pytest.raises(RuntimeError):
        with guard.together():
            write_bytes_atomic(a, b"1")
            assert not a.exists()  # waits for the block
            raise RuntimeError("the second output failed")
    assert names(tmp_path) == []
    with guard.together():
        write_bytes_atomic(a, b"1")
        write_bytes_atomic(b, b"2")
        write_bytes_atomic(tmp_path / "other.json", b"3")  # not guarded: written at once
        assert (tmp_path / "other.json").exists() and not b.exists()
    assert a.read_bytes() == b"1" and b.read_bytes() == b"2"


# ----------------------------------------------------------------------------- 4. kill -9 temps

def test_temp_of_a_kill_9_run_is_removed_by_the_next_command_and_said(model_dir, tmp_path):
    src = tmp_path / "long.wav"
    sf.write(src, np.zeros((RATE * 600, 1), np.float32), RATE, subtype="PCM_16")
    proc = subprocess.Popen([sys.executable, "-m", "star_plugin.cli", "chain", str(src), "-o",
                             str(tmp_path / "out.wav"), "--chain",
                             "Reverb(room_size=0.9) | Chorus()", "--buffer-size", "32"],
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not [p for p in tmp_path.iterdir() if p.name.startswith(".out.wav.star-")]:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    temps = [p for p in tmp_path.iterdir() if p.name.startswith(".out.wav.star-")]
    assert len(temps) == 1
    # the next command that writes in that folder (not even to the same name) removes it
    short = tmp_path / "short.wav"
    write_tone(short)
    run = star("encode", short, "-o", tmp_path / "short.safetensors", "--model", model_dir)
    assert run.returncode == 0, run.stderr
    assert temps[0].name in run.stderr and "killed run" in run.stderr
    assert not temps[0].exists()


def test_stale_temps_are_removed_even_when_the_command_then_fails(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".o.wav.star-{dead.pid}-0123456789ab.tmp.wav"
    stale.write_bytes(b"")
    live = tmp_path / f".o.wav.star-{os.getpid()}-0123456789ab.tmp.wav"
    live.write_bytes(b"")
    src = tmp_path / "in.wav"
    write_tone(src)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        "Gain(gain_db=True)")
    assert code == 2 and "removed" in err and stale.name in err
    assert not stale.exists() and live.exists()


# ----------------------------------------------------------------------------- 5. ranges

@pytest.mark.parametrize("spec,message", [
    ("Resample(target_sample_rate=1e9)", "target_sample_rate=1e+09 is outside 100..384000"),
    ("Resample(target_sample_rate=1)", "target_sample_rate=1 is outside"),
    ("Chorus(centre_delay_ms=-5)", "centre_delay_ms=-5"),
    ("Phaser(feedback=5)", "feedback=5"),
    ("Compressor(attack_ms=-1)", "attack_ms=-1"),
    ("HighpassFilter(cutoff_frequency_hz=0)", "cutoff_frequency_hz=0"),
    ("NoiseGate(ratio=-3)", "ratio=-3"),
    ("Gain(gain_db=1e308)", "gain_db=1e+308"),
])
def test_stage_parameters_are_range_checked_before_any_audio(tmp_path, capsys, spec, message):
    src = tmp_path / "in.wav"
    write_tone(src)
    t0 = time.perf_counter()
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        f"Gain(gain_db=0) | {spec}")
    assert_one_line_error(code, err, "chain stage 2", message)
    assert time.perf_counter() - t0 < 20
    assert names(tmp_path) == ["in.wav"]


def test_resample_1e9_no_longer_hangs_the_real_cli(tmp_path):
    src = tmp_path / "in.wav"
    write_tone(src)
    run = star("chain", src, "-o", tmp_path / "o.wav", "--chain",
               "Resample(target_sample_rate=1e9)", timeout=90)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "chain stage 1 (Resample)" in run.stderr
    assert names(tmp_path) == ["in.wav"]


def test_ranges_hold_for_chains_built_in_python_and_good_values_pass():
    import pedalboard as pb

    from star_plugin.chain import StarChain

    with pytest.raises(ConfigError, match=r"stage 2 \(Resample\).*target_sample_rate"):
        StarChain([pb.Gain(0), pb.Resample(target_sample_rate=1e9)])
    chain = StarChain([pb.Gain(0)])
    with pytest.raises(ConfigError, match="centre_delay_ms"):
        chain.append(pb.Chorus(centre_delay_ms=500))
    assert len(chain) == 1
    x = 0.1 * np.random.default_rng(0).standard_normal((1, RATE)).astype(np.float32)
    y = StarChain.from_spec("Resample(target_sample_rate=4000) | Chorus(rate_hz=2) | "
                            "Phaser(feedback=-0.5) | Compressor(ratio=4)")(x, RATE)
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 1e-3


def test_a_stage_that_holds_audio_back_is_named(model_dir, monkeypatch):
    """The drain limit's message named no stage (Resample(1), now refused up front). Here the
    limit is lowered to 10 ms and a second is asked of a stream: the STAR stage, the one
    holding samples back (its latency), is named."""
    import star_plugin.chain as chain_module
    from star_plugin.chain import StarChain
    from star_plugin.errors import StarError

    chain = StarChain.from_spec("Gain(gain_db=0) | star()", model=str(model_dir),
                                backend="torch")
    chain(np.zeros((1, 4096), np.float32), RATE, buffer_size=256, reset=False)
    monkeypatch.setattr(chain_module, "FLUSH_LIMIT_S", 0.01)
    with pytest.raises(StarError, match=r"held back .* at stage 2 'StarEffect\("):
        chain.drain(RATE, 1, RATE, buffer_size=256)


# ----------------------------------------------------------------------------- 6. --chain + file

def test_chain_and_chain_file_together_are_refused(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write_tone(src)
    spec = tmp_path / "c.json"
    assert main(["chain", str(src), "-o", str(tmp_path / "a.wav"), "--chain", "Gain(6)",
                 "--save-chain", str(spec)]) == 0
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "b.wav", "--chain",
                        "Reverb()", "--chain-file", spec)
    assert_one_line_error(code, err, "--chain", "--chain-file", "not both")
    assert not (tmp_path / "b.wav").exists()


# ----------------------------------------------------------------------------- 7. literals

@pytest.mark.parametrize("spec,message", [
    ("Gain(gain_db=True)", "gain_db=True is a boolean"),
    ("Gain(True)", "gain_db=True is a boolean"),
    ("Reverb(room_size=False)", "room_size=False is a boolean"),
    ("Gain(gain_db=1, gain_db=2)", "keyword argument repeated: gain_db"),
    ("star(mix=0.5, mix=1)", "keyword argument repeated: mix"),
])
def test_chain_literals_follow_python(tmp_path, capsys, spec, message):
    src = tmp_path / "in.wav"
    write_tone(src)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain", spec)
    assert_one_line_error(code, err, "chain stage 1", message)
    assert not (tmp_path / "o.wav").exists()


def test_booleans_in_a_chain_file_and_real_switches(tmp_path):
    from star_plugin.chain import StarChain

    with pytest.raises(ConfigError, match="gain_db=True is a boolean"):
        StarChain.from_dict({"stages": [{"type": "Gain", "params": {"gain_db": True}}]})
    limiter = StarChain.from_spec("BrickwallLimiter(true_peak=True)")[0]  # a switch takes one
    assert limiter.true_peak is True


# ----------------------------------------------------------------------------- 8. impulse response

def test_an_impulse_response_that_is_not_audio_is_an_error(tmp_path, capsys):
    import pedalboard as pb

    from star_plugin.chain import StarChain

    src, text = tmp_path / "in.wav", tmp_path / "passwd"
    x = write_tone(src)
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        f"Convolution(impulse_response_filename='{text}')")
    assert_one_line_error(code, err, "Convolution", str(text), "not audio")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), np.float32), RATE)
    with pytest.raises(ConfigError, match="empty.wav.*no samples"):
        StarChain.from_spec(f"Convolution('{empty}')")
    with pytest.raises(ConfigError, match="passwd.*not audio"):
        StarChain([pb.Convolution(str(text))])  # Pedalboard itself takes it
    # a real impulse response (half level, 8 samples late) is applied
    ir = tmp_path / "ir.wav"
    sf.write(ir, np.r_[np.zeros(8), 0.5].astype(np.float32), RATE)
    assert main(["chain", str(src), "-o", str(tmp_path / "o.wav"), "--chain",
                 f"Convolution(impulse_response_filename='{ir}')"]) == 0
    y, _ = sf.read(tmp_path / "o.wav")
    assert not np.allclose(y, x[0], atol=1e-3)  # not the dry signal


# ----------------------------------------------------------------------------- 9. 0 frames

def test_a_wav_of_zero_frames_is_refused_by_chain(tmp_path, capsys):
    from star_plugin.chain import StarChain
    from star_plugin.chain_file import process_file
    from star_plugin.errors import AudioFileError

    empty = tmp_path / "zero.wav"
    sf.write(empty, np.zeros((0, 2), np.float32), RATE)
    code, err = run_cli(capsys, "chain", empty, "-o", tmp_path / "o.wav", "--chain", "Gain()")
    assert_one_line_error(code, err, "zero.wav", "no samples")
    with pytest.raises(AudioFileError, match="no samples"):
        process_file(StarChain.from_spec("Gain()"), empty, tmp_path / "o.wav")
    assert names(tmp_path) == ["zero.wav"]


# ----------------------------------------------------------------------------- 10. API rules

def _bad_audio(n=4096):
    x = 0.1 * np.random.default_rng(5).standard_normal((1, 1, n)).astype(np.float32)
    x[0, 0, 100] = np.nan
    x[0, 0, 200] = 1e25
    return x


def test_render_offline_warns_when_it_cleans(model_dir):
    from star_plugin.engine import render_offline

    x = _bad_audio()[0]
    with pytest.warns(BlockSanitizedWarning, match="render_offline: replaced 2"):
        y = render_offline(str(model_dir), x, RATE)
    assert np.isfinite(y).all()
    with pytest.raises(ValueError, match="no samples"):
        render_offline(str(model_dir), np.zeros((1, 0), np.float32), RATE)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_backend_encode_and_decode_follow_the_cli_rules(model_dir, onnx_dir, backend):
    from star_plugin.backend import open_model
    from star_plugin.export.runtime import OnnxVAE

    model = open_model(str(model_dir), "torch") if backend == "torch" else OnnxVAE(onnx_dir)
    with pytest.warns(BlockSanitizedWarning, match="encode: replaced 2"):
        latent = model.encode(_bad_audio())
    assert torch.isfinite(latent.mean).all()
    clean = _bad_audio()
    clean[0, 0, 100], clean[0, 0, 200] = 0.0, 1e4
    np.testing.assert_allclose(latent.mean.numpy(), model.encode(clean).mean.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="no samples"):
        model.encode(np.zeros((1, 1, 0), np.float32))
    z = latent.mean.numpy().copy()
    z[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf"):
        model.decode(z)
    with pytest.raises(ValueError, match="NaN/Inf"):
        model.decode(latent.with_mean(torch.from_numpy(z)))
    assert np.isfinite(np.asarray(model.decode(latent.mean.numpy()))).all()


def test_star_vae_encode_and_decode_follow_the_cli_rules():
    """The model class itself (StarVAE, what the trainer, exporter and API use) cleans NaN/Inf
    with a warning, refuses 0 samples and refuses a NaN latent."""
    from conftest import tiny_model

    model = tiny_model()
    x = torch.randn(1, 1, 400) * 0.1
    bad = x.clone()
    bad[0, 0, 10], bad[0, 0, 20] = float("nan"), float("inf")
    with pytest.warns(BlockSanitizedWarning, match="encode: replaced 2"):
        latent = model.encode(bad)
    assert torch.isfinite(latent.mean).all()
    with pytest.raises(ValueError, match="no samples"):
        model.encode(torch.zeros(1, 1, 0))
    z = latent.mean.clone()
    z[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN/Inf"):
        model.decode(z)
    assert torch.isfinite(model.decode(latent)).all()


# ----------------------------------------------------------------------------- 11. float64 1e300

def test_float64_extremes_are_clamped_not_zeroed(tmp_path, capsys):
    from star_plugin.audio import read_audio

    src = tmp_path / "huge64.wav"
    x = np.full((2000, 1), 1e300)
    x[1::2] *= -1
    x[10] = np.inf
    sf.write(src, x, RATE, subtype="DOUBLE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BlockSanitizedWarning)
        assert main(["chain", str(src), "-o", str(tmp_path / "o.wav"), "--chain",
                     "Gain(gain_db=0)"]) == 0
    y, _ = sf.read(tmp_path / "o.wav")
    assert y[10] == 0.0  # Inf -> 0
    rest = np.delete(y, 10)
    np.testing.assert_array_equal(np.abs(rest), 1e4)  # 1e300 -> the limit, not 0
    assert (np.sign(rest) == np.sign(np.delete(x[:, 0], 10))).all()
    audio, _ = read_audio(src)  # encode/recon/... read the same way: finite, then clamped
    assert np.isfinite(np.delete(audio[0], 10)).all() and np.abs(audio[0, 0]) >= 1e4


# ----------------------------------------------------------------------------- 12. bad latents

def _latent_variants(good, tmp_path):
    from safetensors.torch import load, save

    data = good.read_bytes()
    tensors = load(data)
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    meta = json.loads(header["__metadata__"]["star"])

    def write(name, tensors, meta):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(save(tensors, metadata={"star": json.dumps(meta)}))
        return path

    nan = dict(tensors, mean=tensors["mean"].clone())
    nan["mean"][0, 0, 2] = float("nan")
    empty = {k: v[..., :0].contiguous() for k, v in tensors.items()}
    return {
        "nan": (write("nan", nan, meta), "1 NaN/Inf"),
        "zero-frames": (write("zero", empty, meta), "no frames"),
        "structure-99": (write("split", tensors, {**meta, "structure_channels": 99}),
                         "structure_channels is 99"),
        "hop-text": (write("hop", tensors, {**meta, "hop": "1024"}), "hop is '1024'"),
        "layout-channels": (write("layout", tensors,
                                  {**meta, "layout": {**meta["layout"], "channels": 3}}),
                            "batch 3"),
        "huge-length": (write("long", tensors,
                              {**meta, "layout": {**meta["layout"], "samples": 10 ** 12}}),
                        "samples is 1000000000000"),
    }


def test_decode_of_a_damaged_latent_is_one_line(model_dir, tmp_path, capsys):
    src, good = tmp_path / "a.wav", tmp_path / "a.safetensors"
    write_tone(src)
    assert main(["encode", str(src), "-o", str(good), "--model", str(model_dir)]) == 0
    capsys.readouterr()
    for what, (path, message) in _latent_variants(good, tmp_path).items():
        code, err = run_cli(capsys, "decode", path, "-o", tmp_path / "d.wav", "--model",
                            model_dir)
        assert_one_line_error(code, err, path.name, message)
    assert not (tmp_path / "d.wav").exists()
    run = star("decode", tmp_path / "nan.safetensors", "-o", tmp_path / "d.wav", "--model",
               model_dir)  # the real CLI: exit 2, no traceback
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "nan.safetensors" in run.stderr


# ----------------------------------------------------------------------------- 13. disk full

def _file_size_limit(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_writes_past_a_file_size_limit_say_why(model_dir, tmp_path):
    """A full disk, simulated with RLIMIT_FSIZE (ulimit -f): chain printed a traceback (and
    a short file went out truncated without a word), recon "System error."."""
    small, large = tmp_path / "small.wav", tmp_path / "large.wav"
    write_tone(small, seconds=0.3)  # ~9.7 kB as 16-bit WAV: Pedalboard's writer hid it
    write_tone(large, seconds=3.0)
    limit = _file_size_limit(4096)
    for argv, out in (
            (["chain", small, "-o", tmp_path / "c1.wav", "--chain", "Gain(gain_db=-6)"], "c1.wav"),
            (["chain", large, "-o", tmp_path / "c2.wav", "--chain", "Gain(gain_db=-6)"], "c2.wav"),
            (["recon", large, "-o", tmp_path / "r", "--model", model_dir], "r/large.recon.wav"),
            (["encode", large, "-o", tmp_path / "e.safetensors", "--model", model_dir],
             "e.safetensors")):
        run = star(*argv, preexec_fn=limit)
        assert run.returncode == 2, (argv, run.stderr)
        assert "Traceback" not in run.stderr
        assert f"cannot write '{tmp_path / out}': File too large" in run.stderr, run.stderr
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.name not in
            ("small.wav", "large.wav")] == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_no_space_left_reason_comes_from_the_os(tmp_path):
    """The reason is asked of the OS when a library hides it: /dev/full fails every write
    with ENOSPC, as a full disk does."""
    from star_plugin.atomic import write_failure

    error = write_failure(tmp_path / "out.wav", RuntimeError("System error."), "/dev/full")
    assert str(error) == f"cannot write '{tmp_path / 'out.wav'}': No space left on device"
    error = write_failure(tmp_path / "out.wav", RuntimeError(f"bad '{tmp_path / '.x.tmp'}'"),
                          tmp_path / ".x.tmp")  # no OS reason: the library's, temp renamed
    assert ".x.tmp" not in str(error) and "out.wav" in str(error)


# ----------------------------------------------------------------------------- 14. names, places

def test_long_output_names_and_unwritable_places_name_the_users_path(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write_tone(src)
    long_name = tmp_path / ("a" * 236 + ".wav")  # 240 bytes: valid, its old temp was not
    assert main(["chain", str(src), "-o", str(long_name), "--chain", "Gain()"]) == 0
    assert names(tmp_path) == sorted(["in.wav", long_name.name])
    too_long = tmp_path / ("b" * 252 + ".wav")
    code, err = run_cli(capsys, "chain", src, "-o", too_long, "--chain", "Gain()")
    assert_one_line_error(code, err, too_long.name, "File name too long")
    for out in ("/proc/star-reliability/out.wav", "/proc/out.wav"):
        code, err = run_cli(capsys, "chain", src, "-o", out, "--chain", "Gain()")
        assert_one_line_error(code, err, f"cannot write '{out}'")
        assert ".star-" not in err  # never the temporary's name


def test_read_only_directory_names_the_users_path(model_dir, tmp_path, capsys):
    src = tmp_path / "in.wav"
    write_tone(src)
    ro = tmp_path / "ro"
    ro.mkdir()
    locked = False
    if os.geteuid() == 0:  # root ignores permissions: an immutable folder instead
        locked = subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode == 0
        if not locked:
            pytest.skip("running as root without chattr: no read-only folder to test")
    else:
        ro.chmod(0o555)
    try:
        for argv in (["chain", src, "-o", ro / "o.wav", "--chain", "Gain()"],
                     ["encode", src, "-o", ro / "e.safetensors", "--model", model_dir],
                     ["recon", src, "-o", ro / "sub", "--model", model_dir]):
            code, err = run_cli(capsys, *argv)
            assert_one_line_error(code, err, f"cannot write '{argv[3]}'")
            assert ".star-" not in err
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(ro)], check=True)
        ro.chmod(0o755)
    assert names(ro) == []


# ----------------------------------------------------------------------------- 15. who is named

def test_errors_name_the_file_or_stage_at_fault(tmp_path, capsys):
    src = tmp_path / "in.wav"
    write_tone(src)
    # an MP3 cut after its first frame header: Pedalboard reports 0 channels
    mp3 = tmp_path / "tone.mp3"
    sf.write(mp3, 0.3 * np.sin(np.arange(32000) / 10).astype(np.float32), RATE)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[:300])
    code, err = run_cli(capsys, "chain", cut, "-o", tmp_path / "o.wav", "--chain", "Gain()")
    err = "\n".join(line for line in err.splitlines() if "Xing" not in line)  # mpg123's own
    assert_one_line_error(code, err, "cut.mp3")
    assert "cannot write" not in err
    # the stages that made NaN/Inf (one Pedalboard call runs both)
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain",
                        "Gain(gain_db=3) | HighpassFilter(cutoff_frequency_hz=9000)")
    assert_one_line_error(code, err, "NaN/Inf", "stages 1-2",
                          "HighpassFilter(cutoff_frequency_hz=9000.0)")
    # a chain file whose top level is a list
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"type": "Gain"}]))
    code, err = run_cli(capsys, "chain", src, "-o", tmp_path / "o.wav", "--chain-file", listed)
    assert_one_line_error(code, err, "list.json", "object")
    assert names(tmp_path) == sorted(["in.wav", "tone.mp3", "cut.mp3", "list.json"])


def test_a_star_stage_making_nan_is_named(model_dir, tmp_path):
    """Between Pedalboard plugins: the segment after the STAR stage is named alone."""
    from star_plugin.chain import StarChain
    from star_plugin.chain_file import process_file
    from star_plugin.errors import AudioFileError

    src = tmp_path / "in.wav"
    write_tone(src)
    chain = StarChain.from_spec("Gain(gain_db=0) | star() | HighpassFilter("
                                "cutoff_frequency_hz=9000)", model=str(model_dir),
                                backend="torch")
    with pytest.raises(AudioFileError, match=r"at stage 3 'HighpassFilter"):
        process_file(chain, src, tmp_path / "o.wav", buffer_size=512)


# ----------------------------------------------------------------------------- 16. threads, API

THREADS_SCRIPT = r"""
import sys, threading
import numpy as np
from star_plugin.engine import StreamingEngine
from star_plugin.export.runtime import OnnxVAE

model = OnnxVAE(sys.argv[1])
engine = StreamingEngine(model, 16000, 2, backend="onnx")
inside = [0]
overlaps = [0]
core = engine.core
for name in ("encode", "decode"):  # the real streamer, counting concurrent entries
    real = getattr(core, name)
    def counted(*args, _real=real):
        inside[0] += 1
        if inside[0] > 1:
            overlaps[0] += 1
        try:
            return _real(*args)
        finally:
            inside[0] -= 1
    setattr(core, name, counted)

errors, outputs = [], []
def worker(seed):
    rng = np.random.default_rng(seed)
    try:
        for _ in range(60):
            n = int(rng.integers(1, 700))
            y = engine.process((0.1 * rng.standard_normal((2, n))).astype(np.float32))
            assert y.shape == (2, n) and np.isfinite(y).all()
            outputs.append(n)
    except BaseException as exc:
        errors.append(repr(exc))

for round_ in range(int(sys.argv[2])):
    threads = [threading.Thread(target=worker, args=(round_ * 10 + i,)) for i in range(6)]
    for t in threads: t.start()
    for t in threads: t.join()
    if round_ % 3 == 0:
        engine.reset()
# the state is intact: after a reset it equals a fresh engine
engine.reset()
fresh = StreamingEngine(model, 16000, 2, backend="onnx")
x = (0.1 * np.random.default_rng(99).standard_normal((2, 4000))).astype(np.float32)
same = all(np.array_equal(engine.process(x[:, i:i + 500]), fresh.process(x[:, i:i + 500]))
           for i in range(0, 4000, 500))
print("errors", len(errors), errors[:2], "overlaps", overlaps[0], "blocks", len(outputs),
      "same", same)
"""


def test_streaming_engine_shared_by_six_threads(onnx_dir, tmp_path):
    """One engine, six threads, real ONNX Runtime sessions: ORT errors in one run and a
    segfault in another before. In a child process, so a crash fails this test instead of
    killing pytest; many rounds and many runs."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    for attempt in range(3):
        run = subprocess.run([sys.executable, str(script), str(onnx_dir), "12"],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (attempt, run.returncode, run.stderr[-2000:])
        assert f"errors 0 [] overlaps 0 blocks {12 * 6 * 60} same True" in run.stdout, \
            run.stdout


def test_threaded_calls_in_process_are_serialised(onnx_dir):
    """The same in this process with the torch backend too (its state is a plain dict)."""
    import threading

    from star_plugin.engine import StreamingEngine

    engine = StreamingEngine(tiny_model(), RATE, 1, backend="torch")
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(40):
                n = int(rng.integers(1, 600))
                y = engine.process(rng.standard_normal((1, n)).astype(np.float32) * 0.1)
                assert y.shape == (1, n) and np.isfinite(y).all()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_api_misuse_gets_one_clear_error_each(model_dir, onnx_dir):
    from star_plugin.effects import StarEffect
    from star_plugin.export.runtime import OnnxVAE
    from star_plugin.latent import Latent

    effect = StarEffect(str(model_dir), backend="torch")
    x = np.zeros((1, 512), np.float32)
    for rate in (float("nan"), float("inf"), 44100.5, True, "16000"):
        with pytest.raises(ValueError, match="sample_rate must be a whole number"):
            effect(x, rate)
    assert effect(x, 16000.0).shape == x.shape

    onnx = OnnxVAE(onnx_dir)
    block = np.zeros((1, 1, 256), np.float32)
    good = onnx.init_state(1)
    for bad, message in (({}, "lacks input"), ("state", "must be a dict"),
                         (onnx.init_state(2), "expected"),
                         ({**good, "skip": -1}, "'skip'"),
                         ({**good, "encoder": {}}, "is shaped None")):
        with pytest.raises(ValueError, match=message):
            onnx.stream(block, bad)
    out, state = onnx.stream(block, good)  # and a good one still works, repeatedly
    out, state = onnx.stream(block, state)
    assert out.shape == block.shape
    streamer = onnx.streamer()
    with pytest.raises(ValueError, match=r"block must be \(batch=1, 1, samples\)"):
        streamer.process(np.zeros((1, 256), np.float32))
    assert streamer.process(block).shape == block.shape

    model = tiny_model()
    with torch.no_grad():
        a = model.encode(torch.zeros(2, 1, 4096))
        b = model.encode(torch.zeros(3, 1, 2048))
        one = model.encode(torch.zeros(1, 1, 1024))
    with pytest.raises(TypeError, match="takes a Latent, got Tensor"):
        a.swap_texture(b.mean)
    with pytest.raises(ValueError, match="batch 3"):
        a.swap_texture(b)
    empty = Latent(one.mean[..., :0], None, one.structure_channels, one.sample_rate, one.hop)
    with pytest.raises(ValueError, match="no frames"):
        a.swap_texture(empty)
    other_model = Latent(one.mean, None, one.structure_channels, 44100, one.hop)
    with pytest.raises(ValueError, match="different models"):
        a.swap_texture(other_model)
    swapped = a.swap_texture(one)  # batch 1 serves both, frames looped to fit
    assert swapped.mean.shape == a.mean.shape


# ----------------------------------------------------------------------------- 17. stream rate

@pytest.mark.parametrize("value", ["1", "7999", "384001"])
def test_stream_sample_rate_is_one_range_checked_first(tmp_path, capsys, value):
    src = tmp_path / "a.wav"
    write_tone(src)
    for command in ("stream", "decode"):
        code, err = run_cli(capsys, command, src, "-o", tmp_path / "b.wav", "--sample-rate",
                            value, "--model", tmp_path / "no-such-model")
        assert_one_line_error(code, err, "--sample-rate", "8000..384000")
    # 8000 passes the option check: what fails then is the (missing) model
    code, err = run_cli(capsys, "stream", src, "-o", tmp_path / "b.wav", "--sample-rate",
                        "8000", "--model", tmp_path / "no-such-model")
    assert code == 2 and "--sample-rate" not in err and "no-such-model" in err
    assert names(tmp_path) == ["a.wav"]
