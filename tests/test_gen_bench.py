"""STAR-Gen evaluation and use: the self-trained evaluator classifier, the Fréchet distance,
`star bench gen` end to end, and a generated latent as the morph engine's texture source."""
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import star_plugin as star
from star_plugin.bench.audio_classifier import (EvaluatorError, frechet_distance, load_classifier,
                                                log_mel, save_classifier, train_classifier)
from star_plugin.chain import StarChain
from star_plugin.cli import main
from star_plugin.engine import StreamingEngine
from star_plugin.errors import ConfigError
from star_plugin.gen.texture import texture_from_prompt
from star_plugin.model_io import load_vae, save_vae
from star_plugin.morph import MorphParams
from star_plugin.training.gen_trainer import GenTrainConfig, GenTrainer

from conftest import make_tiny_corpus, tiny_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny corpus, VAE and generator (a few steps: the plumbing, not the quality)."""
    root = tmp_path_factory.mktemp("genbench")
    corpus = make_tiny_corpus(root / "corpus", clips=12, seconds=1.0)
    vae_dir = save_vae(tiny_model(), root / "vae")
    config = GenTrainConfig.from_dict({
        "out": str(root / "run"), "vae": str(vae_dir), "corpus": str(corpus),
        "model": {"width": 32, "layers": 2, "heads": 2, "max_text_tokens": 24, "patch": 2},
        "batch_size": 4, "steps": 4, "min_seconds": 0.2, "max_seconds": 0.5, "device": "cpu",
        "cache": str(root / "cache.safetensors")})
    generator = GenTrainer(config).fit()
    return root, corpus, vae_dir, generator


def _tone(freq, rate=16000, seconds=1.0, seed=0):
    t = np.arange(int(rate * seconds)) / rate
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    return (0.5 * np.sin(2 * np.pi * freq * t + phase))[None].astype(np.float32)


def _noise(rate=16000, seconds=1.0, seed=0):
    return (0.3 * np.random.default_rng(seed).standard_normal((1, int(rate * seconds)))).astype(
        np.float32)


def test_evaluator_learns_labels_and_survives_a_save_load_round_trip(tmp_path):
    clips = [(_tone(200 + 40 * i, seed=i), "instrument") for i in range(12)] + \
            [(_noise(seed=i), "texture") for i in range(12)]
    mels = [log_mel(a, 16000) for a, _ in clips]
    labels = [{"source": s, "family": s + "-family"} for _, s in clips]
    model = train_classifier(mels, labels, epochs=8, batch_size=8, crop_frames=40, seed=0)
    held_out = [_tone(330, seed=50), _tone(610, seed=51), _noise(seed=52), _noise(seed=53)]
    # at another rate and in stereo: the evaluator converts
    held_out = [np.repeat(a, 2, axis=0) for a in held_out]
    result = model.analyse(held_out, 16000)
    assert result["source"] == ["instrument", "instrument", "texture", "texture"]
    assert result["embedding"].shape == (4, 128)
    directory = save_classifier(model, tmp_path / "evaluator", {"note": "test"})
    again = load_classifier(directory).analyse(held_out, 16000)
    assert again["source"] == result["source"]
    assert np.allclose(again["embedding"], result["embedding"], atol=1e-6)


def test_evaluator_files_give_clear_errors(tmp_path):
    with pytest.raises(EvaluatorError, match="not an evaluator directory"):
        load_classifier(tmp_path / "missing")
    model = train_classifier([log_mel(_noise(seed=i), 16000) for i in range(2)],
                             [{"source": "a", "family": "x"}, {"source": "b", "family": "y"}],
                             epochs=1, batch_size=2)
    directory = save_classifier(model, tmp_path / "ev")
    (directory / "model.safetensors").write_bytes(b"truncated")
    with pytest.raises(EvaluatorError, match="cannot be loaded"):
        load_classifier(directory)


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert abs(frechet_distance(a, a)) < 1e-9
    # independent Gaussians: |mu_a - mu_b|^2 + sum (sd_a - sd_b)^2
    b = a * np.array([1.0, 2.0, 0.5]) + np.array([1.0, 0.0, -2.0])
    expected = 1.0 + 4.0 + (1 - 2) ** 2 + (1 - 0.5) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(a[:1], b)


def test_bench_gen_end_to_end(trained, tmp_path, capsys):
    root, corpus, vae_dir, generator = trained
    out = tmp_path / "gen.json"
    code = main(["bench", "gen", str(corpus), "--generator", f"tiny={generator}",
                 "--evaluator", str(tmp_path / "evaluator"), "--train-evaluator",
                 "--evaluator-epochs", "1", "--seconds", "0.5", "--steps", "2", "--batch", "1",
                 "--speed-seconds", "0.5", "--speed-repeats", "1", "--json", str(out),
                 "--markdown", str(tmp_path / "gen.md")])
    assert code == 0
    result = json.loads(out.read_text())
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    train_captions = {r["caption"] for r in rows if r["split"] == "train"}
    held_out = sum(r["caption"] not in train_captions for r in rows if r["split"] == "test")
    assert result["clips"] == 2 and result["held_out_captions"] == held_out
    row = result["generators"][0]
    assert row["label"] == "tiny"
    for what in ("ceiling", "generated"):
        assert 0.0 <= row[what]["all"]["source"] <= 1.0
        assert row[what]["all"]["n"] == 2 and row[what]["held_out"]["n"] == held_out
        assert math.isfinite(row[what]["frechet"])
    for what in ("real", "generated"):  # the latent-space probe judge
        assert 0.0 <= row["latent"][what]["all"]["family"] <= 1.0
        assert row["latent"][what]["held_out"]["n"] == held_out
    assert math.isfinite(row["latent"]["frechet"]) and row["latent"]["frechet"] >= 0
    assert row["speed"]["median_s"] > 0 and row["speed"]["audio_seconds"] == 0.5
    table = (tmp_path / "gen.md").read_text()
    assert "generated from captions" in table and "VAE reconstruction (ceiling)" in table
    assert "tiny" in capsys.readouterr().out
    # bad arguments: a message, exit status 2
    assert main(["bench", "gen", str(corpus), "--evaluator", str(tmp_path / "none")]) == 2
    assert "not an evaluator directory" in capsys.readouterr().err
    assert main(["bench", "gen", str(tmp_path / "nowhere"), "--evaluator",
                 str(tmp_path / "evaluator")]) == 2


def test_generated_latent_is_a_texture_source_for_the_engine(trained, tmp_path):
    root, corpus, vae_dir, generator = trained
    texture = texture_from_prompt("a procedural noise", str(vae_dir), str(generator),
                                  seconds=0.5, seed=3, steps=2)
    assert texture.mean.shape[1] == 8
    assert star.load_generator(str(generator)).sample_rate == 16000  # the package-level API
    vae = load_vae(vae_dir)
    audio = _tone(440, seconds=0.5)
    outs = []
    for params, tex in [(MorphParams(texture_amount=0.0), None),
                        (MorphParams(texture_amount=1.0), texture)]:
        engine = StreamingEngine(vae, 16000, 1, backend="torch", params=params,
                                 texture_source=tex)
        outs.append(np.concatenate([engine.process(audio[:, i:i + 128])
                                    for i in range(0, audio.shape[1], 128)], axis=1))
    assert np.isfinite(outs[1]).all() and np.abs(outs[1] - outs[0]).max() > 1e-4
    # the chain form and the command line take a prompt too
    chain = StarChain.from_spec(f"star(texture_amount=1.0, texture_prompt='a procedural noise', "
                                f"generator='{generator}')", model=str(vae_dir), backend="torch")
    assert chain.to_dict()["stages"][0]["texture_prompt"] == "a procedural noise"
    assert np.isfinite(chain(audio, 16000)).all()
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sf.write(src, audio[0], 16000)
    assert main(["morph", str(src), "-o", str(dst), "--model", str(vae_dir), "--texture-amount", "1",
                 "--texture-prompt", "a procedural sweep", "--generator", str(generator)]) == 0
    assert sf.read(dst)[0].shape == (8000,)
    # a generator of another VAE cannot give textures to this one
    other = save_vae(tiny_model(seed=4), tmp_path / "other-vae")
    with pytest.raises(ConfigError, match="makes latents of the VAE"):
        texture_from_prompt("a procedural noise", str(other), str(generator))
    assert main(["morph", str(src), "-o", str(dst), "--model", str(vae_dir), "--texture",
                 str(src), "--texture-prompt", "x", "--generator", str(generator)]) == 2
