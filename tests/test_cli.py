"""The star command line on real files: any format, sample rate and channel count."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from star_plugin.cli import main


def write_tone(path, rate, channels, seconds=0.5):
    t = np.arange(int(rate * seconds)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)])
    sf.write(path, audio.T, rate)
    return audio


def test_info_json(saved_tiny_model, capsys):
    directory, model = saved_tiny_model
    assert main(["info", str(directory), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["hop"] == model.hop
    assert facts["latency_samples"] == model.latency_samples
    assert facts["structure_channels"] == model.config.structure_channels
    assert facts["parameters"] == model.num_parameters()
    assert facts["latent_rate_hz"] == pytest.approx(model.sample_rate / model.hop, abs=1e-3)


def test_info_text_via_console_script(saved_tiny_model):
    directory, model = saved_tiny_model
    out = subprocess.run([sys.executable, "-m", "star_plugin.cli", "info", str(directory)],
                         capture_output=True, text=True, check=True).stdout
    assert f"latency          {model.latency_samples} samples" in out
    assert "structure [0, 3)" in out


@pytest.mark.parametrize("rate,channels,ext", [(8000, 1, "wav"), (44100, 2, "flac"),
                                                (96000, 6, "wav"), (22050, 1, "ogg")])
def test_encode_decode_round_trip_keeps_format(saved_tiny_model, tmp_path, rate, channels, ext):
    directory, _ = saved_tiny_model
    src = tmp_path / f"in.{ext}"
    audio = write_tone(src, rate, channels)
    lat = tmp_path / "in.latent.safetensors"
    assert main(["encode", str(src), "-o", str(lat), "--model", str(directory)]) == 0
    out = tmp_path / "out.wav"
    assert main(["decode", str(lat), "-o", str(out), "--model", str(directory)]) == 0
    decoded, out_rate = sf.read(out, always_2d=True)
    assert out_rate == rate
    assert decoded.shape == (audio.shape[1], channels)
    assert np.isfinite(decoded).all()


def test_recon_many_files(saved_tiny_model, tmp_path, capsys):
    directory, _ = saved_tiny_model
    files = []
    for i, (rate, ch) in enumerate([(16000, 1), (48000, 2), (11025, 1)]):
        path = tmp_path / f"clip{i}.wav"
        write_tone(path, rate, ch, seconds=0.3)
        files.append(str(path))
    out_dir = tmp_path / "recon"
    assert main(["recon", *files, "-o", str(out_dir), "--model", str(directory)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("SI-SDR") == 3
    for i, (rate, ch) in enumerate([(16000, 1), (48000, 2), (11025, 1)]):
        info = sf.info(out_dir / f"clip{i}.recon.wav")
        assert (info.samplerate, info.channels) == (rate, ch)


def test_unreadable_audio_gives_a_clear_error(saved_tiny_model, tmp_path, capsys):
    directory, _ = saved_tiny_model
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00junk" * 10)
    code = main(["encode", str(bad), "-o", str(tmp_path / "x.safetensors"),
                 "--model", str(directory)])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.wav" in err and "Traceback" not in err
    assert not (tmp_path / "x.safetensors").exists()


def test_recon_reports_bad_files_and_continues(saved_tiny_model, tmp_path, capsys):
    directory, _ = saved_tiny_model
    good = tmp_path / "good.wav"
    write_tone(good, 16000, 1, 0.2)
    assert main(["recon", str(tmp_path / "missing.wav"), str(good), "-o", str(tmp_path / "o"),
                 "--model", str(directory)]) == 1
    captured = capsys.readouterr()
    assert "missing.wav" in captured.err
    assert (tmp_path / "o" / "good.recon.wav").exists()


def test_decode_refuses_a_file_that_is_not_a_latent(saved_tiny_model, tmp_path, capsys):
    directory, _ = saved_tiny_model
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not a latent")
    assert main(["decode", str(fake), "-o", str(tmp_path / "o.wav"), "--model", str(directory)]) == 2
    assert "fake.safetensors" in capsys.readouterr().err


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


def test_nan_audio_is_sanitised_with_a_warning(saved_tiny_model, tmp_path, capsys):
    directory, _ = saved_tiny_model
    src = tmp_path / "nan.wav"
    audio = np.zeros((1, 4000), dtype=np.float32)
    audio[0, 100:110] = np.nan
    sf.write(src, audio.T, 16000, subtype="FLOAT")
    assert main(["recon", str(src), "-o", str(tmp_path / "r"), "--model", str(directory)]) == 0
    assert "replaced 10 NaN/Inf samples" in capsys.readouterr().err
    out, _ = sf.read(tmp_path / "r" / "nan.recon.wav")
    assert np.isfinite(out).all()


def test_plugin_build_help_reads_right_and_the_format_flags_parse(capsys):
    """--no-clap / --no-vst3 once printed "(default: True)", which reads as "skipped by
    default"; each pair shares one default: None, build the format when its SDK is found."""
    assert main(["plugin", "build", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split()).replace("dpf- source", "dpf-source")
    assert "(default: True)" not in help_text and "(default: False)" not in help_text
    assert "--no-clap do not build the CLAP plugin (default: built when dpf-source" in help_text
    import argparse
    from star_plugin import native_build
    parser = argparse.ArgumentParser()
    native_build.add_arguments(parser)
    for argv, clap, vst3 in (([], None, None), (["--no-clap"], False, None),
                             (["--clap", "--no-vst3"], True, False), (["--vst3"], None, True)):
        parsed = parser.parse_args(argv)
        assert (parsed.clap, parsed.vst3) == (clap, vst3), argv
