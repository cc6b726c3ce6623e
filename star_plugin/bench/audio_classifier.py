"""The project's own audio classifier: the evaluator of ``star bench gen``.

It is trained here, on the corpus's own labels (``source``: instrument / drums / speech /
texture / sample, and the finer ``family``), on the real audio of the train split. It is a
self-trained evaluator: its accuracies and Fréchet distances compare this project's models
with each other and are not comparable with published FAD / CLAP figures.

Input: mono audio at any rate -> 16 kHz -> log-mel (64 bands, 1024-point window, hop 256)
-> four conv blocks -> mean+max pooling over time and frequency -> a 128-d embedding (used for
the Fréchet distance) -> one linear head per label.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_path
from ..audio import convert_channels, resample
from ..errors import StarError
from ..metrics import mel_filterbank

RATE = 16000
N_FFT, HOP, N_MELS = 1024, 256, 64
LABELS = ("source", "family")
WEIGHTS, CONFIG = "model.safetensors", "config.json"


class EvaluatorError(StarError):
    """A missing or unusable evaluator directory."""


@dataclass
class ClassifierConfig:
    classes: Dict[str, List[str]] = field(default_factory=dict)  # label -> class names
    channels: tuple = (32, 64, 128, 128)
    embedding: int = 128


def log_mel(audio: np.ndarray, rate: int) -> torch.Tensor:
    """(channels, samples) at ``rate`` -> (1, N_MELS, frames) float32 log-mel of the mono mix."""
    mono = convert_channels(np.asarray(audio, np.float32), 1)
    if rate != RATE:
        mono = resample(mono, rate, RATE)
    x = torch.from_numpy(np.ascontiguousarray(mono[0]))
    if x.numel() < N_FFT:
        x = F.pad(x, (0, N_FFT - x.numel()))
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True).abs()
    mel = torch.from_numpy(mel_filterbank(N_FFT, N_MELS, RATE)) @ spec
    return torch.log(mel.clamp(min=1e-5))[None]


class AudioClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers, width = [], 1
        for out in config.channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                       nn.MaxPool2d(2)]
            width = out
        self.features = nn.Sequential(*layers)
        self.embed = nn.Linear(2 * width, config.embedding)
        self.heads = nn.ModuleDict({name: nn.Linear(config.embedding, len(classes))
                                    for name, classes in config.classes.items()})
        # log-mel statistics of the training data (standardised input)
        self.register_buffer("mel_mean", torch.zeros(()))
        self.register_buffer("mel_std", torch.ones(()))

    def embedding(self, mel: torch.Tensor) -> torch.Tensor:
        """(b, 1, N_MELS, frames) -> (b, embedding)."""
        h = self.features((mel - self.mel_mean) / self.mel_std)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return F.relu(self.embed(pooled))

    def forward(self, mel: torch.Tensor) -> Dict[str, torch.Tensor]:
        e = self.embedding(mel)
        return {name: head(e) for name, head in self.heads.items()}

    @torch.no_grad()
    def analyse(self, clips: Sequence[np.ndarray], rate: int) -> dict:
        """Audio clips (channels, samples) -> {"embedding": (n, E), label: [predicted names]}."""
        self.eval()
        embeddings, predicted = [], {name: [] for name in self.heads}
        for audio in clips:
            mel = log_mel(audio, rate)[None]
            e = self.embedding(mel)
            embeddings.append(e[0].numpy())
            for name, head in self.heads.items():
                predicted[name].append(self.config.classes[name][int(head(e).argmax())])
        return {"embedding": np.stack(embeddings).astype(np.float64), **predicted}


# ----------------------------------------------------------------------------- training

def train_classifier(mels: List[torch.Tensor], labels: List[dict], epochs: int = 30,
                     crop_frames: int = 126, batch_size: int = 32, lr: float = 2e-3,
                     seed: int = 0, log=None) -> AudioClassifier:
    """Fit on log-mels (1, N_MELS, frames) with their label dicts. Random crops of about 2 s,
    random gain (a shift of the log-mel) and frequency masking make it judge the kind of sound
    rather than a clip's exact level or length."""
    classes = {name: sorted({str(row[name]) for row in labels if row.get(name) is not None})
               for name in LABELS}
    model = AudioClassifier(ClassifierConfig(classes=classes))
    stacked = torch.cat([m.flatten() for m in mels])
    model.mel_mean.fill_(float(stacked.mean()))
    model.mel_std.fill_(float(stacked.std()))
    targets = {name: torch.tensor([classes[name].index(str(row[name])) if row.get(name) is not None
                                   else -100 for row in labels]) for name in LABELS}
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3)
    steps = epochs * max(1, len(mels) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(mels), (batch_size,), generator=g)
        batch = torch.stack([_random_crop(mels[int(i)], crop_frames, g) for i in idx])
        batch = batch + (torch.rand(batch_size, 1, 1, 1, generator=g) - 0.5) * 2.0  # ±1 nat
        start = torch.randint(N_MELS - 8, (1,), generator=g).item()
        batch[:, :, start:start + int(torch.randint(9, (1,), generator=g))] = float(model.mel_mean)
        out = model(batch)
        loss = sum(F.cross_entropy(out[name], targets[name][idx], ignore_index=-100)
                   for name in LABELS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log is not None and (step + 1) % 50 == 0:
            log(f"evaluator step {step + 1}/{steps}  loss {loss.item():.3f}")
    return model.eval()


def _random_crop(mel: torch.Tensor, frames: int, g: torch.Generator) -> torch.Tensor:
    n = mel.shape[-1]
    if n <= frames:
        return F.pad(mel, (0, frames - n), value=float(mel.min()))
    start = int(torch.randint(n - frames + 1, (1,), generator=g))
    return mel[..., start:start + frames]


# ----------------------------------------------------------------------------- files

def save_classifier(model: AudioClassifier, directory, facts: Optional[dict] = None) -> Path:
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {**asdict(model.config), "facts": facts or {}}
    with atomic_path(directory / WEIGHTS) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_path(directory / CONFIG) as tmp:
        Path(tmp).write_text(json.dumps(config, indent=2))
    return directory


def load_classifier(directory) -> AudioClassifier:
    from safetensors.torch import load_file

    directory = Path(directory)
    if not (directory / CONFIG).is_file() or not (directory / WEIGHTS).is_file():
        raise EvaluatorError(f"'{directory}' is not an evaluator directory (needs {CONFIG} and "
                             f"{WEIGHTS}); train one with 'star bench gen --train-evaluator'")
    try:
        raw = json.loads((directory / CONFIG).read_text())
        config = ClassifierConfig(classes=raw["classes"], channels=tuple(raw["channels"]),
                                  embedding=int(raw["embedding"]))
        model = AudioClassifier(config)
        model.load_state_dict(load_file(str(directory / WEIGHTS)))
    except Exception as exc:  # corrupt JSON, truncated weights, shape mismatch
        raise EvaluatorError(f"evaluator '{directory}' cannot be loaded: "
                             f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two embedding sets (n, d):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). The trace of the root is taken as
    the sum of sqrt(eigenvalues) of the symmetric S_a^(1/2) S_b S_a^(1/2) (same spectrum)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 embeddings per set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    trace_root = np.sqrt(np.clip(inner, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * trace_root)
