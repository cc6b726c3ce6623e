"""Recorded music, voices and sounds from Debian's game data packages.

The synthesised sources (GM soundfont, espeak-ng) miss what real recordings have: mixed
instruments, room sound, sung and acted voices, natural noises. These packages ship about ten
hours of them under free licences (the build records each package's licence):

| package | what |
|---|---|
| warzone2100-music | orchestral and electronic soundtrack (about 4 h) |
| supertux-data | chiptune and band music, effects, spoken lines |
| widelands-data | orchestral and folk music, animals, workshops, taverns |
| hedgewars-data | music, effects and recorded voices (nine voice packs) |
| openclonk-data | soundtrack |
| frozen-bubble-data | music and effects |

A recording is the source item: its clips all carry its path as the ``group``, so a file never
spans two splits. An item is a clip-length window of one file: files are drawn with
probability proportional to their length (so the long soundtracks give most clips, the short
effects a few each), the window at a random start, read from disk without decoding the whole
file. Packages that are not installed are left out with a warning; the source needs at least one.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from . import common

NAME = "recordings"
PREFIX = "rec"
PACKAGE = "warzone2100-music"
BATCH = 8
AUDIO_EXT = (".ogg", ".flac", ".wav", ".opus")
PACKAGES = ("warzone2100-music", "supertux-data", "widelands-data", "hedgewars-data",
            "openclonk-data", "frozen-bubble-data")
APT_INSTALL = " ".join(PACKAGES)
MIN_SECONDS = 0.3   # shorter files are clicks and blips, not worth a clip


def _package_files(package: str) -> list[str]:
    proc = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    if proc.returncode != 0:
        return []
    return sorted(f for f in proc.stdout.splitlines() if f.lower().endswith(AUDIO_EXT))


def kind_of(path: str) -> tuple[str, str]:
    """(family label, caption noun) from where a file lives."""
    low = path.lower()
    if "/voices/" in low or "/speech/" in low:
        return "voice", "recorded voice line"
    if "/music/" in low or "warzone2100/music" in low or low.endswith(("-music.ogg", "_music.ogg")):
        return "music", "music recording"
    return "sound effects", "recorded sound"


def describe_file(path: str, package: str) -> str:
    """'a music recording from supertux-data (forest: "jewels")'-like words."""
    stem = re.sub(r"[_\-]+", " ", Path(path).stem).strip()
    folder = Path(path).parent.name.replace("_", " ")
    family, noun = kind_of(path)
    return f"{common.with_article(noun)} from {package} ({folder}: \"{stem}\")"


def prepare(options: dict, sample_rate: int) -> dict:
    import soundfile as sf
    files, warnings_, licences = [], [], {}
    packages = options.get("recording_packages") or PACKAGES
    for package in packages:
        paths = _package_files(package)
        if not paths:
            warnings_.append(f"recordings: package '{package}' is not installed; left out "
                             f"(apt-get install -y {package})")
            continue
        licences[package] = common.package_licence(package, fallback="see its copyright file")
        for path in paths:
            try:
                info = sf.info(path)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped
                warnings_.append(f"skipping recording '{path}': unreadable ({exc})")
                continue
            seconds = info.frames / max(info.samplerate, 1)
            if seconds >= MIN_SECONDS:
                files.append({"path": path, "package": package, "seconds": seconds,
                              "rate": info.samplerate})
    if not files:
        raise common.missing("recorded audio from the game data packages", "dpkg -L",
                             APT_INSTALL, NAME)
    weights = np.array([f["seconds"] for f in files])
    return {"files": files, "weights": weights / weights.sum(), "licences": licences,
            "warnings": warnings_}


def plan(ctx: dict, rng: np.random.Generator, index: int, seed: int, clip: float) -> dict:
    return {"file": int(rng.choice(len(ctx["files"]), p=ctx["weights"])),
            "offset": float(rng.random())}


def describe(ctx: dict, spec: dict) -> dict:
    f = ctx["files"][spec["file"]]
    family, _ = kind_of(f["path"])
    labels = {"source": "recording", "family": family, "instrument": None, "register": None,
              "package": f["package"]}
    origin = {"package": f["package"], "licence": ctx["licences"].get(f["package"], "unknown"),
              "file": f["path"]}
    group = "rec-" + re.sub(r"[^a-z0-9]+", "-", f["path"].lower()).strip("-")
    return {"caption": describe_file(f["path"], f["package"]), "labels": labels,
            "origin": origin, "group": group}


def _read_window(f: dict, offset: float, clip: float, sample_rate: int) -> np.ndarray:
    import soundfile as sf

    from star_plugin.audio import resample
    native = int(round(clip * f["rate"]))
    total = int(f["seconds"] * f["rate"])
    start = int(offset * max(0, total - native))
    audio, rate = sf.read(f["path"], start=start, frames=native, dtype="float32",
                          always_2d=True)
    mono = common.to_mono(audio.T)
    if rate != sample_rate and mono.size:
        mono = resample(mono[None], rate, sample_rate)[0]
    return mono


def render(ctx: dict, specs: list[dict], sample_rate: int, clip: float, tmpdir: Path,
           warn=None):
    warn = warn or (lambda msg: None)
    n = int(round(clip * sample_rate))
    out = []
    for spec in specs:
        f = ctx["files"][spec["file"]]
        try:
            out.append(common.fit_length(_read_window(f, spec["offset"], clip, sample_rate), n,
                                         fade=int(0.01 * sample_rate)))
        except Exception as exc:  # noqa: BLE001 - a broken file is skipped, the item re-rolled
            warn(f"skipping recording '{f['path']}': cannot decode it ({exc})")
            out.append(None)
    return out
