"""``star bench recon``: metrics, Opus reference rows, data handling -- on real files, a tiny
saved model and the real opusenc/opusdec."""
import json
import math

import numpy as np
import pytest

from conftest import tiny_model
from star_plugin.audio import write_audio
from star_plugin.bench.opus import best_lag, opus_roundtrip, opus_tools
from star_plugin.bench.recon import (ReferenceScorer, bench_recon, clip_metrics, clip_subsets,
                                     format_markdown, format_text, is_pitched)
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

    from star_plugin.metrics import (fine_structure_correlation, hop_buzz, level_error_db,
                                     mel_distance, si_sdr, stft_distance)

    ref = np.concatenate([tone(300 * (c + 1), rate=rate) + noise(rate=rate, seed=c)
                          for c in range(channels)])
    score = ReferenceScorer(ref, rate)
    rates = (125.0, 1000.0)
    for k in range(2):
        est = ref + 0.1 * np.concatenate([noise(rate=rate, seed=10 + k + c) for c in range(channels)])
        got = score(est, rates)
        e, r = torch.from_numpy(est), torch.from_numpy(ref)
        assert got["msd"] == pytest.approx(float(mel_distance(e, r, rate)), rel=1e-5)
        assert got["stft_d"] == pytest.approx(float(stft_distance(e, r)), rel=1e-5)
        assert got["si_sdr"] == si_sdr(est, ref)
        assert got["fsc"] == fine_structure_correlation(est, ref, rate)
        assert got["level_db"] == level_error_db(est, ref)
        assert got["buzz"] == hop_buzz(est, rate, rates)
        assert got["buzz_input"] == hop_buzz(ref, rate, rates)
        assert got["buzz_ratio"] == pytest.approx(got["buzz"] / got["buzz_input"])
    no_rates = score(ref)  # without rates: no buzz figure, the rest as usual
    assert all(math.isnan(no_rates[k]) for k in ("buzz", "buzz_input", "buzz_ratio"))
    assert no_rates["fsc"] == pytest.approx(1.0) and no_rates["level_db"] == 0.0


