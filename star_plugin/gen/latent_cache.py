"""Latents of a captioned corpus, computed once with a VAE and cached on disk.

The cache file (safetensors) holds every clip's latent mean, concatenated along frames, with
an index (clip id, caption, labels, split, frame offset and count) in its metadata and the
VAE's fingerprint (a hash of its config and weights). A cache made with another VAE is
rebuilt, never reused: a generator trained on one VAE's latents is meaningless for another.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from ..errors import ConfigError, ModelFileError

CACHE_FORMAT = "star-latent-cache"
CACHE_VERSION = 1


def vae_fingerprint(model_name) -> str:
    """sha256 of the model directory's config and weights."""
    from ..model_io import CONFIG_FILE, WEIGHTS_FILE, resolve_model_dir

    directory = resolve_model_dir(model_name)
    h = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        with open(directory / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


class LatentCache:
    """Loaded cache: ``latents`` (C, total frames) float32 and ``clips`` (list of dicts)."""

    def __init__(self, latents: np.ndarray, clips: List[dict], meta: dict):
        self.latents, self.clips, self.meta = latents, clips, meta

    def split(self, name: str) -> List[dict]:
        return [c for c in self.clips if c["split"] == name]

    def clip_latent(self, clip: dict) -> np.ndarray:
        return self.latents[:, clip["offset"]:clip["offset"] + clip["frames"]]

    @property
    def channels(self) -> int:
        return self.latents.shape[0]


def load_cache(path) -> LatentCache:
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            latents = f.get_tensor("latents")
    except Exception as exc:
        raise ModelFileError(f"latent cache '{path}' cannot be read ({exc}); delete it to "
                             "rebuild") from None
    if meta.get("format") != CACHE_FORMAT or int(meta.get("version", 0)) != CACHE_VERSION:
        raise ModelFileError(f"'{path}' is not a version-{CACHE_VERSION} latent cache")
    return LatentCache(latents, json.loads(meta["clips"]), meta)


def build_cache(corpus_dir, model_name, path, progress: Optional[Callable] = None,
                force: bool = False) -> LatentCache:
    """Encode every clip of the corpus with the VAE (or reuse a cache made by the same VAE)."""
    from safetensors.numpy import save_file

    from ..atomic import atomic_path
    from ..audio import load_for_model
    from ..corpus_manifest import audio_path, read_manifest
    from ..backend import open_model

    path = Path(path)
    fingerprint = vae_fingerprint(model_name)
    if path.exists() and not force:
        cache = load_cache(path)
        if cache.meta.get("vae_sha256") == fingerprint:
            return cache
    entries = read_manifest(corpus_dir)
    if not entries:
        raise ConfigError(f"corpus '{corpus_dir}' has no clips")
    vae = open_model(model_name)
    parts, clips, offset = [], [], 0
    for i, entry in enumerate(entries):
        audio, _ = load_for_model(audio_path(corpus_dir, entry), vae.sample_rate,
                                  vae.audio_channels)
        mean = vae.encode(audio[None]).mean[0].numpy()
        parts.append(mean.astype(np.float32))
        clips.append({"id": entry["id"], "caption": entry["caption"],
                      "labels": entry.get("labels", {}), "split": entry["split"],
                      "offset": offset, "frames": int(mean.shape[1])})
        offset += mean.shape[1]
        if progress is not None:
            progress(i + 1, len(entries))
    latents = np.concatenate(parts, axis=1)
    meta = {"format": CACHE_FORMAT, "version": str(CACHE_VERSION), "vae": str(model_name),
            "vae_sha256": fingerprint, "latent_rate": str(vae.sample_rate / vae.hop),
            "structure_channels": str(vae.structure_channels), "clips": json.dumps(clips)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({"latents": latents}, str(tmp), metadata=meta)
    return LatentCache(latents, clips, meta)


def channel_stats(cache: LatentCache, split: str = "train") -> Dict[str, np.ndarray]:
    frames = np.concatenate([cache.clip_latent(c) for c in cache.split(split)], axis=1)
    return {"mean": frames.mean(axis=1), "std": frames.std(axis=1) + 1e-4}
