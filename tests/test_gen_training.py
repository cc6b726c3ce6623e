"""STAR-Gen training end to end on a tiny corpus and VAE: latent cache (reused, rebuilt when
the VAE changes), exact resume, export, load_generator, star generate and its errors."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from star_plugin.cli import main
from star_plugin.errors import ConfigError, ModelFileError
from star_plugin.gen.latent_cache import build_cache, load_cache
from star_plugin.gen.store import load_generator
from star_plugin.model_io import save_vae
from star_plugin.training.gen_trainer import GenTrainConfig, GenTrainer

from conftest import make_tiny_corpus, tiny_model

GEN = {"width": 32, "layers": 2, "heads": 2, "max_text_tokens": 24}


@pytest.fixture(scope="module")
def setup_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    corpus = make_tiny_corpus(root / "corpus", clips=10, seconds=1.0)
    vae_dir = save_vae(tiny_model(), root / "vae")
    return root, corpus, vae_dir


def _config(root, corpus, vae_dir, name, **kw):
    return GenTrainConfig.from_dict({"out": str(root / name), "vae": str(vae_dir),
                                     "corpus": str(corpus), "model": GEN, "batch_size": 4,
                                     "steps": 6, "checkpoint_steps": 3, "log_every": 1,
                                     "min_seconds": 0.2, "max_seconds": 0.5, "device": "cpu",
                                     "cache": str(root / "cache.safetensors"), **kw})


def test_latent_cache_is_reused_and_rebuilt_for_another_vae(setup_dirs, tmp_path):
    root, corpus, vae_dir = setup_dirs
    path = tmp_path / "cache.safetensors"
    cache = build_cache(corpus, vae_dir, path)
    assert len(cache.clips) == 10 and cache.channels == 8
    stamp = path.stat().st_mtime_ns
    assert build_cache(corpus, vae_dir, path).meta["vae_sha256"] == cache.meta["vae_sha256"]
    assert path.stat().st_mtime_ns == stamp  # reused, not recomputed
    other = save_vae(tiny_model(seed=1), tmp_path / "other-vae")
    rebuilt = build_cache(corpus, other, path)
    assert rebuilt.meta["vae_sha256"] != cache.meta["vae_sha256"]
    assert not np.allclose(rebuilt.latents, cache.latents)
    assert load_cache(path).meta["vae_sha256"] == rebuilt.meta["vae_sha256"]


def test_training_resumes_exactly_and_exports_a_generator(setup_dirs, capsys):
    root, corpus, vae_dir = setup_dirs
    straight = GenTrainer(_config(root, corpus, vae_dir, "straight"))
    straight.fit()
    split = GenTrainer(_config(root, corpus, vae_dir, "split"))
    split.fit(until=3)
    with pytest.raises(ConfigError, match="already holds a run"):
        GenTrainer(_config(root, corpus, vae_dir, "split"))
    resumed = GenTrainer(_config(root, corpus, vae_dir, "split"), resume=True)
    assert resumed.step == 3
    path = resumed.fit()
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    log = [json.loads(l) for l in (root / "split" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    gen = load_generator(path)
    a = gen.generate("a short test tone", 0.5, steps=3, cfg=2.0, seed=7, variations=2)
    b = gen.generate("a short test tone", 0.5, steps=3, cfg=2.0, seed=7, variations=2)
    assert a.shape == (2, 1, 8000) and np.isfinite(a).all() and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # variations differ
    for bad, message in [({"seconds": 0}, "seconds must be in"),
                         ({"seconds": 1e6}, "seconds must be in"),
                         ({"seconds": float("nan")}, "seconds must be in"),
                         ({"variations": 0}, "variations"), ({"cfg": -1}, "cfg")]:
        with pytest.raises(ConfigError, match=message):
            gen.generate("a tone", **{"seconds": 0.5, **bad})
    with pytest.raises(ConfigError, match="prompt is empty"):
        gen.generate("  ", 0.5)
    out = root / "gen.wav"
    assert main(["generate", "a tone", "-o", str(out), "--seconds", "0.4", "--steps", "2",
                 "--generator", str(path)]) == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and len(audio) == 6400
    assert main(["generate", "", "-o", str(out), "--generator", str(path)]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    with pytest.raises(ModelFileError, match="another VAE"):
        load_generator(path, vae=save_vae(tiny_model(seed=2), root / "vae2"))