def test_recon_on_corpus_cli_writes_json_and_markdown(model_dir, corpus, tmp_path, capsys):
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["bench", "recon", str(corpus), "--model", str(model_dir), "--model", str(model_dir),
            "--json", str(out_json), "--markdown", str(out_md)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "SI-SDR" in printed and "KL" in printed
    assert "FSC" in printed and "level dB" in printed and "buzz out/in" in printed
    assert "all: 4 clips" in printed and "real: no clips" in printed
    result = json.loads(out_json.read_text())
    assert result["data"]["kind"] == "corpus" and result["data"]["split"] == "test"
    assert len(result["rows"]) == 2
    for row in result["rows"]:
        assert row["n_clips"] == 4
        for metric in ("si_sdr", "msd", "stft_d", "fsc", "level_db", "buzz", "buzz_input",
                       "buzz_ratio"):
            assert math.isfinite(row["metrics"][metric]["mean"])
            assert math.isfinite(row["metrics"][metric]["median"])
        assert set(row["subsets"]) == {"all", "real", "synthesised", "pitched"}
        assert row["subsets"]["all"]["metrics"] == row["metrics"]
        assert row["subsets"]["real"]["n_clips"] == 0
        assert row["buzz_rates_hz"] == pytest.approx([RATE / 128, RATE / 16])
        assert row["rate_bits_per_s"] > 0
        assert row["rate_bits_per_s"] == pytest.approx(
            row["rate_structure_bits_per_s"] + row["rate_texture_bits_per_s"])
        assert row["nominal_values_per_s"] == pytest.approx(8 * RATE / 128)
    # the same model twice gives the same numbers
    assert result["rows"][0]["metrics"] == result["rows"][1]["metrics"]
    assert {k: v["n_clips"] for k, v in result["subsets"].items()} == {
        "all": 4, "real": 0, "synthesised": 4, "pitched": 0}  # sources "tone" and "noise"
    md = out_md.read_text()
    assert "| model/codec | rate |" in md and "n clips" in md
    assert "### all: 4 clips" in md and "| FSC |" in md


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
    assert list(result["subsets"]) == ["all"] and list(row["subsets"]) == ["all"]
    assert all(c["subsets"] == ["all"] for c in row["clips"])


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
    # Opus rows carry the new figures too, with buzz at the first model's rates
    model_row = rows[str(model_dir)]
    for row in (o6, o24):
        assert row["buzz_rates_hz"] == model_row["buzz_rates_hz"]
        for metric in ("fsc", "level_db", "buzz", "buzz_input", "buzz_ratio"):
            assert math.isfinite(row["metrics"][metric]["mean"]), metric
        # the same clips, the same rates: the same input buzz as the model row
        assert row["metrics"]["buzz_input"] == model_row["metrics"]["buzz_input"]
    assert o24["metrics"]["fsc"]["mean"] > model_row["metrics"]["fsc"]["mean"]
    assert abs(o24["metrics"]["level_db"]["mean"]) < 2
    assert result["settings"]["opus_buzz_rates_from"] == str(model_dir)
    assert "rates of the first model" in format_text(result)


def test_missing_opus_tools_still_runs_model_rows(model_dir, corpus, tmp_path, monkeypatch,
                                                  capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no opusenc
    result = bench_recon(corpus, [str(model_dir)], opus=[6], max_clips=1)
    assert "apt-get install opus-tools" in capsys.readouterr().err
    assert "apt-get install opus-tools" in result["settings"]["opus_note"]
    assert [r["kind"] for r in result["rows"]] == ["model"]


# ----------------------------------------------------------------------------- pitch, level, buzz
# and clip subsets from the corpus labels

def harmonic(f0, seconds=0.5, rate=RATE, vibrato=0.0):
    """A pitched tone: 8 partials at 0.3/k, a gentle decay, optional vibrato (Hz of depth)."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + vibrato / 5.0 * np.sin(2 * np.pi * 5.0 * t) / (2 * np.pi))
    x = sum(0.3 / k * np.sin(k * phase) for k in range(1, 9) if k * f0 < rate / 2)
    return (np.exp(-1.5 * t) * x).astype(np.float32)[None]


#: (id, audio, labels, expected subsets besides "all")
LABELLED = [
    ("inst-strings", lambda: harmonic(220), {"source": "instrument", "family": "strings"},
     {"synthesised", "pitched"}),
    ("rec-voice", lambda: harmonic(180, vibrato=4), {"source": "recording", "family": "voice"},
     {"real", "pitched"}),
    ("rec-fx", lambda: noise(seed=5), {"source": "recording", "family": "sound effects"},
     {"real"}),
    ("sample-drums", lambda: noise(seed=6) * np.exp(-20 * np.arange(8000) / RATE),
     {"source": "sample", "family": "drums"}, {"synthesised"}),
    ("speech-en", lambda: harmonic(140, vibrato=8), {"source": "speech", "family": "speech"},
     {"synthesised", "pitched"}),
    ("unlabelled", lambda: harmonic(300), {}, set()),
]


def labelled_corpus(root):
    """A test split whose labels exercise every subset rule."""
    entries = []
    for cid, make, labels, _ in LABELLED:
        write_audio(root / "audio" / f"{cid}.flac", make(), RATE)
        entries.append({"id": cid, "path": f"audio/{cid}.flac", "split": "test", "group": cid,
                        "caption": cid, "labels": labels})
    write_manifest(root, entries)
    return root


class GainModel:
    """A stand-in model whose reconstruction is its input times ``gain`` (1: perfect; 0.5:
    6 dB too quiet), with a real tiny model's config, rates and posterior for the KL."""

    def __init__(self, gain):
        self.inner, self.gain = tiny_model(**FAST), gain
        self.config, self.hop = self.inner.config, self.inner.hop
        self.sample_rate, self.latent_rate = self.inner.sample_rate, self.inner.latent_rate

    def encode(self, batch):
        self._batch = batch
        return self.inner.encode(batch)

    def decode(self, latent):
        return self.gain * self._batch


def test_subset_rules_follow_the_labels():
    for cid, _, labels, expected in LABELLED:
        assert set(clip_subsets(labels, corpus=True)) == {"all"} | expected, cid
        assert clip_subsets(labels, corpus=False) == ["all"]
    assert is_pitched({"source": "recording", "family": "music"})
    assert is_pitched({"source": "sample", "family": "bass"})
    assert not is_pitched({"source": "drums", "family": "drums"})
    assert not is_pitched({"source": "instrument", "family": "sound effects"})  # GM 120-127
    assert not is_pitched({"source": "texture", "family": "texture"})


def test_pitch_level_and_buzz_rows_and_subsets(model_dir, tmp_path):
    corpus = labelled_corpus(tmp_path / "labelled")
    models = [("perfect", GainModel(1.0)), ("minus 6 dB", GainModel(0.5)), str(model_dir)]
    result = bench_recon(corpus, models)
    rows = {r["row"]: r for r in result["rows"]}
    assert list(rows) == ["perfect", "minus 6 dB", str(model_dir)]

    # the subsets follow the labels, for every row
    counts = {k: v["n_clips"] for k, v in result["subsets"].items()}
    assert counts == {"all": 6, "real": 2, "synthesised": 3, "pitched": 3}
    for row in rows.values():
        by_id = {c["id"]: set(c["subsets"]) for c in row["clips"]}
        assert by_id == {cid: {"all"} | expected for cid, _, _, expected in LABELLED}
        assert {k: v["n_clips"] for k, v in row["subsets"].items()} == counts

    # a perfect reconstruction hears the same pitch, level and buzz as its input
    perfect = rows["perfect"]["subsets"]
    for name in ("all", "pitched", "real"):
        m = perfect[name]["metrics"]
        assert m["fsc"]["mean"] == pytest.approx(1.0, abs=1e-6)
        assert m["level_db"]["mean"] == pytest.approx(0.0, abs=1e-3)
        assert m["buzz_ratio"]["mean"] == pytest.approx(1.0, rel=1e-3)
    # 6 dB too quiet: the level says so, the pitch and the buzz do not change
    quiet = rows["minus 6 dB"]["subsets"]["all"]["metrics"]
    assert quiet["level_db"]["mean"] == pytest.approx(-6.02, abs=0.01)
    assert quiet["fsc"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert quiet["buzz_ratio"]["mean"] == pytest.approx(1.0, rel=1e-3)

    # the untrained tiny model: every figure finite on the pitched clips, and far from perfect
    tiny = rows[str(model_dir)]["subsets"]["pitched"]
    assert tiny["n_clips"] == 3
    for metric in ("si_sdr", "msd", "stft_d", "fsc", "level_db", "buzz", "buzz_input",
                   "buzz_ratio"):
        assert math.isfinite(tiny["metrics"][metric]["mean"]), metric
        assert tiny["metrics"][metric]["n"] == 3, metric
    assert tiny["metrics"]["fsc"]["mean"] < 0.9
    assert tiny["metrics"]["buzz_input"] == perfect["pitched"]["metrics"]["buzz_input"]

    # per-subset tables in the text and the markdown
    text, md = format_text(result), format_markdown(result)
    for name, n in counts.items():
        assert f"{name}: {n} clips" in text and f"### {name}: {n} clips" in md
    pitched_table = text.split("pitched: 3 clips")[1]
    assert "perfect" in pitched_table and "1.000" in pitched_table  # FSC of the perfect row


def test_subset_means_in_json(tmp_path, capsys):
    corpus = labelled_corpus(tmp_path / "labelled")
    out = tmp_path / "r.json"
    result = bench_recon(corpus, [("quiet", GainModel(0.5))])
    from star_plugin.bench.report import write_json
    data = json.loads(write_json(out, result).read_text())
    row = data["rows"][0]
    assert set(row["subsets"]) == {"all", "real", "synthesised", "pitched"}
    real = row["subsets"]["real"]
    assert real["n_clips"] == 2
    assert real["metrics"]["level_db"]["mean"] == pytest.approx(-6.02, abs=0.01)
    assert data["subsets"]["pitched"]["rule"].startswith("source instrument/speech/sample")
