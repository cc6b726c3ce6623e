"""``star train vae --config FILE [--resume]``: the STAR-VAE trainer.

Losses: multi-resolution STFT + multi-scale mel + waveform L1, the STAR (or uniform-beta) KL
with a linear warm-up, and optionally a multi-scale STFT discriminator with feature matching.
Stage 1 of v3 (``loss.render: false``) renders no audio: the head's magnitudes are trained
against the input's analysis at frame rate (``star_plugin.analysis``).
AdamW, gradient clipping, warm-up + cosine learning rate, EMA weights (the shipped ones).

Robustness: a batch is a pure function of (seed, step, rank) and so is the sampling noise, so
``--resume`` continues exactly where the checkpoint left off. Checkpoints are written
atomically (temp file + rename) every ``checkpoint_minutes`` and on SIGTERM/SIGINT, so a
``kill -9`` loses at most the steps since the last one and never leaves a corrupt file.
Runs on CPU, on CUDA with bf16 autocast, and on several processes through ``torchrun``.
"""
from __future__ import annotations

import csv
import json
import math
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from star_plugin.analysis import analyse, head_errors
from star_plugin.architectures import architecture
from star_plugin.atomic import atomic_path
from star_plugin.config import VAEConfig
from star_plugin.errors import ConfigError
from star_plugin.metrics import frame_energy_distance, stft_and_mel_distances
from star_plugin.model_io import save_vae
from star_plugin.phase_loss import head_frequency_distance, phase_derivative_distances
from star_plugin.pitch import comb_amplitude_distance, f0_distance, latent_f0_distance
from star_plugin.star_loss import StarRegularizer, kl_to_fitted_gaussian, rate_bits_per_second
from star_plugin.vae import StarVAE

from .curves import calibrated_limits
from .dataset import ClipPool
from .discriminator import build_discriminator, discriminator_loss, generator_losses
from .distributed import Context, setup, teardown
from .ema import EMA
from .evaluation import Evaluator
from .train_config import TrainConfig, apply_overrides

CHECKPOINT = "checkpoint.pt"
TARGET_ERRORS = ("envelope_db", "fine_db", "loudness_db", "compressed", "partial_db", "head_f0_cents")
LOG_FIELDS = ["step", "seconds", "lr", "loss", "stft", "mel", "l1", "inst_freq", "group_delay",
              "head_inst_freq", "frame_energy", "f0_octaves", "latent_f0_octaves", "comb_amplitude",
              "envelope_db", "fine_db", "loudness_db", "compressed", "partial_db", "head_f0_cents",
              "kl_nats_per_frame", "rate_bps", "fitted_rate_bps", "kl_weight", "kl_scale", "adv",
              "feature_matching", "disc", "grad_norm"]


def model_config(config: TrainConfig) -> VAEConfig:
    spec = dict(config.model)
    arch = spec.pop("arch", "spectral-mamba")
    spec.setdefault("name", config.name)
    try:
        return architecture(arch, **spec)
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"training config 'model': {exc}") from None


class TrainStep(torch.nn.Module):
    """The VAE pass that DDP wraps: tensors in, tensors out. ``render=False`` (stage 1 of v3)
    stops at the head's input: no audio is synthesised in the step."""

    def __init__(self, model: StarVAE, with_head: bool = False, render: bool = True):
        super().__init__()
        self.model, self.with_head, self.render = model, with_head, render

    def forward(self, x):
        if not self.render:
            latent = self.model.encode(x)
            features = self.model.decoder.head_input(latent.sample())
            return None, latent.mean, latent.logsigma, features
        if self.with_head:  # the head's input too, for its direct frequency loss
            recon, latent, features = self.model.forward_with_head(x)
            return recon, latent.mean, latent.logsigma, features
        recon, latent = self.model(x)
        return recon, latent.mean, latent.logsigma, None


