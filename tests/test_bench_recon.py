"""``star bench recon``: metrics, Opus reference rows, data handling -- on real files, a tiny
saved model and the real opusenc/opusdec."""
import json
import math

import numpy as np
import pytest

from conftest import tiny_model
from star_plugin.audio import write_audio
from star_plugin.bench.opus import best_lag, opus_roundtrip, opus_tools
from star_plugin.bench.recon import ReferenceScorer, bench_recon, clip_metrics
from star_plugin.bench.report import BenchError, even_subset, resolve_data, DataItem
from star_plugin.cli import main
from star_plugin.errors import StarError
from star_plugin.model_io import save_vae
from star_plugin.training.corpus.manifest import write_manifest

from bench_fixtures import FAST, RATE, make_corpus, model_dir, noise, one_thread, tone  # noqa: F401
needs_opus = pytest.mark.skipif(opus_tools() is None, reason="opus-tools not installed")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_metrics_vanish_for_identical_audio():
    x = np.concatenate([tone(440), noise()], axis=0)
    m = clip_metrics(x, x.copy(), RATE)
    assert m["msd"] == 0.0 and m["stft_d"] == 0.0
    assert m["si_sdr"] > 60
    worse = clip_metrics(x + 0.05 * noise(seed=3), x, RATE)
    assert worse["msd"] > 0.01 and worse["stft_d"] > 0.01 and worse["si_sdr"] < 40


@pytest.mark.parametrize("rate,channels", [(RATE, 1), (22050, 2)])
def test_shared_reference_scorer_equals_the_metric_functions(rate, channels):
    import torch

    from star_plugin.metrics import mel_distance, si_sdr, stft_distance

    ref = np.concatenate([tone(300 * (c + 1), rate=rate) + noise(rate=rate, seed=c)
                          for c in range(channels)])
    score = ReferenceScorer(ref, rate)
    for k in range(2):
        est = ref + 0.1 * np.concatenate([noise(rate=rate, seed=10 + k + c) for c in range(channels)])
        got = score(est)
        e, r = torch.from_numpy(est), torch.from_numpy(ref)
        assert got["msd"] == pytest.approx(float(mel_distance(e, r, rate)), rel=1e-5)
        assert got["stft_d"] == pytest.approx(float(stft_distance(e, r)), rel=1e-5)
        assert got["si_sdr"] == si_sdr(est, ref)


