"""STAR-Gen: an LLM-style decoder used as a rectified-flow velocity predictor on STAR latents.

One sequence per example: [text tokens | audio latent frames].

* Text tokens are a frozen sentence encoder's token states, projected to the model width.
  They attend causally to each other, like a language model's prefix.
* Audio frames are the noisy latent ``z_t`` (one token per ``patch`` latent frames) plus a flow-time
  embedding. They attend to all the text and, bidirectionally, to all audio frames, so the
  generation is not autoregressive.
* Blocks are nanoGPT-shaped: RMSNorm -> attention with rotary positions -> residual,
  RMSNorm -> SwiGLU -> residual.

The output is the velocity ``v(z_t, t | text)`` for the audio positions. Batches may mix
durations and prompt lengths: ``audio_mask`` and ``text_mask`` mark the real positions.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


@dataclass
class GenConfig:
    latent_channels: int = 32
    text_dim: int = 384          # the sentence encoder's token width (all-MiniLM-L6-v2)
    width: int = 256
    layers: int = 6
    heads: int = 4
    mlp_ratio: float = 8 / 3     # SwiGLU's hidden size = ratio * width (LLaMA's choice)
    max_frames: int = 1024       # longest latent sequence (rotary tables are built this long)
    patch: int = 1               # latent frames per audio token (2 halves the sequence)
    max_text_tokens: int = 64
    rope_base: float = 10000.0
    version: int = 1

    def validate(self) -> "GenConfig":
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ConfigError(f"width {self.width} must split into {self.heads} heads of an "
                              "even size (rotary positions rotate pairs)")
        for name in ("latent_channels", "text_dim", "width", "layers", "heads", "max_frames",
                     "max_text_tokens", "patch"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"gen config: {name} must be >= 1, got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GenConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"gen config: unknown keys {unknown}")
        return cls(**data).validate()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(length: int, head_dim: int, base: float) -> tuple:
    inv = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv[None]
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x, cos, sin):
    """x (b, heads, L, d): rotate each (even, odd) pair by its position's angle."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


def hybrid_mask(text_mask: torch.Tensor, audio_mask: torch.Tensor) -> torch.Tensor:
    """(b, T) and (b, A) booleans (True = a real token) -> (b, 1, T+A, T+A) boolean attention
    mask (True = may attend). Text: causal over real text. Audio: all real text and all real
    audio (bidirectional). Padded query rows attend to themselves only, so they stay finite."""
    b, t = text_mask.shape
    a = audio_mask.shape[1]
    n = t + a
    keys = torch.cat([text_mask, audio_mask], dim=1)  # (b, n)
    is_text = torch.zeros(n, dtype=torch.bool, device=keys.device)
    is_text[:t] = True
    causal = torch.ones(n, n, dtype=torch.bool, device=keys.device).tril()
    # text queries: causal, text keys only; audio queries: every key
    allowed = torch.where(is_text[:, None], causal & is_text[None, :],
                          torch.ones_like(causal))
    mask = allowed[None] & keys[:, None, :]
    eye = torch.eye(n, dtype=torch.bool, device=keys.device)[None]
    mask = mask | (eye & ~keys[:, :, None])
    return mask[:, None]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.out = nn.Linear(width, width, bias=False)

    def forward(self, x, mask, cos, sin):
        b, n, w = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, w))


