"""Periodic evaluation during training: metrics on fixed validation clips, audio samples and a
PNG of the per-channel KL profile (the figure that tells where structure ends)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from star_plugin.analysis import analyse, head_errors
from star_plugin.atomic import atomic_path
from star_plugin.bench.report import even_subset
from star_plugin.audio import write_audio
from star_plugin.metrics import (fine_structure_correlation, hop_buzz, level_error_db,
                                 mel_distance, pitch_error_cents, si_sdr, stft_distance)
from star_plugin.star_loss import kl_nats_per_frame, kl_to_fitted_gaussian, rate_bits_per_second

from .dataset import ClipPool


def plot_kl_profile(kl: np.ndarray, beta: np.ndarray, structure: int, title: str, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    channels = np.arange(len(kl))
    ax.bar(channels, np.maximum(kl, 1e-4), color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("latent channel")
    ax.set_ylabel("KL (nats / frame)")
    ax.axvline(structure - 0.5, color="black", linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=9)
    twin = ax.twinx()
    twin.plot(channels, beta, color="tab:red", linewidth=1.5)
    twin.set_ylabel("beta_c", color="tab:red")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


class Evaluator:
    """Scores a model on ``clips`` validation clips evenly spaced over the split sorted by id
    (so every source is in: the first clips by id were all drums until 2026-12-06, step 1394
    of default-v3), their first ``seconds``."""

    def __init__(self, pool: ClipPool, clips: int, seconds: float, audio_samples: int, out):
        samples = int(seconds * pool.sample_rate)
        items = [SimpleNamespace(id=str(e["id"]), index=i) for i, e in enumerate(pool.entries)]
        chosen = [item.index for item in even_subset(items, clips)]
        self.ids = [pool.entries[i]["id"] for i in chosen]
        self.audio = torch.from_numpy(np.stack([pool.crop(i, samples) for i in chosen]))[:, None]
        self.sample_rate = pool.sample_rate
        self.audio_samples = audio_samples
        self.out = Path(out)

    @staticmethod
    def _target_errors(model, x, features) -> dict:
        """A peak-locked head's per-target errors (dB, cents) for its input ``features``, with
        its own f0, as a listener hears it: the figures the calibration
        (benchmarks/calibrate_v3.py) gives limits for."""
        head = model.decoder.layers[-1].inner
        if not hasattr(head, "magnitude"):
            return {}
        cfg = model.config
        rows = features.reshape(x.shape[0] * x.shape[1], -1, features.shape[-1])
        target = analyse(x, cfg.sample_rate, cfg.n_fft, cfg.stft_hop, head.harmonics,
                         head.drawable_hz, frames=rows.shape[-1])
        return {k: float(v) for k, v in head_errors(head, rows, target).items()}

    @torch.no_grad()
    def run(self, model, regularizer, step: int) -> dict:
        model.eval()
        device = next(model.parameters()).device
        x = self.audio.to(device)
        recon, latent, features = model.forward_with_head(x, sample=False)
        target_errors = self._target_errors(model, x, features)
        kl_t = kl_nats_per_frame(latent.mean, latent.logsigma)
        kl = kl_t.cpu().numpy()
        recon_np, x_np = recon.cpu().numpy(), self.audio.numpy()
        scores = [si_sdr(r, t) for r, t in zip(recon_np, x_np)]
        sr, rates = self.sample_rate, model.config.hop_rates
        fsc = [fine_structure_correlation(r, t, sr) for r, t in zip(recon_np, x_np)]
        level = [level_error_db(r, t) for r, t in zip(recon_np, x_np)]
        cents = [pitch_error_cents(r, t, sr) for r, t in zip(recon_np, x_np)]
        buzz = [hop_buzz(r, sr, rates) / hop_buzz(t, sr, rates) for r, t in zip(recon_np, x_np)]
        result = {
            "step": step,
            "stft_distance": float(stft_distance(recon, x)),
            "mel_distance": float(mel_distance(recon, x, self.sample_rate)),
            "si_sdr": float(np.nanmean(scores)) if not np.all(np.isnan(scores)) else float("nan"),
            "fsc": float(np.nanmean(fsc)) if not np.all(np.isnan(fsc)) else float("nan"),
            "level_error_db": float(np.nanmean(level)) if not np.all(np.isnan(level)) else float("nan"),
            "f0_cents": float(np.nanmean(cents)) if not np.all(np.isnan(cents)) else float("nan"),
            "buzz_ratio": float(np.nanmedian(buzz)) if not np.all(np.isnan(buzz)) else float("nan"),
            "kl_nats_per_frame": float(kl.sum()),
            "rate_bits_per_second": rate_bits_per_second(kl_t, model.latent_rate),
            "fitted_rate_bits_per_second": rate_bits_per_second(
                kl_to_fitted_gaussian(latent.mean, latent.logsigma), model.latent_rate),
            "active_channels": int((kl > 0.1).sum()),
            "kl_share_first_8": float(kl[:8].sum() / max(kl.sum(), 1e-12)),
            "kl_per_channel": [round(float(v), 5) for v in kl],
            **target_errors,
        }
        folder = self.out / "eval"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(min(self.audio_samples, len(self.ids))):
            reference = folder / "reference" / f"{self.ids[i]}.wav"
            if not reference.exists():
                reference.parent.mkdir(exist_ok=True)
                write_audio(reference, x_np[i], self.sample_rate)
            target = folder / f"step-{step:07d}" / f"{self.ids[i]}.recon.wav"
            target.parent.mkdir(exist_ok=True)
            write_audio(target, recon_np[i], self.sample_rate)
        beta = regularizer.beta.cpu().numpy()
        title = (f"step {step}: {result['rate_bits_per_second']:.0f} bit/s, "
                 f"mel {result['mel_distance']:.3f}, FSC {result['fsc']:.2f}, "
                 f"level {result['level_error_db']:+.1f} dB")
        plot_kl_profile(kl, beta, model.config.structure_channels, title,
                        folder / f"kl-profile-step-{step:07d}.png")
        with open(self.out / "eval.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        return result
