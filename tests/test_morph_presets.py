"""Morph presets (bundled, load/save round trip, validation errors) and the morph/stream CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from star_plugin.errors import ConfigError
from star_plugin.morph import MorphParams
from star_plugin.morph_presets import MorphPreset, list_presets, load_preset, save_preset


def test_bundled_presets_load_and_validate():
    presets = list_presets()
    assert len(presets) >= 5
    assert {"timbre-transfer", "structure-swap", "frozen-texture"} <= {p.name for p in presets}
    assert load_preset("timbre-transfer").params.texture_amount == 1.0


def test_save_load_round_trip(tmp_path):
    preset = MorphPreset("mine", "my sound", MorphParams(structure_amount=0.3, texture_amount=0.6,
                                                        temperature=0.2, mode="hold", seed=7))
    path = save_preset(preset, tmp_path / "mine.json")
    assert load_preset(path) == preset


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["params"].update(texture_amount=2.0), "'texture_amount' must be a number in 0..1"),
    (lambda d: d["params"].update(mode="spin"), "'mode' must be one of"),
    (lambda d: d["params"].update(wobble=1), "unknown morph parameters: wobble"),
    (lambda d: d.update(version=9), "version 9"),
    (lambda d: d.update(format="other"), "not a STAR morph preset"),
])
def test_invalid_presets_name_the_file_and_field(tmp_path, edit, message):
    data = load_preset("texture-blend").to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as info:
        load_preset(path)
    assert "bad.json" in str(info.value)


def test_unknown_preset_lists_the_bundled_ones():
    with pytest.raises(ConfigError, match="timbre-transfer"):
        load_preset("no-such-preset")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "star_plugin.cli", *args],
                          capture_output=True, text=True)


def test_morph_and_stream_cli(tmp_path, saved_tiny_model):
    directory, _ = saved_tiny_model
    rate = 16000
    t = np.arange(rate) / rate
    sf.write(tmp_path / "content.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32),
             rate)
    sf.write(tmp_path / "texture.wav",
             np.random.default_rng(0).standard_normal((rate, 2)).astype(np.float32) * 0.2, rate)
    morph = _run("morph", str(tmp_path / "content.wav"), "--texture-source",
                 str(tmp_path / "texture.wav"),
                 "-o", str(tmp_path / "morphed.wav"), "--preset", "timbre-transfer",
                 "--model", str(directory))
    assert morph.returncode == 0, morph.stderr
    stream = _run("stream", str(tmp_path / "content.wav"), "--texture",
                  str(tmp_path / "texture.wav"), "-o", str(tmp_path / "streamed.wav"),
                  "--preset", "timbre-transfer", "--block", "100", "--backend", "torch",
                  "--model", str(directory))
    assert stream.returncode == 0, stream.stderr
    assert "latency" in stream.stdout and "p99" in stream.stdout
    morphed, _ = sf.read(tmp_path / "morphed.wav", dtype="float32")
    streamed, _ = sf.read(tmp_path / "streamed.wav", dtype="float32")
    original, _ = sf.read(tmp_path / "content.wav", dtype="float32")
    assert morphed.shape == streamed.shape == original.shape
    assert np.abs(morphed - original).max() > 1e-2  # the morph changed the sound
    assert np.abs(morphed - streamed).max() <= 1e-4  # bounce == real time, through the CLI
    bad = _run("morph", str(tmp_path / "content.wav"), "-o", str(tmp_path / "x.wav"),
               "--texture-source", str(tmp_path / "texture.wav"), "--texture-amount", "3",
               "--model", str(directory))
    assert bad.returncode == 2 and "'texture_amount' must be a number in 0..1" in bad.stderr
