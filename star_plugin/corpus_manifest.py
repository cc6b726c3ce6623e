"""The corpus manifest format: one JSON object per line in ``DIR/manifest.jsonl``.

Runtime code reads it (``star bench``, the STAR-Gen latent cache) and the corpus builder
(``star_plugin.training.corpus``) writes it, so the format lives here, in the runtime;
``training/corpus/manifest.py`` re-exports it and keeps the builder's split rule.

Each entry::

    {"id": "gm-000123-reverb", "path": "audio/gm-000123-reverb.flac", "split": "train",
     "group": "gm-000123", "caption": "a soft cello playing a slow melody in the low register",
     "labels": {"source": "instrument", "family": "strings", "instrument": "cello",
                "register": "low", "effect": "reverb"},
     "duration": 4.0, "sample_rate": 44100, "channels": 1,
     "origin": {"package": "fluid-soundfont-gm", "licence": "MIT", "file": "..."}}

``group`` is the source item (a rendered phrase, a recorded sample, a sentence): every
variation of one item carries its group, and the split is a function of the group alone, so
train/validation/test never share a source item (``training/corpus/manifest.py``:
``split_for_group``).
"""
from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_bytes_atomic
from .errors import StarError

MANIFEST = "manifest.jsonl"
SPLITS = ("train", "validation", "test")
LABEL_KEYS = ("source", "family", "register", "effect")


class CorpusError(StarError):
    """A corpus directory or manifest that cannot be used."""


def write_manifest(corpus_dir, entries) -> Path:
    path = Path(corpus_dir) / MANIFEST
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    write_bytes_atomic(path, text.encode())
    return path


def read_manifest(corpus_dir, split: str | None = None) -> list[dict]:
    """Entries of a corpus (optionally one split), with clear errors for a bad manifest."""
    path = Path(corpus_dir) / MANIFEST
    if not path.is_file():
        raise CorpusError(f"'{corpus_dir}': no {MANIFEST} here; build a corpus with "
                          f"'star data build --out {corpus_dir}'")
    if split is not None and split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"'{path}' line {number}: not valid JSON ({exc.msg})") from None
        missing = [k for k in ("id", "path", "split", "group", "caption", "labels")
                   if k not in entry]
        if missing:
            raise CorpusError(f"'{path}' line {number}: missing {', '.join(missing)}")
        if split is None or entry["split"] == split:
            entries.append(entry)
    return entries


def audio_path(corpus_dir, entry: dict) -> Path:
    return Path(corpus_dir) / entry["path"]
