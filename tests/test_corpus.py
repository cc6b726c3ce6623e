"""The corpus builder on the real Debian packages (fluidsynth, fluid-soundfont-gm,
hydrogen-drumkits, lmms-common, espeak-ng, sox, and frozen-bubble-data, the smallest of the
recorded-music packages), with tiny builds (~45 s of audio each)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from star_plugin.training.corpus import build as corpus_build
from star_plugin.training.corpus.build import CorpusWarning, build_corpus
from star_plugin.training.corpus.common import MissingPackageError
from star_plugin.training.corpus.manifest import SPLITS, read_manifest

HOURS = 45 / 3600  # about 45 s of audio: one or more items of every source
ALL = ("instruments", "drums", "samples", "speech", "textures", "recordings")
RECORDINGS = Path("/usr/share/doc/frozen-bubble-data")
SF2 = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
HYDROGEN = Path("/usr/share/hydrogen/data/drumkits")
LMMS = Path("/usr/share/lmms/samples")
_NEEDS = {
    "instruments": (("fluidsynth",), (SF2,), "fluidsynth fluid-soundfont-gm"),
    "drums": ((), (HYDROGEN,), "hydrogen-drumkits"),
    "samples": ((), (LMMS,), "lmms-common"),
    "speech": (("espeak-ng",), (), "espeak-ng"),
    "textures": (("sox",), (), "sox"),
    "recordings": ((), (RECORDINGS,), "frozen-bubble-data"),
}


def require(*sources):
    for source in sources:
        tools, paths, package = _NEEDS[source]
        for tool in tools:
            if shutil.which(tool) is None:
                pytest.skip(f"'{tool}' is not installed (apt-get install -y {package})")
        for path in paths:
            if not path.exists():
                pytest.skip(f"'{path}' is missing (apt-get install -y {package})")


def build(out, seed=0, jobs=2, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorpusWarning)
        kw.setdefault("hours", HOURS)
        return build_corpus(out, seed=seed, jobs=jobs, progress=False, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    require(*ALL)
    out = tmp_path_factory.mktemp("corpus") / "c"
    build(out, seed=0, jobs=2)
    return out


def _entries(out):
    return read_manifest(out)


def test_manifest_fields_and_audio(corpus):
    entries = _entries(corpus)
    assert len(entries) >= len(ALL)
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids))
    for e in entries:
        assert not Path(e["path"]).is_absolute() and e["path"] == f"audio/{e['id']}.flac"
        assert e["split"] in SPLITS
        assert e["caption"] and e["caption"][0].islower() and "  " not in e["caption"]
        for key in ("source", "family", "instrument", "register", "effect"):
            assert key in e["labels"]
        assert e["labels"]["source"] in ("instrument", "drums", "sample", "speech", "texture",
                                         "recording")
        assert e["sample_rate"] == 44100 and e["channels"] == 1 and e["duration"] == 4.0
        assert e["origin"]["package"] and e["origin"]["licence"] and e["origin"]["file"]
        info = sf.info(str(corpus / e["path"]))
        assert (info.format, info.subtype) == ("FLAC", "PCM_16")
        assert (info.samplerate, info.channels, info.frames) == (44100, 1, 4 * 44100)
        x, _ = sf.read(str(corpus / e["path"]), dtype="float32")
        peak_db = 20 * np.log10(np.max(np.abs(x)))
        assert -12.2 < peak_db < -0.9, (e["id"], peak_db)
        assert abs(peak_db - e["peak_dbfs"]) < 0.2
    # nothing else in audio/, and the summary adds up
    assert {p.name for p in (corpus / "audio").iterdir()} == {Path(e["path"]).name
                                                              for e in entries}
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["total_clips"] == len(entries)
    assert abs(summary["total_seconds"] - 4.0 * len(entries)) < 1e-3
    assert (corpus / "README.md").is_file()


def test_every_source_with_plausible_captions(corpus):
    entries = _entries(corpus)
    by = {}
    for e in entries:
        by.setdefault(e["origin"]["package"], []).append(e)
    recorded = {p for p in by if p in corpus_build.recordings.PACKAGES}
    assert set(by) - recorded == {"fluid-soundfont-gm", "hydrogen-drumkits", "lmms-common",
                                  "espeak-ng", "sox"}
    assert recorded, "the recordings source gives the largest share: some clips must be there"
    for package in recorded:
        for e in by[package]:
            assert e["labels"]["source"] == "recording"
            assert e["caption"].startswith(("a recorded", "a music recording")) and package in \
                e["caption"]
            # a recording is its own group: every clip of one file sits in one split
            assert e["group"].startswith("rec-") and e["origin"]["file"].startswith("/usr/share")
    for e in by["hydrogen-drumkits"]:
        assert " drum pattern at " in e["caption"] and " BPM " in e["caption"]
        assert e["caption"].split(",")[0].endswith(" kit")
    for e in by["espeak-ng"]:
        assert " voice speaking " in e["caption"]
        assert e["labels"]["gender"] in ("male", "female")
    for e in by["fluid-soundfont-gm"]:
        if e["labels"]["source"] == "instrument":
            assert " playing " in e["caption"] or " played as " in e["caption"]
            assert f"in the {e['labels']['register']} register" in e["caption"]
            assert e["labels"]["instrument"] in e["caption"]
    for e in by["lmms-common"]:
        assert "lmms" in e["caption"] or "waveform" in e["caption"]
    for e in entries:
        if e["labels"]["effect"] != "none":
            dry = next(d for d in entries if d["id"] == e["group"] or
                       (d["group"] == e["group"] and d["labels"]["effect"] == "none"))
            assert e["caption"].startswith(dry["caption"] + ", ")
    # licences read from the Debian copyright files
    lic = {e["origin"]["package"]: e["origin"]["licence"] for e in entries}
    assert lic["fluid-soundfont-gm"] == "MIT"
    assert lic["lmms-common"].startswith("GPL")
    assert lic["espeak-ng"].startswith("GPL-3")


def test_variations_share_group_and_split(corpus):
    entries = _entries(corpus)
    variations = [e for e in entries if e["labels"]["effect"] != "none"]
    assert variations, "a 45 s build should hold some effect variations"
    split_of = {}
    for e in entries:
        assert split_of.setdefault(e["group"], e["split"]) == e["split"]
    for v in variations:
        assert v["id"].startswith(v["id"].rsplit("-", 1)[0])
        assert v["labels"]["effect"] in v["id"]


def test_splits_share_no_group(tmp_path):
    require(*ALL)
    # enough items that all three splits are populated
    build(tmp_path / "c", seed=3, hours=0.08, sources="textures,speech")
    entries = _entries(tmp_path / "c")
    groups = {s: {e["group"] for e in entries if e["split"] == s} for s in SPLITS}
    assert all(groups.values()), {s: len(g) for s, g in groups.items()}
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not groups[a] & groups[b]


def test_deterministic_and_independent_of_jobs(corpus, tmp_path):
    again = tmp_path / "again"
    build(again, seed=0, jobs=1)
    assert (again / "manifest.jsonl").read_bytes() == (corpus / "manifest.jsonl").read_bytes()
    for e in _entries(corpus):
        a, _ = sf.read(str(corpus / e["path"]), dtype="int16")
        b, _ = sf.read(str(again / e["path"]), dtype="int16")
        assert np.array_equal(a, b), e["id"]
        assert (corpus / e["path"]).read_bytes() == (again / e["path"]).read_bytes(), e["id"]
    other = tmp_path / "other"
    build(other, seed=1, jobs=2)
    assert (other / "manifest.jsonl").read_bytes() != (corpus / "manifest.jsonl").read_bytes()
    first = _entries(corpus)[0]
    x, _ = sf.read(str(corpus / first["path"]), dtype="int16")
    y, _ = sf.read(str(other / first["path"]), dtype="int16")
    assert not np.array_equal(x, y)


def test_hours_are_shared_across_sources(tmp_path):
    require("textures", "speech")
    summary = build(tmp_path / "c", seed=0, hours=0.02, sources="speech,textures")
    # 72 s = 18 clips, split 0.10 : 0.08 (speech : textures) -> 10 and 8
    assert corpus_build.SHARES["speech"] / corpus_build.SHARES["textures"] == pytest.approx(1.25)
    assert summary["total_clips"] == 18
    assert summary["by_label_source"]["speech"]["clips"] == 10
    assert summary["by_label_source"]["texture"]["clips"] == 8


def _bad_file(path: Path, data=b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_corrupt_sample_is_skipped_with_a_warning(tmp_path):
    require("samples", "drums")
    lmms = tmp_path / "lmms"
    good = sorted((LMMS / "basses").glob("*.ogg"))[:2]
    for f in good:
        (lmms / "basses").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, lmms / "basses" / f.name)
    broken = lmms / "basses" / "broken01.ogg"
    _bad_file(broken)
    kits = tmp_path / "kits"
    shutil.copytree(HYDROGEN / "Audiophob", kits / "Audiophob")
    xml = (kits / "Audiophob" / "drumkit.xml").read_text()
    first_sample = xml.split("<filename>")[1].split("</filename>")[0]
    broken_drum = kits / "Audiophob" / first_sample
    _bad_file(broken_drum, b"not audio at all")
    with pytest.warns(CorpusWarning) as record:
        build_corpus(tmp_path / "c", HOURS, 0, jobs=2, sources="samples,drums",
                     paths={"lmms_dir": str(lmms), "hydrogen_dir": str(kits)},
                     progress=False)
    messages = [str(w.message) for w in record]
    assert any(str(broken) in m for m in messages), messages
    assert any(str(broken_drum) in m for m in messages), messages
    entries = _entries(tmp_path / "c")
    assert {e["labels"]["source"] for e in entries} == {"sample", "drums"}
    assert all("broken01" not in e["origin"]["file"] for e in entries)


def test_sample_that_fails_to_decode_falls_back(tmp_path, monkeypatch):
    """A file whose header reads but whose audio does not decode: skipped at render time."""
    require("samples")
    lmms = tmp_path / "lmms"
    (lmms / "drums").mkdir(parents=True)
    src = sorted((LMMS / "drums").glob("snare0*.ogg"))[0]
    shutil.copy(src, lmms / "drums" / "good.ogg")
    wav = LMMS / "shapes" / "low_sine.wav"  # a WAV whose header survives truncation
    data = wav.read_bytes()
    truncated = lmms / "drums" / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.warns(CorpusWarning, match="truncated.wav': cannot decode"):
        build_corpus(tmp_path / "c", 30 / 3600, 0, jobs=2, sources="samples",
                     paths={"lmms_dir": str(lmms)}, progress=False)
    entries = _entries(tmp_path / "c")
    assert entries and all(e["origin"]["file"] == "drums/good.ogg" for e in entries)


@pytest.mark.parametrize("source,key,package", [
    ("textures", "sox", "sox"),
    ("speech", "espeak", "espeak-ng"),
    ("instruments", "fluidsynth", "fluidsynth"),
    ("instruments", "sf2", "fluid-soundfont-gm"),
    ("drums", "hydrogen_dir", "hydrogen-drumkits"),
    ("samples", "lmms_dir", "lmms-common"),
])
def test_missing_package_names_the_apt_install(tmp_path, source, key, package):
    with pytest.raises(MissingPackageError, match=f"apt-get install -y {package}") as info:
        build_corpus(tmp_path / "c", HOURS, 0, sources=source, progress=False,
                     paths={key: str(tmp_path / "nowhere" / key)})
    assert "--sources" in str(info.value)
    assert not (tmp_path / "c" / "manifest.jsonl").exists()


def test_missing_tool_from_env_and_cli(tmp_path, monkeypatch, capsys):
    from star_plugin.cli import main
    monkeypatch.setenv("STAR_CORPUS_SOX", str(tmp_path / "no-sox"))
    code = main(["data", "build", "--out", str(tmp_path / "c"), "--hours", "0.01", "--seed",
                 "0", "--sources", "textures", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "apt-get install -y sox" in err and "no-sox" in err


def test_unknown_source_is_an_error(tmp_path):
    with pytest.raises(corpus_build.CorpusError, match="unknown source"):
        build_corpus(tmp_path / "c", HOURS, 0, sources="instruments,kazoo", progress=False)


def test_gm_deck_covers_every_program_and_the_drum_kit():
    from star_plugin.training.corpus import common, instruments
    ctx = {"sf2": str(SF2), "licence": "MIT", "tool": "fluidsynth"}
    seen = set()
    for i in range(129):
        spec = instruments.plan(ctx, common.item_rng(5, "instruments", i, 0), i, 5, 4.0)
        seen.add(spec.get("program", 128))
        meta = instruments.describe(ctx, spec)
        assert meta["caption"].startswith(("a ", "an "))
    assert seen == set(range(129))


def test_midi_writer_round_trip():
    from star_plugin.training.corpus.midi import MidiTrack
    t = MidiTrack()
    t.program(0, 0, 40)
    t.note(0.5, 0.25, 0, 60, 100)
    data = t.to_bytes(1.0)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert data.endswith(b"\xff\x2f\x00")
    assert bytes([0x90, 60, 100]) in data and bytes([0x80, 60, 0]) in data
