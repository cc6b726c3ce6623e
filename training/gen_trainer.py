"""``star train gen --config FILE [--resume]``: train STAR-Gen on cached corpus latents.

    {"out": "runs/gen", "vae": "default", "corpus": "data/corpus",
     "model": {"width": 256, "layers": 6}, "batch_size": 32, "steps": 20000, "lr": 3e-4}

The corpus is encoded once with the VAE (``gen.latent_cache``, rebuilt if the VAE changes),
captions once with the frozen text encoder. Each step takes random clips, crops them to a
random common duration (variable length), and minimises the rectified-flow loss on
standardised latents. EMA weights, atomic checkpoints (every ``checkpoint_steps``) and exact
resume; ``torchrun`` DDP like the VAE trainer. The export (``OUT/generator/``) is what
``load_generator`` reads.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from star_plugin.atomic import atomic_path
from star_plugin.errors import ConfigError
from star_plugin.gen.flow import flow_loss
from star_plugin.gen.latent_cache import build_cache, channel_stats
from star_plugin.gen.model import GenConfig, StarGen
from star_plugin.gen.store import save_generator
from star_plugin.gen.text import TextEncoder
from star_plugin.model_io import load_vae

from .distributed import setup, teardown
from .ema import EMA
from .train_config import apply_overrides, build_dataclass, read_config_file

CHECKPOINT = "checkpoint.pt"


@dataclass
class GenTrainConfig:
    out: str = "runs/gen"
    vae: str = "default"
    corpus: str = ""
    cache: Optional[str] = None          # default: CORPUS/latents-<vae name>.safetensors
    model: dict = field(default_factory=dict)
    batch_size: int = 32
    steps: int = 20000
    minutes: Optional[float] = None      # wall-clock budget across resumes
    lr: float = 3e-4
    warmup_steps: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    text_dropout: float = 0.1
    min_seconds: float = 1.0             # crops are drawn between these durations
    max_seconds: float = 4.0
    max_clips: Optional[int] = None
    seed: int = 0
    threads: Optional[int] = None
    device: str = "auto"
    log_every: int = 50
    checkpoint_steps: int = 500

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "GenTrainConfig":
        cfg = build_dataclass(cls, raw, source)
        if not cfg.corpus:
            raise ConfigError(f"{source}: 'corpus' is required (a 'star data build' directory)")
        if not 0 < cfg.min_seconds <= cfg.max_seconds:
            raise ConfigError(f"{source}: need 0 < min_seconds <= max_seconds")
        return cfg

    @classmethod
    def load(cls, path) -> "GenTrainConfig":
        return cls.from_dict(read_config_file(path, "generator training config"), str(path))


class GenTrainer:
    def __init__(self, config: GenTrainConfig, resume: bool = False):
        self.config = c = config
        self.out = Path(c.out)
        if (self.out / CHECKPOINT).exists() and not resume:
            raise ConfigError(f"'{self.out}' already holds a run ({CHECKPOINT}); pass --resume "
                              "to continue it or choose another out")
        self.ctx = setup(c.device)
        if c.threads:
            torch.set_num_threads(c.threads)
        cache_path = c.cache or str(Path(c.corpus) / f"latents-{Path(str(c.vae)).name}.safetensors")
        self.cache = build_cache(c.corpus, c.vae, cache_path)  # reused if the VAE is the same
        self.clips = self.cache.split("train")[:c.max_clips]
        if not self.clips:
            raise ConfigError(f"corpus '{c.corpus}' has no training clips")
        self.latent_rate = float(self.cache.meta["latent_rate"])
        vae = load_vae(c.vae)  # for its timing: max_seconds of audio must fit max_frames
        need = int(round(c.max_seconds * vae.sample_rate)) + vae.synthesis_delay
        self.crop_frames = -(-need // vae.hop)  # longest training crop
        # model.max_frames may be set longer, to let the generator make longer sounds
        gen_cfg = GenConfig.from_dict({"latent_channels": self.cache.channels,
                                       "max_frames": self.crop_frames, **c.model})
        if gen_cfg.max_frames < self.crop_frames:
            raise ConfigError(f"model.max_frames {gen_cfg.max_frames} is shorter than the "
                              f"{self.crop_frames} frames of a max_seconds crop")
        self.text = TextEncoder(gen_cfg.max_text_tokens)
        captions = sorted({clip["caption"] for clip in self.clips})
        self.caption_index = {cap: i for i, cap in enumerate(captions)}
        self.text_states, self.text_mask = self.text.encode(captions)
        torch.manual_seed(c.seed)
        device = self.ctx.device
        self.model = StarGen(gen_cfg).to(device)
        stats = channel_stats(self.cache)
        self.model.latent_mean.copy_(torch.from_numpy(stats["mean"]))
        self.model.latent_std.copy_(torch.from_numpy(stats["std"]))
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=c.lr, betas=(0.9, 0.95),
                                     weight_decay=c.weight_decay)
        self.ema = EMA(self.model, c.ema_decay)
        self.step, self.elapsed = 0, 0.0
        if resume and (self.out / CHECKPOINT).exists():
            self._load(self.out / CHECKPOINT)
        self.net = DistributedDataParallel(self.model) if self.ctx.distributed else self.model

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        if self.ctx.main:
            state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                     "optimizer": self.opt.state_dict(), "step": self.step,
                     "elapsed": self.elapsed, "config": asdict(self.config)}
            with atomic_path(self.out / CHECKPOINT) as tmp:
                torch.save(state, tmp)

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.ctx.device, weights_only=False)
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["optimizer"])
        except Exception as exc:
            raise ConfigError(f"checkpoint '{path}' cannot be resumed with this config "
                              f"({str(exc).splitlines()[0]}); remove it to start over") from None
        self.step, self.elapsed = state["step"], state["elapsed"]
        if self.ctx.main:
            print(f"resumed '{self.out}' at step {self.step}", file=sys.stderr)

    # ------------------------------------------------------------------ one step
    def batch(self, rng: np.random.Generator):
        c = self.config
        lo = max(1, int(c.min_seconds * self.latent_rate))
        hi = self.crop_frames
        frames = int(rng.integers(lo, hi + 1))
        z = np.zeros((c.batch_size, self.cache.channels, frames), np.float32)
        amask = np.zeros((c.batch_size, frames), bool)
        rows = []
        for i in range(c.batch_size):
            clip = self.clips[int(rng.integers(len(self.clips)))]
            lat = self.cache.clip_latent(clip)
            n = min(frames, lat.shape[1])
            start = int(rng.integers(0, lat.shape[1] - n + 1))
            z[i, :, :n] = lat[:, start:start + n]
            amask[i, :n] = True
            rows.append(self.caption_index[clip["caption"]])
        device = self.ctx.device
        z = self.model.normalise(torch.from_numpy(z).to(device)) * torch.from_numpy(amask).to(device)[:, None]
        return (z, self.text_states[rows].to(device), self.text_mask[rows].to(device),
                torch.from_numpy(amask).to(device))

    def train_one(self) -> float:
        c = self.config
        rng = np.random.default_rng([c.seed, self.step, self.ctx.rank])
        z, states, tmask, amask = self.batch(rng)
        g = torch.Generator(device=self.ctx.device).manual_seed(
            c.seed * 1_000_003 + self.step * 1009 + self.ctx.rank)
        for group in self.opt.param_groups:
            group["lr"] = c.lr * min(1.0, (self.step + 1) / max(1, c.warmup_steps))
        loss = flow_loss(self.net, z, states, tmask, amask, c.text_dropout, generator=g)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.opt.step()
        self.ema.update(self.model, self.step)
        self.step += 1
        return float(loss.detach())

    def fit(self, until: Optional[int] = None) -> Path:
        c = self.config
        until = min(until or c.steps, c.steps)
        self.out.mkdir(parents=True, exist_ok=True)
        log = open(self.out / "log.jsonl", "a") if self.ctx.main else None
        start, recent = time.monotonic() - self.elapsed, []
        try:
            while self.step < until:
                if c.minutes is not None and self.ctx.any(
                        time.monotonic() - start > 60 * c.minutes):
                    break
                recent.append(self.train_one())
                self.elapsed = time.monotonic() - start
                if self.ctx.main and (self.step % c.log_every == 0 or self.step == until):
                    row = {"step": self.step, "loss": float(np.mean(recent)),
                           "seconds": round(self.elapsed, 1)}
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    print(f"step {self.step}/{c.steps}  loss {row['loss']:.4f}  "
                          f"{row['seconds']:.0f} s", file=sys.stderr)
                    recent = []
                if self.step % c.checkpoint_steps == 0:
                    self.save_checkpoint()
            self.save_checkpoint()
            return self.export()
        finally:
            if log is not None:
                log.close()

    def export(self) -> Path:
        target = self.out / "generator"
        if self.ctx.main:
            save_generator(self.ema.model, target, vae=self.config.vae,
                           vae_sha256=self.cache.meta["vae_sha256"],
                           facts={"steps": self.step, "clips": len(self.clips),
                                  "corpus": self.config.corpus})
        return target


def run_train_gen(args) -> Path:
    config = apply_overrides(GenTrainConfig.load(args.config), args.set)
    trainer = GenTrainer(config, resume=args.resume)
    try:
        path = trainer.fit()
    finally:
        teardown(trainer.ctx)
    print(f"generator written to {path}")
    return path
