"""The corpus manifest, as the builder sees it.

The format (``DIR/manifest.jsonl``: reader, writer, ``LABEL_KEYS``, ``CorpusError``) is read at
run time, so it lives in the runtime, ``star_plugin.corpus_manifest``, and is re-exported here.
The builder's own rule stays here: the split is a function of an entry's ``group`` (its source
item) alone, so train/validation/test never share a source item.
"""
from __future__ import annotations

import hashlib

from star_plugin.corpus_manifest import (LABEL_KEYS, MANIFEST, SPLITS, CorpusError, audio_path,
                                         read_manifest, write_manifest)

__all__ = ["LABEL_KEYS", "MANIFEST", "SPLITS", "CorpusError", "audio_path", "read_manifest",
           "split_for_group", "write_manifest"]


def split_for_group(group: str, seed: int, fractions=(0.8, 0.1, 0.1)) -> str:
    """Deterministic split of a source item: a hash of (seed, group) mapped onto fractions."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions):
        edge += fraction
        if u < edge:
            return name
    return SPLITS[-1]
