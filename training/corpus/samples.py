"""Recorded one-shots and loops from lmms-common (``/usr/share/lmms/samples``).

Each audio file (ogg/flac/wav; the ``drumsynth`` ``.ds`` patches are synth settings, not
audio, and are left out) is categorised by its folder; a clip is the file cropped at a random
start (long files) or padded with silence (one-shots), loops and single-cycle waveforms are
repeated to fill the clip, and a random pitch shift of up to a fifth (by resampling) adds
variety. Files that cannot be decoded are skipped with a warning naming them.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import common

NAME = "samples"
PREFIX = "lmms"
PACKAGE = "lmms-common"
BATCH = 8
DEFAULT_DIR = "/usr/share/lmms/samples"
AUDIO_EXT = (".ogg", ".flac", ".wav", ".aif", ".aiff")

# folder -> (family label, caption noun, is_loop)
FOLDERS = {
    "basses": ("bass", "bass one-shot sample", False),
    "bassloops": ("bass", "bass loop", True),
    "beats": ("drums", "drum loop", True),
    "drums": ("drums", "drum hit", False),
    "effects": ("sound effects", "sound effect sample", False),
    "instruments": ("instrument", "instrument sample", False),
    "latin": ("latin", "latin instrument sample", False),
    "misc": ("misc", "sample", False),
    "shapes": ("synth", "synth tone sample", True),
    "stringsnpads": ("pad", "strings and pads sample", False),
    "waveforms": ("synth", "single-cycle waveform played as a tone", True),
}
_WORD_FIX = {"bassdrum": "bass drum", "hihat": "hi-hat", "e": "electric", "tb303": "TB-303",
             "sqr": "square", "tri": "triangle", "synth": "synth", "909beat": "909 beat",
             "accord": "chord", "briff": "bass riff", "opened": "open", "w2": "",
             "lfo": "LFO", "fm": "FM"}


def words_from_name(stem: str) -> str:
    """'bass_acid01' -> 'acid bass'-like readable words: digits and punctuation dropped."""
    parts = [p for p in re.split(r"[_\-\s+!.]+", stem.lower()) if p]
    out = []
    for p in parts:
        p = re.sub(r"\d+$", "", p) if not p.startswith("909") else p
        p = _WORD_FIX.get(p, p)
        if p and not p.isdigit():
            out.append(p)
    return " ".join(out) or stem


def prepare(options: dict, sample_rate: int) -> dict:
    base = common.find_dir(DEFAULT_DIR, options.get("lmms_dir"), "STAR_CORPUS_LMMS_DIR",
                           "the lmms sample folder", PACKAGE, NAME)
    warnings_: list[str] = []
    files = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXT:
            continue
        problem = common.check_audio_header(path)
        if problem:
            warnings_.append(f"skipping lmms sample '{path}': unreadable ({problem})")
            continue
        rel = path.relative_to(base)
        folder = rel.parts[0] if len(rel.parts) > 1 else "misc"
        files.append({"path": str(path), "rel": str(rel), "folder": folder})
    if not files:
        raise common.missing("audio samples", base, PACKAGE, NAME)
    licence = common.package_licence(PACKAGE, "data/samples/x.ogg", fallback="GPL-2+")
    return {"files": files, "licence": licence, "warnings": warnings_}


def plan(ctx: dict, rng: np.random.Generator, index: int, seed: int, clip: float) -> dict:
    files = ctx["files"]
    deck = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x1A5]).permutation(len(files))
    # the file of this item, then fallbacks (in a fixed order) if it fails to decode
    first = int(deck[index % len(files)])
    fallbacks = [int(x) for x in rng.permutation(len(files))[:8]]
    semitones = int(rng.choice((0, 0, 0, -7, -5, -3, -2, 2, 3, 5, 7)))
    offset = float(rng.random())
    tone_hz = float(55 * 2 ** (rng.integers(0, 36) / 12))
    return {"file": first, "fallbacks": fallbacks, "semitones": semitones, "offset": offset,
            "tone_hz": tone_hz}


def describe(ctx: dict, spec: dict) -> dict:
    f = ctx["files"][spec.get("used", spec["file"])]
    family, noun, _ = FOLDERS.get(f["folder"], ("misc", "sample", False))
    words = words_from_name(Path(f["rel"]).stem)
    shift = spec["semitones"]
    pitch = "" if shift == 0 else (f", pitched {'up' if shift > 0 else 'down'} "
                                   f"{abs(shift)} semitones")
    if f["folder"] == "waveforms":
        caption = f"a {words} {noun} at {spec['tone_hz']:.0f} Hz"
    else:
        caption = f"{common.with_article(words)} {noun} from the lmms {f['folder']} folder{pitch}"
    labels = {"source": "sample", "family": family, "instrument": words, "register": None,
              "folder": f["folder"], "pitch_shift": shift}
    origin = {"package": PACKAGE, "licence": ctx["licence"], "file": f["rel"]}
    # a recording is the source item: every clip cut from one file shares its split
    group = "lmms-" + re.sub(r"[^a-z0-9]+", "-", f["rel"].lower()).strip("-")
    return {"caption": caption, "labels": labels, "origin": origin, "group": group}


_CACHE: dict[tuple[str, int], np.ndarray] = {}


def _load(path: str, sample_rate: int) -> np.ndarray:
    key = (path, sample_rate)
    if key not in _CACHE:
        _CACHE[key] = common.read_mono(path, sample_rate)
    return _CACHE[key]


def _render_one(ctx, spec, sample_rate, n):
    f = ctx["files"][spec["used"]]
    _, _, loop = FOLDERS.get(f["folder"], ("misc", "sample", False))
    audio = _load(f["path"], sample_rate)
    if f["folder"] == "waveforms":
        # a single cycle (or an LFO shape): repeat at the planned pitch
        cycle = common.to_mono(audio)
        period = max(2, int(round(sample_rate / spec["tone_hz"])))
        from star_plugin.audio import resample
        if cycle.size != period and cycle.size > 1:
            cycle = resample(cycle[None], cycle.size, period)[0] if cycle.size < 20000 else cycle
        reps = int(np.ceil(n / max(cycle.size, 1))) + 1
        return np.tile(cycle, reps)[:n].astype(np.float32)
    if spec["semitones"]:
        from star_plugin.audio import resample
        ratio = 2 ** (spec["semitones"] / 12)
        # playing faster raises the pitch: resample to fewer samples
        audio = resample(audio[None], int(round(sample_rate * ratio)), sample_rate)[0]
    if audio.size > n:
        start = int(spec["offset"] * (audio.size - n))
        return common.fit_length(audio[start:], n, fade=int(0.02 * sample_rate))
    if loop and audio.size > sample_rate // 8:
        reps = int(np.ceil(n / audio.size))
        return common.fit_length(np.tile(audio, reps), n, fade=int(0.02 * sample_rate))
    return common.fit_length(audio, n)


def render(ctx: dict, specs: list[dict], sample_rate: int, clip: float, tmpdir: Path,
           warn=None):
    warn = warn or (lambda msg: None)
    n = int(round(clip * sample_rate))
    out = []
    for spec in specs:
        result = None
        for idx in [spec["file"], *spec["fallbacks"]]:
            spec["used"] = idx
            try:
                result = _render_one(ctx, spec, sample_rate, n)
                break
            except Exception as exc:  # noqa: BLE001 - a broken sample is skipped
                warn(f"skipping lmms sample '{ctx['files'][idx]['path']}': cannot decode it "
                     f"({exc})")
        out.append(result)
    return out