def open_log(path: Path):
    """(file, csv writer) appending to the training log. A log written by an older trainer with
    other columns is rewritten under today's header first (its rows kept, new columns empty),
    so a resumed run never appends rows that do not match the header."""
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header, rows = reader.fieldnames, list(reader)
        if header != LOG_FIELDS:
            with atomic_path(path) as tmp:
                with open(tmp, "w", newline="") as f:
                    rewrite = csv.DictWriter(f, LOG_FIELDS, extrasaction="ignore")
                    rewrite.writeheader()
                    rewrite.writerows(rows)
    new_log = not path.exists()
    log = open(path, "a", newline="")
    writer = csv.DictWriter(log, LOG_FIELDS, extrasaction="ignore")
    if new_log:
        writer.writeheader()
    return log, writer


def lr_factor(step: int, optim) -> float:
    warm = min(1.0, (step + 1) / max(1, optim.warmup_steps))
    if optim.schedule == "constant":
        return warm
    progress = min(1.0, step / max(1, optim.steps))
    cosine = optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return warm * cosine


def analysis_loss(errors: dict, cfg) -> torch.Tensor:
    """Stage 1's loss: ``analysis.head_errors`` weighted by the ``loss`` section ``cfg``."""
    return (cfg.magnitude_compressed * errors["compressed"]
            + cfg.magnitude_envelope * errors["envelope_db"] + cfg.magnitude_fine * errors["fine_db"]
            + cfg.loudness * errors["loudness_db"] + cfg.partials * errors["partial_db"]
            + cfg.f0 * errors["head_f0_cents"] / 1200.0)


