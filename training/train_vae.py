"""A compact STAR-VAE trainer (procedural audio): checkpoints atomically and resumes.

    python -m star_plugin.training.train_vae --arch spectral-mamba --out runs/x --minutes 30

The full trainer (captioned corpus, adversarial losses, DDP) grows from this one.
"""
from __future__ import annotations

import argparse
import csv
import json
import signal
import time
from pathlib import Path

import numpy as np
import torch

from star_plugin.architectures import architecture
from star_plugin.atomic import atomic_path
from star_plugin.model_io import save_vae
from star_plugin.star_loss import StarRegularizer
from star_plugin.vae import StarVAE

from .losses import multi_resolution_stft_loss
from .synth import synth_clip


def make_pool(count: int, seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    return np.stack([synth_clip(seed + i, seconds, sample_rate)[0] for i in range(count)])


def atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(args) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    overrides = json.loads(args.overrides) if args.overrides else {}
    config = architecture(args.arch, name=args.name or args.arch, **overrides)
    model = StarVAE(config)
    reg = StarRegularizer(config.latent_channels, **config.star)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=1e-4)
    step, ckpt = 0, out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        print(f"resumed from step {step}")
    pool_size = 0 if args.export_only else args.pool
    pool = torch.from_numpy(make_pool(pool_size, args.clip_seconds * 2, config.sample_rate, 1000)) \
        if pool_size else None
    crop = int(args.clip_seconds * config.sample_rate) // config.hop * config.hop
    rng = np.random.default_rng(args.seed + step)
    log = open(out / "log.csv", "a", newline="")
    writer = csv.writer(log)
    deadline = time.time() + args.minutes * 60
    if args.export_only:
        deadline = 0.0
    last_ckpt = time.time()
    stop = []  # SIGTERM: finish the step, checkpoint, write the model, exit
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    model.train()
    while time.time() < deadline and step < args.steps and not stop:
        idx = rng.integers(0, pool.shape[0], args.batch)
        offs = rng.integers(0, pool.shape[-1] - crop, args.batch)
        x = torch.stack([pool[i, :, o:o + crop] for i, o in zip(idx, offs)])
        x = x * torch.from_numpy(rng.uniform(0.3, 1.2, (args.batch, 1, 1)).astype(np.float32))
        recon, latent = model(x)
        rec = multi_resolution_stft_loss(recon, x) + 0.1 * (recon - x).abs().mean()
        warm = min(1.0, step / max(1, args.kl_warmup))
        kl, stats = reg(latent.mean, latent.logsigma, weight=warm)
        loss = rec + kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 10 == 0:
            writer.writerow([step, f"{rec.item():.4f}", f"{stats['kl_total']:.3f}"])
            log.flush()
            print(f"step {step} recon {rec.item():.4f} kl/frame {stats['kl_total']:.2f} nats")
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "step": step}, ckpt)
            last_ckpt = time.time()
    atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, ckpt)
    model.eval()
    model.config.scan_backend = "auto"
    save_vae(model, out / "model", {"train_steps": str(step)})
    return out / "model"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--arch", default="spectral-mamba")
    p.add_argument("--name", default=None)
    p.add_argument("--overrides", default=None, help="JSON dict of VAEConfig fields")
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--steps", type=int, default=10**9)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--clip-seconds", type=float, default=1.0)
    p.add_argument("--pool", type=int, default=300)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--kl-warmup", type=int, default=500)
    p.add_argument("--checkpoint-minutes", type=float, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export-only", action="store_true",
                   help="write the model directory from the last checkpoint and exit")
    print("model written to", train(p.parse_args(argv)))


if __name__ == "__main__":
    main()
