"""Shared pieces of the corpus sources: seeded generators, tools, licences, clip shaping.

Every random choice of the corpus is drawn from :func:`item_rng`, a numpy Generator seeded
from (seed, source, item index, stream), so an item is a pure function of those numbers
whatever process renders it and whatever ``--jobs`` is.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np

from .manifest import CorpusError

# ----------------------------------------------------------------------------- randomness


def item_rng(seed: int, source: str, index: int, *stream: int) -> np.random.Generator:
    """The generator for one item (``stream`` separates independent draws of the same item:
    0 plan, 1 effects, 100+k the k-th re-roll of a silent item...)."""
    code = zlib.crc32(source.encode())
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, code, int(index), *map(int, stream)])


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


# ----------------------------------------------------------------------------- tools

APT_PACKAGES = {
    "fluidsynth": "fluidsynth",
    "sf2": "fluid-soundfont-gm",
    "hydrogen": "hydrogen-drumkits",
    "lmms": "lmms-common",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
}

ALL_APT = "fluidsynth fluid-soundfont-gm hydrogen-drumkits lmms-common espeak-ng sox"


class MissingPackageError(CorpusError):
    """A Debian tool or data package that a source needs is not installed."""


def missing(what: str, path, package: str, source: str) -> MissingPackageError:
    return MissingPackageError(
        f"the '{source}' source needs {what} ('{path}'), which was not found: install it with "
        f"'apt-get install -y {package}' (or leave the source out with --sources)")


def find_tool(name: str, override: str | None, env: str, source: str) -> str:
    """Absolute path of a command-line tool: an explicit override, then ``$env``, then PATH."""
    candidate = override or os.environ.get(env) or name
    found = shutil.which(candidate)
    if not found:
        raise missing(f"the '{name}' program", candidate, APT_PACKAGES.get(name, name), source)
    return found


def find_dir(default: str, override, env: str, what: str, package: str, source: str) -> Path:
    path = Path(override or os.environ.get(env) or default)
    if not path.is_dir():
        raise missing(what, path, package, source)
    return path


def run_tool(argv: list[str], what: str, timeout: float = 120) -> None:
    """Run a tool quietly; a failure raises CorpusError with its stderr tail."""
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=timeout, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip()[-400:]
        raise CorpusError(f"{what} failed (exit {proc.returncode}): {' '.join(argv[:3])} ...: "
                          f"{tail}")


# ----------------------------------------------------------------------------- licences


def owning_package(path: str, fallback: str) -> str:
    """The Debian package that installed ``path`` (``dpkg -S``), else ``fallback``."""
    try:
        proc = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return fallback
    first = proc.stdout.split(":", 1)[0].strip() if proc.returncode == 0 else ""
    return first or fallback

DOC_DIR = Path("/usr/share/doc")


def _dep5_paragraphs(text: str):
    para: dict[str, str] = {}
    key = None
    for line in text.splitlines() + [""]:
        if not line.strip():
            if para:
                yield para
            para, key = {}, None
        elif line[0] in " \t" and key:
            para[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            para[key] = value.strip()


def package_licence(package: str, member: str | None = None, fallback: str = "unknown",
                    doc_dir: Path = DOC_DIR) -> str:
    """The licence of ``package`` (or of the file ``member`` in it) from its Debian copyright
    file: the last matching ``Files:`` paragraph of a machine-readable file, else a
    'GPL version N or later' sentence, else ``fallback``."""
    try:
        text = (Path(doc_dir) / package / "copyright").read_text(errors="replace")
    except OSError:
        return fallback
    if text.startswith("Format:"):
        best = None
        for para in _dep5_paragraphs(text):
            if "Files" not in para or "License" not in para:
                continue
            patterns = para["Files"].split()
            target = member or "*"
            if any(fnmatch.fnmatchcase(target, p) for p in patterns) or (
                    member is None and "*" in patterns):
                best = para["License"].splitlines()[0].strip()
        if best:
            return best
    m = re.search(r"(Lesser )?General Public License.{0,120}?version (\d)(\.\d)? of the License, "
                  r"or", text, re.DOTALL)
    if m:
        return f"{'LGPL' if m.group(1) else 'GPL'}-{m.group(2)}{m.group(3) or ''}+"
    if re.search(r"\bMIT licen[sc]e", text, re.IGNORECASE):
        return "MIT"
    return fallback


# ----------------------------------------------------------------------------- clip shaping

SILENCE_PEAK = 1e-3  # -60 dBFS: below this a clip counts as silent and is re-rolled
_SILENCE_RMS = 1e-4


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(channels, samples) or (samples,) -> float32 (samples,)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0)
    return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def fit_length(mono: np.ndarray, n: int, fade: int = 0) -> np.ndarray:
    """Crop (with a ``fade``-sample fade-out at the cut) or zero-pad to exactly ``n`` samples."""
    if mono.size >= n:
        out = mono[:n].copy()
        if fade and mono.size > n:
            f = min(fade, n)
            out[-f:] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
        return out
    return np.concatenate([mono, np.zeros(n - mono.size, np.float32)])


def is_silent(mono: np.ndarray) -> bool:
    if mono.size == 0 or not np.all(np.isfinite(mono)):
        return True
    mono = mono - np.float32(mono.mean())  # a constant (DC) is silence too
    return float(np.max(np.abs(mono))) < SILENCE_PEAK or float(np.sqrt(np.mean(mono ** 2))) < _SILENCE_RMS


def peak_normalise(mono: np.ndarray, level_db: float) -> np.ndarray:
    """Scale so that the peak sits at ``level_db`` dBFS (after removing any DC offset)."""
    mono = mono - np.float32(mono.mean())
    peak = float(np.max(np.abs(mono)))
    if peak <= 0:
        return mono.astype(np.float32)
    return (mono * np.float32(10 ** (level_db / 20) / peak)).astype(np.float32)


def read_mono(path, sample_rate: int) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sample_rate`` (raises on a broken file)."""
    import warnings as _w

    from star_plugin.audio import read_audio, resample
    with _w.catch_warnings():
        _w.simplefilter("error")  # a truncated file is a broken file here
        audio, rate = read_audio(path, strict=True)
    mono = to_mono(audio)
    if mono.size == 0:
        raise CorpusError(f"'{path}' holds no audio")
    if not np.all(np.isfinite(mono)):
        raise CorpusError(f"'{path}' holds non-finite samples")
    if rate != sample_rate:
        mono = resample(mono[None], rate, sample_rate)[0]
    return mono.astype(np.float32)


def check_audio_header(path) -> str | None:
    """None when libsndfile can open ``path``, else the reason (a quick scan-time check)."""
    import soundfile as sf
    try:
        frames = sf.info(str(path)).frames
    except Exception as exc:  # noqa: BLE001 - any failure means unreadable
        problem = str(exc).strip() or type(exc).__name__
        try:  # some files (e.g. WAV data named .ogg) only Pedalboard/JUCE opens
            from pedalboard.io import AudioFile
            with AudioFile(str(path)) as f:
                frames = f.frames
        except Exception:  # noqa: BLE001
            return problem
    if frames <= 0:
        return "no audio frames"
    return None
