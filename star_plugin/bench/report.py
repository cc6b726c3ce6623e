"""Plumbing shared by ``star bench recon`` and ``star bench latent``: the data argument (a
corpus directory or a plain folder of audio files), clip loading, and text/markdown/JSON output.

Only light imports at module level: the CLI imports the ``add_arguments`` functions at start-up.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from ..corpus_manifest import MANIFEST
from ..errors import StarError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
#: Shortest clip (samples at its own rate) the metrics accept: the largest STFT in the
#: multi-scale mel / STFT distances has 2048 points and reflect-pads 1024 on each side.
MIN_SAMPLES = 2048


class BenchError(StarError):
    """Bad data or arguments for a ``star bench`` command."""


# ----------------------------------------------------------------------------- arguments

def add_data_arguments(parser) -> None:
    """Arguments common to the evaluation commands."""
    parser.add_argument("data", help="a corpus directory (with manifest.jsonl) or a folder of "
                                     "audio files (.wav/.flac/.ogg/.mp3, searched recursively)")
    parser.add_argument("--model", action="append", default=None, metavar="M",
                        help="model name or directory (repeat to compare models side by side; "
                             "default: default)")
    parser.add_argument("--split", default="test",
                        help="corpus split to evaluate (default: test); ignored for a folder")
    parser.add_argument("--max-clips", type=int, default=None, metavar="N",
                        help="evaluate N clips: an evenly spaced, deterministic subset of the "
                             "clips sorted by id")
    parser.add_argument("--seconds", type=float, default=None,
                        help="crop each clip to its first S seconds (default: whole clip)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch threads (default 1: on a busy CPU more threads can stall "
                             "for seconds at every operation; raise it on an idle machine)")
    parser.add_argument("--json", default=None, metavar="F", help="write the results as JSON")
    parser.add_argument("--markdown", default=None, metavar="F",
                        help="write the results as a markdown report")


def model_names(args) -> List[str]:
    return list(args.model) if args.model else ["default"]


def check_positive(name: str, value, allow_none: bool = True):
    if value is None and allow_none:
        return None
    if value is None or not (isinstance(value, (int, float)) and math.isfinite(value)) or value <= 0:
        raise BenchError(f"{name} must be a positive number, got {value!r}")
    return value


class torch_threads:
    """Context manager: ``torch.set_num_threads(n)`` inside, the previous count restored."""

    def __init__(self, n):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise BenchError(f"--threads must be an integer >= 1, got {n!r}")
        self.n = n

    def __enter__(self):
        import torch

        self.previous = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.previous)
        return False


def warn(message: str) -> None:
    """A one-line warning on stderr, in the CLI's style."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- data

@dataclass
class DataItem:
    """One clip of a data set: ``id`` (manifest id or path relative to the folder)."""

    id: str
    path: Path
    labels: dict = field(default_factory=dict)


@dataclass
class DataSet:
    kind: str  # "corpus" or "folder"
    root: Path
    split: Optional[str]
    items: List[DataItem]
    total: int  # items before --max-clips

    def describe(self) -> dict:
        return {"kind": self.kind, "root": str(self.root), "split": self.split,
                "clips_available": self.total, "clips_selected": len(self.items)}


def even_subset(items: Sequence[DataItem], n: Optional[int]) -> List[DataItem]:
    """Sort by id, then keep ``n`` evenly spaced items (first and last included), so that a
    subset spans the whole sorted list (every id prefix: every source of a corpus) rather than
    its first few entries. Deterministic; ``n=None`` or ``n >= len`` keeps everything."""
    ordered = sorted(items, key=lambda item: item.id)
    if n is None or n >= len(ordered):
        return ordered
    if n == 1:
        return ordered[:1]
    last = len(ordered) - 1
    picks = sorted({round(i * last / (n - 1)) for i in range(n)})
    return [ordered[i] for i in picks]


def _folder_items(root: Path) -> List[DataItem]:
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    return [DataItem(p.relative_to(root).as_posix(), p, {}) for p in files]