def test_recon_on_corpus_cli_writes_json_and_markdown(model_dir, corpus, tmp_path, capsys):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["bench", "recon", str(corpus), "--model", str(model_dir), "--model", str(model_dir),
            "--json", str(out_json), "--markdown", str(out_md)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "SI-SDR" in printed and "KL" in printed
    result = json.loads(out_json.read_text())
    assert result["data"]["kind"] == "corpus" and result["data"]["split"] == "test"
    assert len(result["rows"]) == 2
    for row in result["rows"]:
        assert row["n_clips"] == 4
        for metric in ("si_sdr", "msd", "stft_d"):
            assert math.isfinite(row["metrics"][metric]["mean"])
            assert math.isfinite(row["metrics"][metric]["median"])
        assert row["rate_bits_per_s"] > 0
        assert row["rate_bits_per_s"] == pytest.approx(
            row["rate_structure_bits_per_s"] + row["rate_texture_bits_per_s"])
        assert row["nominal_values_per_s"] == pytest.approx(8 * RATE / 128)
    # the same model twice gives the same numbers
    assert result["rows"][0]["metrics"] == result["rows"][1]["metrics"]
    md = out_md.read_text()
    assert "| model/codec | rate |" in md and "n clips" in md


def test_recon_plain_folder_skips_corrupt_file_with_warning(model_dir, tmp_path, capsys):
    folder = tmp_path / "clips"
    write_audio(folder / "a.wav", tone(330), RATE)
    write_audio(folder / "sub" / "b.flac", noise(), RATE)
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    (folder / "notes.txt").write_text("ignored")
    result = bench_recon(folder, [str(model_dir)])
    err = capsys.readouterr().err
    assert "broken.wav" in err and "warning" in err
    assert [s["id"] for s in result["skipped"]] == ["broken.wav"]
    row = result["rows"][0]
    assert row["n_clips"] == 2 and [c["id"] for c in row["clips"]] == ["a.wav", "sub/b.flac"]
    assert all(math.isfinite(row["metrics"][m]["mean"]) for m in ("si_sdr", "msd", "stft_d"))


def test_max_clips_and_seconds(model_dir, corpus):
    result = bench_recon(corpus, [str(model_dir)], max_clips=2, seconds=0.25)
    clips = result["rows"][0]["clips"]
    assert [c["id"] for c in clips] == ["test-00-tone", "test-03-noise"]  # first and last
    assert all(c["seconds"] == pytest.approx(0.25) for c in clips)
    items = [DataItem(f"x{i}", None) for i in (5, 3, 9, 1, 7)]
    assert [i.id for i in even_subset(items, 3)] == ["x1", "x5", "x9"]


def test_bad_data_gives_clear_errors(model_dir, tmp_path):
    with pytest.raises(StarError, match="does-not-exist.*does not exist"):
        resolve_data(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="manifest.jsonl"):
        resolve_data(tmp_path / "empty")
    corpus = make_corpus(tmp_path / "c", n_train=2, n_test=0)
    with pytest.raises(BenchError, match="split 'test' is empty"):
        resolve_data(corpus, "test")
    with pytest.raises(StarError, match="unknown split"):
        resolve_data(corpus, "nope")
    assert main(["bench", "recon", str(tmp_path / "missing"), "--model", str(model_dir)]) == 2
    assert main(["bench", "recon", str(corpus), "--split", "train", "--opus", "3"]) == 2
    assert main(["bench", "recon", str(corpus), "--split", "train", "--seconds", "-1"]) == 2


@needs_opus
def test_opus_is_aligned_and_better_at_higher_bitrate(tmp_path):
    rate = 44100
    x = 0.7 * tone(523.25, seconds=1.5, rate=rate) + 0.3 * noise(seconds=1.5, rate=rate)
    y24, size24 = opus_roundtrip(x, rate, 24, tmp_path)
    y6, size6 = opus_roundtrip(x, rate, 6, tmp_path)
    assert y24.shape == x.shape and y6.shape == x.shape
    assert best_lag(y24, x) == 0  # opusdec removed the pre-skip: no delay to compensate
    assert size6 < size24
    m24, m6 = clip_metrics(y24, x, rate), clip_metrics(y6, x, rate)
    assert m24["msd"] < m6["msd"]
    assert m24["si_sdr"] > m6["si_sdr"]
    assert list(tmp_path.iterdir()) == []  # temporary files removed


def test_best_lag_finds_a_known_shift():
    x = noise(seconds=0.25)
    shifted = np.pad(x, ((0, 0), (7, 0)))[:, : x.shape[1]]
    assert best_lag(shifted, x) == 7
    assert best_lag(x, shifted) == -7


@needs_opus
def test_recon_with_opus_rows(model_dir, corpus):
    result = bench_recon(corpus, [str(model_dir)], opus=[6, 24], max_clips=2)
    rows = {r["row"]: r for r in result["rows"]}
    assert set(rows) == {str(model_dir), "opus 6 kb/s", "opus 24 kb/s"}
    o6, o24 = rows["opus 6 kb/s"], rows["opus 24 kb/s"]
    assert o6["n_clips"] == o24["n_clips"] == 2
    assert o24["metrics"]["msd"]["mean"] < o6["metrics"]["msd"]["mean"]
    assert 0 < o6["measured_kbps"] < o24["measured_kbps"]


def test_missing_opus_tools_still_runs_model_rows(model_dir, corpus, tmp_path, monkeypatch,
                                                  capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no opusenc
    result = bench_recon(corpus, [str(model_dir)], opus=[6], max_clips=1)
    assert "apt-get install opus-tools" in capsys.readouterr().err
    assert "apt-get install opus-tools" in result["settings"]["opus_note"]
    assert [r["kind"] for r in result["rows"]] == ["model"]
