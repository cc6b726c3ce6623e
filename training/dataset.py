"""Training audio: a corpus split held in memory as int16, cropped at random per step.

The corpus (~hours of mono audio) fits in memory, so a batch is a few numpy slices: no
worker processes, and a batch is a pure function of (seed, step, rank), which is what makes
``--resume`` continue exactly.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import torch

from star_plugin.audio import load_for_model

from .corpus.manifest import CorpusError, audio_path, read_manifest


class CorruptClipWarning(UserWarning):
    """A corpus file that could not be read and was left out."""


class ClipPool:
    """All clips of one corpus split at the model's rate, mono, as int16."""

    def __init__(self, corpus, split: str, sample_rate: int, max_items: int | None = None,
                 verbose: bool = True):
        entries = sorted(read_manifest(corpus, split), key=lambda e: e["id"])
        if max_items:
            entries = entries[:max_items]
        self.entries, self.clips, self.skipped = [], [], []
        for entry in entries:
            path = audio_path(corpus, entry)
            try:
                mono = load_for_model(path, sample_rate, 1)[0][0]
            except Exception as exc:  # any unreadable file: leave it out, say which
                warnings.warn(f"skipping corpus file '{path}': {exc}", CorruptClipWarning,
                              stacklevel=2)
                self.skipped.append(str(path))
                continue
            if mono.size == 0:
                warnings.warn(f"skipping corpus file '{path}': it is empty", CorruptClipWarning,
                              stacklevel=2)
                self.skipped.append(str(path))
                continue
            self.clips.append(np.round(np.clip(mono, -1, 1) * 32767).astype(np.int16))
            self.entries.append(entry)
        if not self.clips:
            raise CorpusError(f"'{corpus}': the {split!r} split has no readable audio")
        self.sample_rate = sample_rate
        if verbose:
            seconds = sum(c.size for c in self.clips) / sample_rate
            print(f"{split}: {len(self.clips)} clips, {seconds / 3600:.2f} h "
                  f"({len(self.skipped)} skipped)", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.clips)

    def crop(self, index: int, samples: int, offset: int = 0) -> np.ndarray:
        clip = self.clips[index][offset:offset + samples].astype(np.float32) / 32767.0
        return np.pad(clip, (0, samples - clip.size))

    def batch(self, rng: np.random.Generator, batch_size: int, samples: int,
              gain_db=(-12.0, 3.0)) -> torch.Tensor:
        """(batch, 1, samples) random crops with random gain; near-silent crops are redrawn
        a few times (one-shots end in silence)."""
        out = np.zeros((batch_size, 1, samples), dtype=np.float32)
        for b in range(batch_size):
            for _ in range(4):
                index = int(rng.integers(len(self.clips)))
                span = max(1, self.clips[index].size - samples + 1)
                crop = self.crop(index, samples, int(rng.integers(span)))
                if np.sqrt(np.mean(crop ** 2)) > 1e-3:
                    break
            peak = max(float(np.abs(crop).max()), 1e-4)
            gain = 10 ** (rng.uniform(*gain_db) / 20)
            out[b, 0] = crop * min(gain, 0.999 / peak)  # never clip the target
        return torch.from_numpy(out)