class Trainer:
    def __init__(self, config: TrainConfig, out, resume: bool = False):
        self.config, self.out = config, Path(out)
        if not config.data.corpus:
            raise ConfigError("training config: data.corpus is required (a 'star data build' "
                              "directory)")
        if config.optim.schedule not in ("cosine", "constant"):
            raise ConfigError(f"optim.schedule must be cosine or constant, got "
                              f"{config.optim.schedule!r}")
        checkpoint = self.out / CHECKPOINT
        if checkpoint.exists() and not resume:
            raise ConfigError(f"'{self.out}' already holds a run ({CHECKPOINT}); pass --resume "
                              f"to continue it or choose another --out")
        self.ctx: Context = setup(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        device = self.ctx.device
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.vae_config = model_config(config)
        self.model = StarVAE(self.vae_config).to(device)
        self.regularizer = StarRegularizer(self.vae_config.latent_channels,
                                           **self.vae_config.star).to(device)
        if config.init_from and not (resume and checkpoint.exists()):
            self._init_from(config.init_from)
        if config.adversarial.enabled and config.adversarial.freeze_encoder:
            self.model.encoder.requires_grad_(False)  # second stage: the latent space is fixed
        o = config.optim
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(trainable, lr=o.lr, betas=tuple(o.betas),
                                     weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: lr_factor(s, o))
        self.ema = EMA(self.model, o.ema_decay)
        adv = config.adversarial
        self.disc = self.disc_opt = None
        if adv.enabled:
            try:
                self.disc = build_discriminator(adv.kind, adv.n_ffts, adv.periods,
                                                adv.channels).to(device)
            except ValueError as exc:
                raise ConfigError(f"training config: {exc}") from None
            self.disc_opt = torch.optim.AdamW(self.disc.parameters(), lr=adv.lr, betas=(0.8, 0.99))
        self.step, self.elapsed = 0, 0.0
        # rate control: log of the beta field's overall scale (a resumed run restores its own)
        if not config.loss.kl_scale_init > 0:
            raise ConfigError(f"loss.kl_scale_init must be > 0, got {config.loss.kl_scale_init!r}")
        self.log_kl_scale = math.log(config.loss.kl_scale_init)
        if resume and checkpoint.exists():
            self._load(checkpoint)
        elif resume and self.ctx.main:
            print(f"--resume: no checkpoint in '{self.out}', starting from scratch", file=sys.stderr)
        wrap = (lambda m: DistributedDataParallel(m)) if self.ctx.distributed else (lambda m: m)
        self.head_loss = bool(config.loss.head_inst_freq) and self.vae_config.head != "istft"
        self.f0_loss = bool(config.loss.f0) and self.vae_config.head == "harmonic"
        if not config.loss.render and self.vae_config.head != "peak-locked":
            raise ConfigError("loss.render: false (analysis targets, no audio in the step) needs "
                              "model.head 'peak-locked'")
        if config.loss.latent_f0 and not 0 <= config.loss.latent_f0_channel < self.vae_config.latent_channels:
            raise ConfigError(f"loss.latent_f0_channel must be in 0..{self.vae_config.latent_channels - 1}, "
                              f"got {config.loss.latent_f0_channel!r}")
        self.train_step = wrap(TrainStep(self.model, with_head=self.head_loss or self.f0_loss,
                                         render=config.loss.render))
        self.disc_step = wrap(self.disc) if self.disc is not None else None
        sr = self.vae_config.sample_rate
        self.pool = ClipPool(config.data.corpus, config.data.split, sr, config.data.max_items,
                             verbose=self.ctx.main)
        self.samples = max(1, int(config.data.clip_seconds * sr) // self.model.hop) * self.model.hop
        self.evaluator = None
        if self.ctx.main:
            try:
                val = ClipPool(config.data.corpus, "validation", sr, verbose=False)
            except Exception as exc:  # no validation split: evaluate on training clips
                warnings.warn(f"no usable validation split ({exc}); evaluating on training clips")
                val = self.pool
            e = config.eval
            self.evaluator = Evaluator(val, e.clips, e.seconds, e.audio_samples, self.out)

    def _init_from(self, model_dir) -> None:
        """Start from a trained model's weights (e.g. stage 1 for the adversarial stage 2); with
        ``init_strict: false`` only the weights whose names and shapes match are taken."""
        from star_plugin.model_io import load_vae
        source = load_vae(model_dir)
        if not self.config.init_strict:
            mine_state = self.model.state_dict()
            taken = {k: v for k, v in source.state_dict().items()
                     if k in mine_state and mine_state[k].shape == v.shape}
            if not taken:
                raise ConfigError(f"init_from '{model_dir}': no weight matches this model")
            self.model.load_state_dict(taken, strict=False)
            if self.ctx.main:
                print(f"init_from '{model_dir}': {len(taken)} of {len(mine_state)} tensors "
                      f"taken", file=sys.stderr)
            return
        mine, theirs = self.vae_config.to_dict(), source.config.to_dict()
        differ = [k for k in mine if k not in ("name", "star", "scan_backend")
                  and mine[k] != theirs.get(k)]
        if differ:
            raise ConfigError(f"init_from '{model_dir}': its architecture differs from the "
                              f"training config's in {', '.join(differ)}")
        self.model.load_state_dict(source.state_dict())

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                 "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "step": self.step, "elapsed": self.elapsed, "config": self.config.to_dict(),
                 "log_kl_scale": self.log_kl_scale}
        if self.disc is not None:
            state["disc"] = self.disc.state_dict()
            state["disc_optimizer"] = self.disc_opt.state_dict()
        return state

    def save_checkpoint(self) -> None:
        if self.ctx.main:
            with atomic_path(self.out / CHECKPOINT) as tmp:
                torch.save(self._state(), tmp)

    def _load(self, path: Path) -> None:
        try:
            state = torch.load(path, map_location=self.ctx.device, weights_only=False)
        except Exception as exc:
            raise ConfigError(f"checkpoint '{path}' cannot be read ({exc}); remove it to start "
                              f"over") from None
        try:
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            if self.disc is not None and "disc" in state:
                self.disc.load_state_dict(state["disc"])
                self.disc_opt.load_state_dict(state["disc_optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise ConfigError(f"checkpoint '{path}' does not match this training config's "
                              f"model: {str(exc).splitlines()[0]}") from None
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.log_kl_scale = float(state.get("log_kl_scale", 0.0))
        if self.ctx.main:
            print(f"resumed '{self.out}' at step {self.step}", file=sys.stderr)

    # ------------------------------------------------------------------ one step
    def _phase_vocoder_part(self, features: torch.Tensor) -> torch.Tensor:
        """The head input's phase-vocoder channels (the harmonic head appends its own)."""
        if self.vae_config.head != "harmonic":
            return features
        b, t, ch = features.shape[0], features.shape[-1], self.vae_config.audio_channels
        pv = 3 * (self.vae_config.n_fft // 2 + 1)
        return features.reshape(b, ch, -1, t)[:, :, :pv].reshape(b, ch * pv, t)

    def _batch(self):
        rng = np.random.default_rng([self.config.seed, self.step, self.ctx.rank])
        x = self.pool.batch(rng, self.config.optim.batch_size, self.samples, self.config.data.gain_db)
        torch.manual_seed(self.config.seed * 1_000_003 + self.step * 1009 + self.ctx.rank)
        return x.to(self.ctx.device)

    def _autocast(self):
        on_cuda = self.ctx.device.type == "cuda" and self.config.amp
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda) if on_cuda \
            else torch.autocast("cpu", enabled=False)

    def _analysis_losses(self, x: torch.Tensor, features: torch.Tensor):
        """Stage 1 (``loss.render: false``): the head's magnitudes against the input's analysis
        (its comb on its own f0: drawn on the input's YIN f0 in training until step 2777, the
        decoder never learned to silence a comb that its pitch code put on noise), the partials
        at the YIN f0, the f0 correction against YIN. -> (loss, log row)."""
        cfg, v = self.config.loss, self.vae_config
        head = self.model.decoder.layers[-1].inner
        rows = features.float().reshape(x.shape[0] * x.shape[1], -1, features.shape[-1])
        target = analyse(x, v.sample_rate, v.n_fft, v.stft_hop, head.harmonics, head.drawable_hz,
                         frames=rows.shape[-1])
        errors = head_errors(head, rows, target, partials_on_analysis_f0=True)
        return analysis_loss(errors, cfg), {k: e.item() for k, e in errors.items()}

    def train_one(self) -> dict:
        cfg, x = self.config, self._batch()
        self.model.train()
        with self._autocast():
            recon, mu, logsigma, features = self.train_step(x)
        if not cfg.loss.render:
            loss, row = self._analysis_losses(x, features)
            return self._finish_step(loss, row, mu, logsigma)
        recon = recon.float()
        sr = self.vae_config.sample_rate
        convergence, log_mag, mel = stft_and_mel_distances(recon, x, sr)
        stft = convergence + log_mag  # the metric, logged as is
        l1 = (recon - x).abs().mean()
        loss = (cfg.loss.stft * (cfg.loss.spectral_convergence * convergence + log_mag)
                + cfg.loss.mel * mel + cfg.loss.l1 * l1)
        row = {"stft": stft.item(), "mel": mel.item(), "l1": l1.item()}
        if cfg.loss.frame_energy:
            energy = frame_energy_distance(recon, x)
            loss = loss + cfg.loss.frame_energy * energy
            row.update(frame_energy=energy.item())
        if cfg.loss.inst_freq or cfg.loss.group_delay:
            inst_freq, group_delay = phase_derivative_distances(recon, x)
            loss = loss + cfg.loss.inst_freq * inst_freq + cfg.loss.group_delay * group_delay
            row.update(inst_freq=inst_freq.item(), group_delay=group_delay.item())
        if self.head_loss:
            head_freq = head_frequency_distance(self._phase_vocoder_part(features.float()), x,
                                                self.vae_config.n_fft, self.vae_config.stft_hop)
            loss = loss + cfg.loss.head_inst_freq * head_freq
            row.update(head_inst_freq=head_freq.item())
        if cfg.loss.latent_f0:  # one latent channel is the pitch code (pitch.f0_to_code)
            channel = mu.float()[:, cfg.loss.latent_f0_channel]
            latent_f0 = latent_f0_distance(channel, x[:, :1], sr, self.model.hop)
            loss = loss + cfg.loss.latent_f0 * latent_f0
            row.update(latent_f0_octaves=latent_f0.item())
        if self.f0_loss:
            head = self.model.decoder.layers[-1].inner
            per_channel = features.float().reshape(x.shape[0] * x.shape[1], -1, features.shape[-1])
            f0_error = f0_distance(head.f0(per_channel), x, sr, self.vae_config.n_fft,
                                   self.vae_config.stft_hop)
            loss = loss + cfg.loss.f0 * f0_error
            row.update(f0_octaves=f0_error.item())
            if cfg.loss.comb_amplitude:
                frequency, peaks = head.partial_peaks(per_channel)
                comb = comb_amplitude_distance(frequency, peaks, x, sr, self.vae_config.n_fft,
                                               self.vae_config.stft_hop, head.drawable_hz)
                loss = loss + cfg.loss.comb_amplitude * comb
                row.update(comb_amplitude=comb.item())
        return self._finish_step(loss, row, mu, logsigma, x, recon)

    def _finish_step(self, loss, row, mu, logsigma, x=None, recon=None) -> dict:
        """The KL and rate control, the adversarial terms (when rendering), the update."""
        cfg = self.config
        kl_weight = min(1.0, self.step / max(1, cfg.loss.kl_warmup_steps)) * math.exp(self.log_kl_scale)
        kl, kl_stats = self.regularizer(mu.float(), logsigma.float(), weight=kl_weight)
        loss = loss + kl
        rate = rate_bits_per_second(kl_stats["kl_per_channel"], self.model.latent_rate)
        # what the latents really carry: KL against a Gaussian fitted to this batch's latents
        # (the KL to N(0, 1) also counts constant offsets of the cheap structure channels)
        fitted = rate_bits_per_second(kl_to_fitted_gaussian(mu.detach().float(),
                                                            logsigma.detach().float()),
                                      self.model.latent_rate)
        self._control_rate(fitted)
        row.update(kl_nats_per_frame=kl_stats["kl_total"], rate_bps=rate, fitted_rate_bps=fitted,
                   kl_weight=kl_weight, kl_scale=math.exp(self.log_kl_scale))
        adv = cfg.adversarial
        if self.disc is not None and recon is not None and self.step >= adv.start_step:
            with self._autocast():
                outputs = self.disc_step(torch.cat([x, recon.detach()]))
            split = [[(o[:len(x)], [f[:len(x)] for f in fs]) for o, fs in outputs],
                     [(o[len(x):], [f[len(x):] for f in fs]) for o, fs in outputs]]
            d_loss = discriminator_loss(*split)
            self.disc_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.disc.parameters(), cfg.optim.grad_clip)
            self.disc_opt.step()
            # generator terms through the plain module: its stray grads are zeroed next step
            with self._autocast():
                with torch.no_grad():  # real features are targets only
                    real = self.disc(x)
                g_adv, fm = generator_losses(real, self.disc(recon))
            loss = loss + adv.weight * g_adv + adv.feature_matching * fm
            row.update(adv=g_adv.item(), feature_matching=fm.item(), disc=d_loss.item())
        self.opt.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self.nonfinite += 1
            if self.nonfinite > 10:
                raise ConfigError(f"loss is not finite for {self.nonfinite} steps in a row at step "
                                  f"{self.step}; lower optim.lr or check the corpus")
            row.update(loss=float("nan"), grad_norm=float("nan"))
        else:
            self.nonfinite = 0
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
            self.opt.step()
            self.ema.update(self.model, self.step)
            row.update(loss=loss.item(), grad_norm=float(grad_norm))
        self.sched.step()
        self.step += 1
        row.update(step=self.step, lr=self.sched.get_last_lr()[0])
        return row

    def _control_rate(self, rate: float) -> None:
        """Nudge the beta field's scale towards the target fitted rate (a bounded multiplicative step:
        one noisy batch cannot swing it). Every rank sees its own batch; the scale is part of
        the checkpoint, so resume continues it."""
        target = self.config.loss.rate_target_bps
        if not target or self.step < self.config.loss.kl_warmup_steps:
            return
        error = math.log(max(rate, 1.0) / target)
        speed = self.config.loss.rate_control_speed
        self.log_kl_scale += speed * math.tanh(4.0 * error)
        if self.ctx.distributed:  # keep the ranks' scales identical
            value = torch.tensor([self.log_kl_scale], device=self.ctx.device)
            torch.distributed.all_reduce(value)
            self.log_kl_scale = float(value) / torch.distributed.get_world_size()

    # ------------------------------------------------------------------ the loop
    def fit(self, until: int | None = None) -> Path:
        """Train to ``optim.steps`` (or stop early at step ``until``, as an interruption would)."""
        cfg, ctx = self.config, self.ctx
        last = cfg.optim.steps if until is None else min(until, cfg.optim.steps)
        self.nonfinite = 0
        stop = []
        handler = lambda *_: stop.append(True)  # noqa: E731 - finish the step, then save
        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        log = writer = bar = None
        if ctx.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
            log, writer = open_log(self.out / "log.csv")
            from tqdm import tqdm
            bar = tqdm(total=cfg.optim.steps, initial=self.step, desc=cfg.name, file=sys.stderr,
                       mininterval=1.0 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
        tensorboard = self._tensorboard() if ctx.main and cfg.tensorboard else None
        budget = cfg.optim.minutes * 60 if cfg.optim.minutes else float("inf")
        started, last_save = time.time() - self.elapsed, time.time()
        try:
            while self.step < last:
                if ctx.any(bool(stop) or time.time() - started >= budget):
                    break
                row = self.train_one()
                self.elapsed = time.time() - started
                row["seconds"] = round(self.elapsed, 1)
                if ctx.main:
                    bar.update(1)
                    if self.step % cfg.log_every == 0:
                        writer.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v)
                                         for k, v in row.items()})
                        log.flush()
                        shown = ({"mel": f"{row['mel']:.3f}"} if "mel" in row
                                 else {"fine": f"{row['fine_db']:.2f}dB"})
                        bar.set_postfix(**shown, kl=f"{row['kl_nats_per_frame']:.1f}")
                        if tensorboard:
                            for k, v in row.items():
                                tensorboard.add_scalar(f"train/{k}", v, self.step)
                    if cfg.eval.every_steps and self.step % cfg.eval.every_steps == 0:
                        self._evaluate(tensorboard)
                due = (time.time() - last_save > cfg.checkpoint_minutes * 60
                       or (cfg.checkpoint_steps and self.step % cfg.checkpoint_steps == 0))
                if due:
                    self.save_checkpoint()
                    last_save = time.time()
            self.interrupted = bool(stop)
            self.save_checkpoint()
            model_dir = self.export()
            if ctx.main and self.step and (not cfg.eval.every_steps or self.step % cfg.eval.every_steps):
                self._evaluate(tensorboard)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
            teardown(ctx)
        return model_dir

    def _evaluate(self, tensorboard=None) -> None:
        result = self.evaluator.run(self.ema.model, self.regularizer, self.step)
        limits = calibrated_limits()  # the calibration's largest errors that still sound right
        print(f"\neval step {self.step}: mel {result['mel_distance']:.3f} stft "
              f"{result['stft_distance']:.3f} si-sdr {result['si_sdr']:.2f} dB, FSC "
              f"{result['fsc']:.3f}, f0 error {result['f0_cents']:.0f} cents, level "
              f"{result['level_error_db']:+.2f} dB, buzz x"
              f"{result['buzz_ratio']:.2f}, {result['rate_bits_per_second']:.0f} bit/s"
              + "".join(f", {k} {result[k]:.2f}" + (f" (limit {limits[k]:g})" if k in limits else "")
                        for k in TARGET_ERRORS if k in result),
              file=sys.stderr)
        if tensorboard:
            for k in ("mel_distance", "stft_distance", "si_sdr", "fsc", "f0_cents", "level_error_db",
                      "buzz_ratio", "rate_bits_per_second"):
                tensorboard.add_scalar(f"eval/{k}", result[k], self.step)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            warnings.warn("tensorboard is not installed (pip install tensorboard); logging to "
                          "log.csv only")
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def export(self) -> Path:
        """Write the EMA weights as a model directory (``OUT/model``)."""
        model_dir = self.out / "model"
        if self.ctx.main:
            self.ema.model.config.scan_backend = "auto"
            save_vae(self.ema.model, model_dir, {"train_steps": str(self.step),
                                                "train_seconds": f"{self.elapsed:.0f}",
                                                "train_config": self.config.name})
        return model_dir


def run_train_vae(args) -> Path:
    config = TrainConfig.from_file(args.config)
    config = apply_overrides(config, getattr(args, "set", None))
    if getattr(args, "seed", None) is not None:
        config.seed = args.seed
    out = Path(args.out or config.out)
    model_dir = Trainer(config, out, resume=args.resume).fit()
    print(f"model written to {model_dir}")
    return model_dir
