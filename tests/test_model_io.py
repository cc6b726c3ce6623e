"""Model directories load and save through one loader; bad files give clear errors."""
import json

import pytest
import torch

from star_plugin.config import VAEConfig
from star_plugin.errors import ModelFileError
from star_plugin.latent import Latent
from star_plugin.model_io import load_vae, save_vae

from conftest import tiny_model


def test_round_trip_gives_identical_outputs(saved_tiny_model):
    directory, model = saved_tiny_model
    loaded = load_vae(directory)
    x = torch.randn(1, 1, 2000)
    with torch.no_grad():
        assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    assert loaded.config == model.config
    assert not any(p.name.endswith(".tmp") for p in directory.iterdir())
    # a path to a file inside the directory works too
    assert load_vae(directory / "config.json").config == model.config


def test_unknown_name_lists_what_exists():
    with pytest.raises(ModelFileError, match="'no-such-model' not found"):
        load_vae("no-such-model")


def test_missing_weights(saved_tiny_model):
    directory, _ = saved_tiny_model
    (directory / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="model.safetensors' do not exist"):
        load_vae(directory)


def test_corrupt_config_json(saved_tiny_model):
    directory, _ = saved_tiny_model
    (directory / "config.json").write_text('{"family": "spectral", ')
    with pytest.raises(ModelFileError, match=r"config.json' is not valid JSON"):
        load_vae(directory)


def test_invalid_config_value_names_the_file_and_field(saved_tiny_model):
    directory, _ = saved_tiny_model
    data = json.loads((directory / "config.json").read_text())
    data["family"] = "transformer"
    (directory / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match=r"config.json'.*family must be one of"):
        load_vae(directory)


def test_newer_config_version_is_refused(saved_tiny_model):
    directory, _ = saved_tiny_model
    data = json.loads((directory / "config.json").read_text())
    data["version"] = 99
    (directory / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="newer than this star_plugin"):
        load_vae(directory)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_weights(saved_tiny_model, cut):
    directory, _ = saved_tiny_model
    path = directory / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        load_vae(directory)


def test_garbage_weights(saved_tiny_model):
    directory, _ = saved_tiny_model
    (directory / "model.safetensors").write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(ModelFileError, match="model.safetensors' is corrupt"):
        load_vae(directory)


def test_weights_that_do_not_match_the_config(saved_tiny_model, tmp_path):
    directory, _ = saved_tiny_model
    data = json.loads((directory / "config.json").read_text())
    data["hidden"] = 24
    (directory / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="does not match.*shape mismatch"):
        load_vae(directory)
    other = save_vae(tiny_model(backbone="cnn"), tmp_path / "cnn")
    (other / "model.safetensors").write_bytes((directory / "model.safetensors").read_bytes())
    with pytest.raises(ModelFileError, match="missing .* weights"):
        load_vae(other)


def test_nan_weights_are_refused(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    directory = save_vae(model, tmp_path / "nan")
    with pytest.raises(ModelFileError, match="NaN or Inf"):
        load_vae(directory)


def test_config_json_round_trip_and_validation():
    cfg = VAEConfig(family="waveform", strides=[2, 8], latent_channels=16, structure_channels=4)
    assert VAEConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.hop == 16
    with pytest.raises(Exception, match="unknown model config keys: colour"):
        VAEConfig.from_dict({**cfg.to_dict(), "colour": "red"})
    with pytest.raises(Exception, match="structure_channels must be in 0..latent_channels"):
        VAEConfig(latent_channels=8, structure_channels=9)


def test_latent_knows_its_split():
    model = tiny_model()
    with torch.no_grad():
        latent = model.encode(torch.randn(2, 1, 700))
    assert isinstance(latent, Latent)
    k = model.config.structure_channels
    assert latent.structure.shape[1] == k
    assert latent.texture.shape[1] == model.config.latent_channels - k
    assert torch.equal(torch.cat([latent.structure, latent.texture], 1), latent.mean)
    assert latent.frame_rate == pytest.approx(model.latent_rate)
    with torch.no_grad():
        other = model.encode(torch.randn(1, 1, 300))
    swapped = latent.swap_texture(other)
    assert torch.equal(swapped.structure, latent.structure)
    assert torch.equal(swapped.texture[0, :, :other.frames], other.texture[0])
    assert model.decode(swapped).shape == (2, 1, 700)
