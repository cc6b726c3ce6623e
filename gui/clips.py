"""What the studio works on, without Qt: clips (audio + what the views show), and the model
work behind each panel (open, generate, morph through the effect chain). Everything here runs
on the worker thread; the widgets only display the results."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np
import torch

from star_plugin.audio import conform, read_audio, sanitize
from star_plugin.backend import open_model
from star_plugin.errors import AudioFileError, ConfigError
from star_plugin.latent import Latent
from star_plugin.morph import MorphParams
from star_plugin.metrics import spectrogram_db
from star_plugin.star_loss import kl_nats_per_frame

ANALYSIS_MAX_S = 60.0  # the views show at most this much of a clip (long files stay fast)
Progress = Callable[[int, int], None]

_ids = itertools.count(1)


@dataclass
class Analysis:
    """What the views draw: a dB spectrogram and the clip's STAR posterior."""

    spectrogram: np.ndarray      # (bins, frames) dB, low frequencies first
    latent: np.ndarray           # (channels, frames) posterior mean
    kl: np.ndarray               # (channels,) KL in nats per latent frame
    structure_channels: int
    seconds: float               # how much of the clip the analysis covers


@dataclass
class Clip:
    """A sound in the session: an opened file, a generated sound or a render."""

    name: str
    audio: np.ndarray            # (channels, samples) float32
    sample_rate: int
    origin: str                  # "file" | "generated" | "morph"
    path: Optional[Path] = None
    latent: Optional[Latent] = None  # a generated latent: the texture source as generated
    original: Optional["Clip"] = None  # what a render came from (the A of A/B)
    analysis: Optional[Analysis] = None
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def seconds(self) -> float:
        return self.audio.shape[1] / self.sample_rate


def encode(model, audio: np.ndarray, rate: int) -> Latent:
    """(channels, n) at any rate -> the latent of the sound mixed to the model's channels
    (any backend: ``open_model``)."""
    model = open_model(model)
    x = conform(audio, rate, model.sample_rate, model.audio_channels)
    return model.encode(np.ascontiguousarray(x, dtype=np.float32)[None])


def analyse(model, audio: np.ndarray, rate: int) -> Analysis:
    part = audio[:, :int(ANALYSIS_MAX_S * rate)]
    latent = encode(model, part, rate)
    mean = latent.mean
    logsigma = latent.logsigma if latent.logsigma is not None else torch.zeros_like(mean)
    kl = kl_nats_per_frame(mean, logsigma) if mean.shape[2] else torch.zeros(mean.shape[1])
    return Analysis(spectrogram_db(part), mean[0].numpy().copy(), kl.numpy().copy(),
                    latent.structure_channels, part.shape[1] / rate)


def open_clip(path, model) -> Clip:
    """A file as a clip, analysed. NaN/Inf become silence; empty files are refused."""
    path = Path(path)
    audio, rate = read_audio(path)
    if audio.shape[1] == 0:
        raise AudioFileError(f"'{path}' has no samples; choose a file that contains audio")
    audio, _ = sanitize(audio)
    clip = Clip(path.stem, audio, rate, "file", path=path)
    clip.analysis = analyse(model, audio, rate)
    return clip


def generate_clips(generator, prompt: str, seconds: float, steps: int, cfg: float, seed: int,
                   variations: int, progress: Optional[Progress] = None) -> List[Clip]:
    """``variations`` sounds for one prompt; each keeps its generated latent (a texture
    source that was never decoded and re-encoded)."""
    latent = generator.generate_latent(prompt, seconds, steps=steps, cfg=cfg, seed=seed,
                                       variations=variations, progress=progress)
    vae = generator.vae
    with torch.inference_mode():
        audio = vae.decode(latent.mean, num_samples=latent.num_samples).numpy()
    short = prompt if len(prompt) <= 40 else prompt[:37] + "..."
    clips = []
    for i in range(audio.shape[0]):
        one = Latent(latent.mean[i:i + 1].clone(), None, latent.structure_channels,
                     latent.sample_rate, latent.hop, latent.num_samples)
        suffix = f" #{i + 1}" if audio.shape[0] > 1 else ""
        clip = Clip(f"{short} (seed {seed}){suffix}", np.ascontiguousarray(audio[i], np.float32),
                    int(vae.sample_rate), "generated", latent=one)
        clip.analysis = analyse(vae, clip.audio, clip.sample_rate)
        clips.append(clip)
    return clips


def texture_latent(model, clip: Clip) -> Latent:
    """A clip as a texture source: its generated latent, or its audio encoded (mono)."""
    if clip.latent is not None:
        return clip.latent
    return encode(model, conform(clip.audio, clip.sample_rate, clip.sample_rate, 1),
                  clip.sample_rate)


def build_chain(stages: List[dict]):
    """Pedalboard stages ({"type": name, "params": {...}}) as a ``StarChain`` (its checks give
    clear errors for unknown effects and out-of-range parameters)."""
    from star_plugin.chain import StarChain

    return StarChain.from_dict({"stages": [dict(s) for s in stages]})


def render_morph(model, content: Clip, texture: Optional[Clip], params: MorphParams,
                 before: List[dict], after: List[dict], progress: Optional[Progress] = None) -> Clip:
    """The effect chain around the STAR stage, offline: before -> morph -> after."""
    from star_plugin.engine import render_offline

    model = open_model(model)
    params.validate(model.latent_channels)
    if content.audio.shape[1] == 0:
        raise ConfigError(f"content clip '{content.name}' is empty")
    x, rate = content.audio, content.sample_rate
    if progress:
        progress(0, 3)
    if before:
        x = build_chain(before).process_channels_first(x, rate)
    source = texture_latent(model, texture) if texture is not None else None
    if progress:
        progress(1, 3)
    y = render_offline(model, x, rate, params, texture_source=source)
    if progress:
        progress(2, 3)
    if after:
        y = build_chain(after).process_channels_first(y, rate)
    y = np.nan_to_num(np.asarray(y, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    name = f"{content.name} x {texture.name}" if texture is not None else f"{content.name} (morph)"
    clip = Clip(name, y, rate, "morph", original=content)
    clip.analysis = analyse(model, y, rate)
    if progress:
        progress(3, 3)
    return clip