def resolve_data(data, split: Optional[str] = "test", max_clips: Optional[int] = None) -> DataSet:
    """A corpus directory (``manifest.jsonl``: the entries of ``split``) or a folder of audio."""
    if max_clips is not None and (isinstance(max_clips, bool) or not isinstance(max_clips, int)
                                  or max_clips < 1):
        raise BenchError(f"--max-clips must be an integer >= 1, got {max_clips!r}")
    root = Path(data).expanduser()
    if not root.exists():
        raise BenchError(f"data '{data}' does not exist (expected a corpus directory with "
                         f"{MANIFEST} or a folder of audio files)")
    if not root.is_dir():
        raise BenchError(f"data '{data}' is not a directory (expected a corpus directory with "
                         f"{MANIFEST} or a folder of audio files)")
    if (root / MANIFEST).is_file():
        from ..corpus_manifest import audio_path, read_manifest

        entries = read_manifest(root, split)
        if not entries:
            splits = sorted({e["split"] for e in read_manifest(root)})
            raise BenchError(f"corpus '{root}': split {split!r} is empty (splits present: "
                             f"{', '.join(splits) or 'none'})")
        items = [DataItem(str(e["id"]), audio_path(root, e), dict(e.get("labels") or {}))
                 for e in entries]
        kind = "corpus"
    else:
        items = _folder_items(root)
        if not items:
            raise BenchError(f"'{root}' has no {MANIFEST} and no audio files "
                             f"({'/'.join(AUDIO_EXTENSIONS)}); pass a corpus directory or a "
                             f"folder of audio files")
        kind, split = "folder", None
    return DataSet(kind, root, split, even_subset(items, max_clips), len(items))


def hash_fold(item_id: str, folds: int = 5) -> int:
    """A deterministic fold number of an id (used to split a plain folder)."""
    return int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:8], "big") % folds


@dataclass
class Clip:
    item: DataItem
    audio: "object"  # numpy float32 (channels, samples)
    rate: int


def iter_clips(items: Sequence[DataItem], seconds: Optional[float] = None,
               skipped: Optional[list] = None) -> Iterator[Clip]:
    """Read each item (``read_audio``), crop to the first ``seconds``; an unreadable or too
    short file is skipped with a warning naming it (and appended to ``skipped``)."""
    from ..audio import read_audio, sanitize

    for item in items:
        try:
            audio, rate = read_audio(item.path)
        except (StarError, OSError, ValueError) as exc:
            reason = str(exc)
            warn(f"skipping '{item.path}': {reason}")
            if skipped is not None:
                skipped.append({"id": item.id, "path": str(item.path), "reason": reason})
            continue
        audio, n_bad = sanitize(audio)
        if n_bad:
            warn(f"'{item.path}': replaced {n_bad} NaN/Inf samples with 0")
        if seconds is not None:
            audio = audio[:, : max(1, int(round(seconds * rate)))]
        if audio.shape[1] < MIN_SAMPLES:
            reason = (f"too short ({audio.shape[1]} samples at {rate} Hz; the metrics need at "
                      f"least {MIN_SAMPLES})")
            warn(f"skipping '{item.path}': {reason}")
            if skipped is not None:
                skipped.append({"id": item.id, "path": str(item.path), "reason": reason})
            continue
        yield Clip(item, audio, int(rate))


# ----------------------------------------------------------------------------- statistics

def finite_stats(values: Sequence[float]) -> dict:
    """Mean and median over the finite values, with their count."""
    import numpy as np

    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "n": int(arr.size)}


# ----------------------------------------------------------------------------- output

def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "nan"
    return f"{value:.{digits}f}"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    cols = [list(map(str, headers))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]

    def line(r):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(cols[0]), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in cols[1:]])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(c):
        return str(c).replace("|", "\\|")

    out = ["| " + " | ".join(map(esc, headers)) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


def _jsonable(obj):
    """NaN/Inf -> None (strict JSON), numpy scalars/arrays -> Python."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, result: dict) -> Path:
    from ..atomic import write_bytes_atomic

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n"
    write_bytes_atomic(p, text.encode())
    return p


def guard_report_files(args) -> None:
    """``--json`` and ``--markdown`` under the output rule (``star_plugin.atomic``), checked
    before a benchmark spends minutes measuring."""
    from ..atomic import OutputGuard

    OutputGuard(files=[("--json", getattr(args, "json", None)),
                       ("--markdown", getattr(args, "markdown", None))])


def write_text(path, text: str) -> Path:
    from ..atomic import write_bytes_atomic

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(p, (text.rstrip("\n") + "\n").encode())
    return p
