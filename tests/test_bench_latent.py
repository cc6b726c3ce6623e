"""``star bench latent``: KL profile, correlation, subspace replacement, probes, flow prior."""
import json
import math

import numpy as np
import pytest
import torch

from conftest import tiny_model
from star_plugin.audio import write_audio
from star_plugin.bench.flow_prior import train_flow_prior
from star_plugin.bench.latent import (band_errors, bench_latent, channel_correlation,
                                      suggest_structure_channels)
from star_plugin.bench.probes import clip_features, feature_sets, run_probes
from star_plugin.bench.report import BenchError
from star_plugin.cli import main
from star_plugin.model_io import save_vae
from star_plugin.training.corpus.manifest import write_manifest

from bench_fixtures import FAST, RATE, make_corpus, model_dir, noise, one_thread, tone  # noqa: F401


def test_latent_bench_on_corpus_cli(model_dir, tmp_path, capsys):
    corpus = make_corpus(tmp_path / "corpus")
    out_json, out_md = tmp_path / "l.json", tmp_path / "l.md"
    assert main(["bench", "latent", "--model", str(model_dir), str(corpus), "--prior-steps", "10",
                 "--prior-frames", "16", "--json", str(out_json), "--markdown", str(out_md)]) == 0
    printed = capsys.readouterr().out
    assert "suggested K" in printed and "flow prior" in printed
    result = json.loads(out_json.read_text())
    (m,) = result["models"]
    kl = m["kl"]["per_channel_nats_per_frame"]
    assert len(kl) == 8 and all(v >= 0 for v in kl)
    assert m["kl"]["rate_bits_per_s"] == pytest.approx(
        m["kl"]["rate_structure_bits_per_s"] + m["kl"]["rate_texture_bits_per_s"])
    assert 1 <= m["kl"]["suggested_structure_channels"] <= 8
    assert 0 <= m["correlation"]["mean_abs_offdiag"] <= 1
    err = m["replacement"]["error_db"]
    assert set(err) == {"plain", "texture_prior", "structure_prior"}
    assert all(math.isfinite(err[c][b]) for c in err for b in ("low", "high", "full"))
    probes = m["probes"]["keys"]
    assert set(probes) == {"source", "family", "register"}  # "effect" has one class: no probe
    for name, entry in probes["source"].items():
        assert 0 <= entry["accuracy"] <= 1 and 0 <= entry["majority_accuracy"] <= 1
    assert set(probes["source"]) == {"structure", "texture", "all", "random-3"}
    assert math.isfinite(m["prior"]["val_loss"]) and m["prior"]["settings"]["steps"] == 10
    assert "## model" in out_md.read_text()


def test_latent_bench_on_plain_folder(model_dir, tmp_path):
    folder = tmp_path / "clips"
    for i in range(3):
        write_audio(folder / f"c{i}.wav", tone(300 + 100 * i), RATE)
    result = bench_latent(folder, [str(model_dir)], prior_steps=0)
    (m,) = result["models"]
    assert m["n_eval_clips"] == 3
    assert "skipped" in m["probes"] and "skipped" in m["prior"]
    with pytest.raises(BenchError, match="--train-split"):
        bench_latent(make_corpus(tmp_path / "c"), [str(model_dir)], train_split="test")


def test_suggested_k_rule():
    assert suggest_structure_channels([5, 3, 1, 0.5, 0.5], 0.9) == 3
    assert suggest_structure_channels([5, 3, 1, 0.5, 0.5], 0.5) == 1
    assert suggest_structure_channels([1, 1, 1, 1], 1.0) == 4
    assert suggest_structure_channels([0, 0], 0.9) == 0


def test_channel_correlation_bounds():
    rng = np.random.default_rng(0)
    base = rng.standard_normal(2000)
    same = np.stack([base, -base, 2 * base + 1])
    assert channel_correlation(same, 1)["mean_abs_offdiag"] == pytest.approx(1.0)
    indep = rng.standard_normal((6, 20000))
    c = channel_correlation(np.concatenate([indep, np.zeros((1, 20000))]), 3)
    assert c["mean_abs_offdiag"] < 0.03 and c["constant_channels"] == 1


def test_band_errors_see_the_right_band():
    x = tone(300, seconds=1.0)
    zero = band_errors(x, x, RATE)
    assert zero == {"low": 0.0, "high": 0.0, "full": 0.0}
    rng = np.random.default_rng(1)
    hiss = np.fft.irfft(np.fft.rfft(rng.standard_normal(x.shape[1])) *
                        (np.fft.rfftfreq(x.shape[1], 1 / RATE) > 5000)).astype(np.float32)
    e = band_errors(x + 0.05 * hiss[None], x, RATE)
    assert e["high"] > 10 * max(e["low"], 0.1)


def test_probe_separates_an_encoded_label():
    rng = np.random.default_rng(0)

    def clips(n, offset):
        means, labels = [], []
        for i in range(n):
            label = "a" if (i + offset) % 2 else "b"
            m = rng.standard_normal((1, 6, 20))
            m[:, 0] += 3.0 if label == "a" else -3.0  # channel 0 (structure) encodes the label
            means.append(torch.from_numpy(m))
            labels.append({"source": label})
        return means, labels

    train_m, train_l = clips(30, 0)
    eval_m, eval_l = clips(20, 1)
    res = run_probes(train_m, train_l, eval_m, eval_l, channels=6, structure=2, keys=["source"])
    s = res["keys"]["source"]
    assert s["structure"]["accuracy"] >= 0.95 and s["all"]["accuracy"] >= 0.9
    assert s["structure"]["majority_accuracy"] == pytest.approx(0.5)
    assert 0 <= s["texture"]["accuracy"] <= 0.8  # texture channels carry nothing
    assert len(s["random-2"]["draw_accuracies"]) == 5
    assert clip_features(train_m[0], [0, 1]).shape == (4,)
    assert feature_sets(6, 0).keys() == {"texture", "all"}


def _smooth_sequences(n, channels=4, frames=48, seed=0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)
    seqs = []
    for _ in range(n):
        phase = torch.rand(channels, 1, generator=gen) * 6.28
        mean = torch.sin(0.3 * t[None] + phase) * 2.0
        seqs.append((mean, torch.full((channels, frames), -3.0)))
    return seqs


def test_flow_prior_learns_and_is_deterministic():
    train, evals = _smooth_sequences(16), _smooth_sequences(4, seed=1)
    kwargs = dict(frames=16, batch=16, hidden=32, blocks=2, eval_crops=16, eval_t=8, seed=3)
    a = train_flow_prior(train, evals, steps=60, **kwargs)
    b = train_flow_prior(train, evals, steps=60, **kwargs)
    assert a["val_loss"] == b["val_loss"] and a["curve"] == b["curve"]
    assert a["curve"][0][1] == pytest.approx(a["zero_predictor_loss"])  # zero-initialised output
    assert a["val_loss"] < 0.8 * a["curve"][0][1]
    c = train_flow_prior(train, evals, steps=60, **{**kwargs, "seed": 4})
    assert c["val_loss"] != a["val_loss"]
    with pytest.raises(ValueError, match="at least 64 frames"):
        train_flow_prior(train, evals, steps=1, frames=64)
