"""One meaning of "texture": ``texture_amount``/``structure_amount`` are amounts,
``texture_source`` is what the texture comes from (a path, audio or a Latent), everywhere.
Files written with the old names (presets, chain files) load and render identically; the old
Python keywords still work, with a DeprecationWarning; the old CLI options are aliases.
Real files on disk, a real (tiny) model, real Pedalboard plugins."""
import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

from star_plugin.chain import StarChain
from star_plugin.cli import main
from star_plugin.effects import StarEffect
from star_plugin.engine import StreamingEngine, render_offline
from star_plugin.errors import ConfigError
from star_plugin.morph import MorphParams, latent_from_frames, texture_from_file
from star_plugin.morph_presets import load_preset

RATE = 16000  # the tiny model's rate: no resampling, so every route must agree exactly
OLD_PARAMS = {"structure": 0.1, "texture": 0.6, "temperature": 0.3, "mode": "hold"}
NEW_PARAMS = {"structure_amount": 0.1, "texture_amount": 0.6, "temperature": 0.3,
              "mode": "hold"}


def _noise(channels=1, n=6000, seed=0):
    return (np.random.default_rng(seed).standard_normal((channels, n)) * 0.2).astype(np.float32)


@pytest.fixture
def files(tmp_path, saved_tiny_model):
    """(model directory, model, content.wav, ref.wav) at the model's rate."""
    directory, model = saved_tiny_model
    content, ref = tmp_path / "content.wav", tmp_path / "ref.wav"
    t = np.arange(RATE) / RATE
    sf.write(content, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), RATE)
    sf.write(ref, _noise(1, 8000, seed=1)[0], RATE, subtype="FLOAT")
    return directory, model, content, ref


def _stream(engine, x, block=256):
    return np.concatenate([engine.process(x[:, i:i + block])
                           for i in range(0, x.shape[1], block)], axis=1)


# ------------------------------------------------------------------------- files
def test_old_preset_file_loads_as_the_same_parameters(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    for path, params in ((old, OLD_PARAMS), (new, NEW_PARAMS)):
        path.write_text(json.dumps({"format": "star-morph-preset", "version": 1, "name": "p",
                                    "description": "d", "params": params}))
    assert load_preset(old) == load_preset(new)
    assert load_preset(old).params.to_dict()["texture_amount"] == 0.6
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"format": "star-morph-preset", "version": 1, "name": "p",
                                "description": "d",
                                "params": {"texture": 0.5, "texture_amount": 0.5}}))
    with pytest.raises(ConfigError, match="both.json.*'texture_amount' or its old name"):
        load_preset(both)


def test_bundled_presets_use_the_new_keys_and_the_output_stage():
    from star_plugin.morph_presets import bundled_dir

    for path in sorted(bundled_dir().glob("*.json")):
        params = json.loads(path.read_text())["params"]
        assert "texture" not in params and "structure" not in params, path.name
        assert {"texture_amount", "structure_amount", "mix", "output_gain_db"} <= set(params)
        load_preset(path)
    assert load_preset("grain-cloud").params.mix == 0.5


def test_old_chain_file_renders_identically(tmp_path, files, capsys):
    directory, _, content, ref = files
    old = {"format_version": 1, "stages": [
        {"type": "HighpassFilter", "params": {"cutoff_frequency_hz": 100.0}},
        {"type": "star", "preset": None, "texture": str(ref), "texture_prompt": None,
         "generator": None, "params": OLD_PARAMS}]}
    new = json.loads(json.dumps(old))
    new["stages"][1].pop("texture")
    new["stages"][1].update(texture_source=str(ref), params=NEW_PARAMS)
    outs = {}
    for name, data in (("old", old), ("new", new)):
        chain_file = tmp_path / f"{name}.json"
        chain_file.write_text(json.dumps(data))
        out = tmp_path / f"{name}.wav"
        assert main(["chain", str(content), "-o", str(out), "--chain-file", str(chain_file),
                     "--model", str(directory), "--backend", "torch"]) == 0
        outs[name] = sf.read(out, dtype="float32")[0]
    original = sf.read(content, dtype="float32")[0]
    assert np.abs(outs["old"] - original).max() > 1e-2  # the STAR stage did something
    np.testing.assert_array_equal(outs["old"], outs["new"])
    # an old file saved again is written with the new names
    saved = StarChain.from_dict(old, model=str(directory), backend="torch").to_dict()
    star = saved["stages"][1]
    assert star["texture_source"] == str(ref) and "texture" not in star
    assert star["params"]["texture_amount"] == 0.6 and "texture" not in star["params"]
    both = {"stages": [{"type": "star", "texture": str(ref), "texture_source": str(ref)}]}
    with pytest.raises(ConfigError, match="stage 1.*texture_source.*not both"):
        StarChain.from_dict(both, model=str(directory), backend="torch")