class SwiGLU(nn.Module):
    def __init__(self, width: int, ratio: float):
        super().__init__()
        hidden = int(round(width * ratio / 8)) * 8
        self.gate_up = nn.Linear(width, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: GenConfig):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(cfg.width), RMSNorm(cfg.width)
        self.attn = Attention(cfg.width, cfg.heads)
        self.mlp = SwiGLU(cfg.width, cfg.mlp_ratio)

    def forward(self, x, mask, cos, sin):
        x = x + self.attn(self.norm1(x), mask, cos, sin)
        return x + self.mlp(self.norm2(x))


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Flow time in [0, 1] (b,) -> sinusoidal features (b, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None].float() * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class StarGen(nn.Module):
    """Velocity predictor v(z_t, t | text) over (b, C, frames) STAR latents."""

    def __init__(self, config: GenConfig):
        super().__init__()
        self.config = cfg = config.validate()
        self.text_in = nn.Sequential(nn.LayerNorm(cfg.text_dim), nn.Linear(cfg.text_dim, cfg.width))
        self.audio_in = nn.Linear(cfg.latent_channels * cfg.patch, cfg.width)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.width, cfg.width), nn.SiLU(),
                                      nn.Linear(cfg.width, cfg.width))
        # Stands in for the prompt when it is dropped (classifier-free guidance): one token.
        self.null_text = nn.Parameter(torch.zeros(1, 1, cfg.width))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.latent_channels * cfg.patch)
        nn.init.zeros_(self.head.weight)  # start by predicting 0 velocity
        nn.init.zeros_(self.head.bias)
        # Per-channel statistics of the training latents: the flow runs on standardised
        # latents (STAR's structure channels are far wider than its texture channels).
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))
        cos, sin = rotary_tables(cfg.max_text_tokens + 1 + -(-cfg.max_frames // cfg.patch),
                                 cfg.width // cfg.heads, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean[:, None]) / self.latent_std[:, None]

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latent_std[:, None] + self.latent_mean[:, None]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def text_tokens(self, text_states: Optional[torch.Tensor], text_mask: Optional[torch.Tensor],
                    batch: int, drop: Optional[torch.Tensor] = None):
        """Project the encoder's token states; prepend the null token. ``drop`` (b,) bool
        removes the prompt for those examples (only the null token stays)."""
        device = self.null_text.device
        null = self.null_text.expand(batch, 1, -1)
        if text_states is None:
            return null, torch.ones(batch, 1, dtype=torch.bool, device=device)
        tokens = torch.cat([null, self.text_in(text_states)], dim=1)
        mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=device),
                          text_mask.bool()], dim=1)
        if drop is not None:
            mask = mask.clone()
            mask[:, 1:] &= ~drop[:, None]
        return tokens, mask

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, text_states=None, text_mask=None,
                audio_mask: Optional[torch.Tensor] = None, drop_text=None) -> torch.Tensor:
        """z_t (b, C, frames), t (b,), text_states (b, T, text_dim), text_mask (b, T),
        audio_mask (b, frames) -> velocity (b, C, frames)."""
        b, c, frames = z_t.shape
        cfg = self.config
        if c != cfg.latent_channels:
            raise ValueError(f"latent must have {cfg.latent_channels} channels, got {c}")
        if frames > cfg.max_frames:
            raise ValueError(f"{frames} latent frames is more than this generator's "
                             f"max_frames {cfg.max_frames}")
        text, tmask = self.text_tokens(text_states, text_mask, b, drop_text)
        if audio_mask is None:
            audio_mask = torch.ones(b, frames, dtype=torch.bool, device=z_t.device)
        p = cfg.patch
        z_t = z_t * audio_mask[:, None].to(z_t.dtype)  # padded frames read as 0, as at sampling
        pad = -frames % p
        tokens = -(-frames // p)
        # (b, C, frames) -> (b, tokens, p*C): p consecutive frames per token, zero padded
        audio = F.pad(z_t, (0, pad)).view(b, c, tokens, p).permute(0, 2, 3, 1).reshape(b, tokens, p * c)
        token_mask = F.pad(audio_mask.bool(), (0, pad)).view(b, tokens, p).any(-1)
        audio = self.audio_in(audio)
        audio = audio + self.time_mlp(time_embedding(t, cfg.width).to(audio.dtype))[:, None]
        x = torch.cat([text, audio], dim=1)
        mask = hybrid_mask(tmask, token_mask)
        # Audio positions start at a fixed offset, so padding the prompts of a batch never
        # moves them (text-audio distances depend only on real tokens).
        positions = torch.cat([torch.arange(text.shape[1], device=x.device),
                               cfg.max_text_tokens + 1 + torch.arange(tokens, device=x.device)])
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        for block in self.blocks:
            x = block(x, mask, cos, sin)
        v = self.head(self.norm(x[:, text.shape[1]:]))  # (b, tokens, p*C)
        v = v.view(b, tokens, p, c).permute(0, 3, 1, 2).reshape(b, c, tokens * p)
        return v[:, :, :frames]
