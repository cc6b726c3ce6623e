"""Training configuration for ``star train vae --config FILE``: JSON or TOML, every key optional
except the corpus. Unknown keys are errors (a typo must not silently train something else).

    {"name": "default", "out": "runs/default",
     "model": {"arch": "spectral-mamba", "hidden": 192, "star": {"curve": "star", ...}},
     "data": {"corpus": "data/corpus", "clip_seconds": 1.0},
     "optim": {"batch_size": 8, "steps": 20000, "lr": 5e-4},
     "loss": {"stft": 1.0, "mel": 1.0, "kl_warmup_steps": 1000},
     "adversarial": {"enabled": false},
     "eval": {"every_steps": 500}}

``model`` holds an architecture name from ``star_plugin.architectures`` plus any ``VAEConfig``
field to override (``star`` is the regulariser: curve, beta_min, beta_max, gamma, ...).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from star_plugin.errors import ConfigError


@dataclass
class DataConfig:
    corpus: str = ""
    split: str = "train"
    clip_seconds: float = 1.0
    gain_db: tuple = (-12.0, 3.0)   # random gain per training crop (level invariance)
    max_items: Optional[int] = None


@dataclass
class OptimConfig:
    batch_size: int = 8
    steps: int = 10000
    minutes: Optional[float] = None   # wall-clock budget (counts across resumes)
    lr: float = 5e-4
    betas: tuple = (0.8, 0.99)
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    schedule: str = "cosine"          # cosine | constant
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999


@dataclass
class LossConfig:
    stft: float = 1.0      # multi-resolution STFT distance
    # weight of its spectral-convergence half: ||S - S_e|| / ||S|| shrinks the output level
    # whenever the fine structure does not match (least squares scales an uncorrelated estimate
    # down); v2 configs train on the log-magnitude half only (docs/TRAINING.md)
    spectral_convergence: float = 1.0
    mel: float = 1.0       # multi-scale mel distance
    l1: float = 0.1        # waveform L1 (v2 configs: 0, see docs/TRAINING.md)
    frame_energy: float = 0.0  # log frame energies (metrics.frame_energy_distance): the level
    inst_freq: float = 0.0     # phase-derivative distances (star_plugin.phase_loss)
    group_delay: float = 0.0
    # the phase-vocoder head's frequency corrections against the target's own phase advance
    # (phase_loss.head_frequency_distance): local, where the output-side IF loss is not
    head_inst_freq: float = 0.0
    # the harmonic head's f0 against YIN on the target (pitch.f0_distance, octaves): makes
    # the encoder carry pitch through the latent
    f0: float = 0.0
    # latent channel ``latent_f0_channel``'s mean against the YIN f0 as a pitch code (octaves
    # from A3, pitch.latent_f0_distance): a short gradient path that makes the encoder carry
    # pitch, and a structure channel a sound designer can read (and shift) as pitch
    latent_f0: float = 0.0
    latent_f0_channel: int = 0
    # the harmonic head's partial amplitudes against the input's own spectrum at h x its f0
    # (pitch.comb_amplitude_distance, log): needs loss.f0 > 0 (the same head pass)
    comb_amplitude: float = 0.0
    # stage 1 of v3 (training/trainer.py, star_plugin.analysis): ``render: false`` renders no
    # audio in the step; the head's magnitudes are trained against the input's analysis
    # directly: its 300 Hz envelope, its fine structure (loud bins), the loudness per frame
    # (all L1 in dB), the cube-root magnitudes (relative L1: the peaks count, spikes cost) and
    # the comb's partials (dB, voiced frames, drawable partials; the comb drawn on the
    # analysis f0)
    render: bool = True
    magnitude_compressed: float = 0.0
    magnitude_envelope: float = 0.0
    magnitude_fine: float = 0.0
    loudness: float = 0.0
    partials: float = 0.0
    kl_warmup_steps: int = 1000
    # rate control: scale the whole beta field (its shape kept) so that the fitted rate (KL
    # against a Gaussian fitted to the batch's latents) tracks this many bits/s; None keeps
    # the betas as configured
    rate_target_bps: Optional[float] = None
    rate_control_speed: float = 0.003    # change of log(scale) per step, at most
    # the scale to start from: a run that continues another (init_from) starts where the rate
    # controller of that run had brought it, not at 1
    kl_scale_init: float = 1.0


@dataclass
class AdversarialConfig:
    enabled: bool = False
    kind: str = "stft"                # stft (multi-scale STFT, GPU) | mpd (multi-period, CPU)
    periods: tuple = (2, 3, 5, 7, 11)
    freeze_encoder: bool = False      # second stage (RAVE): only the decoder keeps learning
    start_step: int = 0
    weight: float = 1.0
    feature_matching: float = 2.0
    lr: float = 2e-4
    n_ffts: tuple = (2048, 1024, 512)
    channels: int = 32


@dataclass
class EvalConfig:
    every_steps: int = 1000
    clips: int = 8
    seconds: float = 4.0
    audio_samples: int = 2


@dataclass
class TrainConfig:
    name: str = "star-vae"
    out: str = "runs/star-vae"
    model: dict = field(default_factory=lambda: {"arch": "spectral-mamba"})
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    init_from: Optional[str] = None          # a model directory to start from (second stage)
    init_strict: bool = True                 # false: take only the weights whose names and
                                             # shapes match (e.g. a v1 encoder for a v2 model)
    checkpoint_minutes: float = 3.0
    checkpoint_steps: Optional[int] = None   # also checkpoint every N steps (tests, short runs)
    log_every: int = 10
    tensorboard: bool = False
    seed: int = 0
    threads: Optional[int] = None
    device: str = "auto"                     # auto | cpu | cuda
    amp: bool = True                         # bf16 autocast on CUDA; ignored on CPU

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "TrainConfig":
        return build_dataclass(cls, raw, source)

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        # a relative corpus path is relative to the cwd
        return cls.from_dict(read_config_file(path), str(path))


def read_config_file(path, what: str = "training config") -> dict:
    """A JSON or TOML config file -> its raw table, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} '{path}' does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib
            return tomllib.loads(text)
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{what} '{path}' cannot be parsed: {exc}") from None


def build_dataclass(cls, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table/object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(fields)}")
    values = {}
    for name, value in raw.items():
        default = getattr(cls(), name) if name not in ("model",) else None
        if dataclasses.is_dataclass(default):
            values[name] = build_dataclass(type(default), value, f"{where}: {name}")
        elif isinstance(default, tuple):
            values[name] = tuple(value)
        else:
            values[name] = value
    return cls(**values)


def apply_overrides(config, assignments: list[str]):
    """``section.key=value`` assignments (value parsed as JSON, else kept as a string) on any
    config dataclass with ``from_dict``."""
    raw = dataclasses.asdict(config)
    for item in assignments or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        key, value = item.split("=", 1)
        try:
            value = json.loads(value)
        except ValueError:
            pass
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = node[part]
        node[parts[-1]] = value
    return type(config).from_dict(raw, "--set")