def test_old_chain_text_means_the_same(files):
    directory, _, _, ref = files
    x = _noise(2, 5000, seed=3)
    old = StarChain.from_spec(f"Gain(2) | star(texture=0.6, structure=0.1, temperature=0.3, "
                              f"mode='hold', texture_file='{ref}')", model=str(directory),
                              backend="torch")
    new = StarChain.from_spec(f"Gain(2) | star(texture_amount=0.6, structure_amount=0.1, "
                              f"temperature=0.3, mode='hold', texture_source='{ref}')",
                              model=str(directory), backend="torch")
    np.testing.assert_array_equal(old(x, RATE), new(x, RATE))
    with pytest.raises(ConfigError, match="texture_source='.*ref.wav'"):
        StarChain.from_spec(f"star(texture='{ref}')", model=str(directory), backend="torch")


# ------------------------------------------------------------------------- Python API
def test_old_keywords_warn_and_mean_the_same(files):
    _, model, _, ref = files
    with pytest.warns(DeprecationWarning, match="texture_amount"):
        old = MorphParams(texture=0.6, structure=0.1)
    assert old == MorphParams(texture_amount=0.6, structure_amount=0.1)
    assert MorphParams(0.1, 0.6) == old  # positional order unchanged
    with pytest.warns(DeprecationWarning):
        assert old.texture == 0.6
    with pytest.raises(ConfigError, match="'texture_amount' or its old name 'texture'"):
        MorphParams(texture=0.6, texture_amount=0.6)

    frames = torch.randn(1, model.config.latent_channels, 7)
    x = _noise(1, 4000, seed=2)
    with pytest.warns(DeprecationWarning, match="texture_source"):
        legacy = StreamingEngine(model, RATE, 1, backend="torch", params=MorphParams(),
                                 texture=frames)
    current = StreamingEngine(model, RATE, 1, backend="torch", params=MorphParams(),
                              texture_source=latent_from_frames(model, frames))
    np.testing.assert_array_equal(_stream(legacy, x), _stream(current, x))
    with pytest.warns(DeprecationWarning, match="texture_amount"):
        legacy.morph.set(texture=0.3)
    assert legacy.morph.params.texture_amount == 0.3
    with pytest.warns(DeprecationWarning):
        bounced_old = render_offline(model, x, RATE, MorphParams(), texture=frames)
    bounced = render_offline(model, x, RATE, MorphParams(),
                             texture_source=latent_from_frames(model, frames))
    np.testing.assert_array_equal(bounced_old, bounced)

    with pytest.warns(DeprecationWarning):
        fx_old = StarEffect(model, MorphParams(), texture=str(ref), backend="torch")
    fx_new = StarEffect(model, MorphParams(), texture_source=str(ref), backend="torch")
    assert fx_old.texture_file == fx_new.texture_file == str(ref)
    np.testing.assert_array_equal(fx_old(x, RATE), fx_new(x, RATE))
    with pytest.raises(ConfigError, match="not both"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        StarEffect(model, texture=str(ref), texture_source=str(ref), backend="torch")


def test_texture_source_takes_a_path_audio_or_a_latent(files):
    _, model, _, ref = files
    audio = sf.read(ref, dtype="float32")[0]
    x = _noise(1, 4000, seed=4)
    sources = {"path": str(ref), "numpy": audio, "torch": torch.from_numpy(audio),
               "stereo numpy": np.stack([audio, audio]), "(audio, rate)": (audio, RATE),
               "Latent": texture_from_file(model, ref)}
    outs = {name: _stream(StreamingEngine(model, RATE, 1, backend="torch",
                                          texture_source=source), x)
            for name, source in sources.items()}
    plain = _stream(StreamingEngine(model, RATE, 1, backend="torch"), x)
    assert np.abs(outs["path"] - plain).max() > 1e-3  # the source changes the sound
    for name, out in outs.items():
        np.testing.assert_allclose(out, outs["path"], atol=1e-6, err_msg=name)
    # the engine's audio is at the host rate; a source at another rate says so with a pair
    engine = StreamingEngine(model, 32000, 1, backend="torch", texture_source=(audio, RATE))
    assert np.isfinite(_stream(engine, _noise(1, 3000))).all()
    engine.set_texture_source(str(ref))  # swapped off the audio thread
    for bad, message in ((torch.zeros(1, 8, 5), "pass latent frames as a Latent"),
                         (np.zeros((1, 0), np.float32), "no samples"),
                         (42, "texture_source must be a file path"),
                         ((audio, 0), "rate must be a positive integer")):
        with pytest.raises(ConfigError, match=message):
            StreamingEngine(model, RATE, 1, backend="torch", texture_source=bad)


# ------------------------------------------------------------------------- CLI
def test_cli_new_options_and_old_aliases_agree(tmp_path, files, capsys):
    directory, _, content, ref = files
    common = [str(content), "--model", str(directory), "--temperature", "0.2"]
    new, old = tmp_path / "new.wav", tmp_path / "old.wav"
    assert main(["morph", *common, "-o", str(new), "--texture-source", str(ref),
                 "--texture-amount", "0.7", "--structure-amount", "0.2"]) == 0
    assert "texture amount 0.7" in capsys.readouterr().out
    assert main(["morph", *common, "-o", str(old), "--texture", str(ref), "--amount", "0.7",
                 "--structure", "0.2"]) == 0
    np.testing.assert_array_equal(sf.read(new)[0], sf.read(old)[0])
    assert main(["presets", "list"]) == 0
    listing = capsys.readouterr().out
    assert "texture_amount" in listing and "grain-cloud" in listing
