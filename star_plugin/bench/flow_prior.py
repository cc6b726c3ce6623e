"""A small rectified-flow prior over latent crops: how easy is a latent to model?

Protocol (docs/METRICS.md): crops of ``frames`` latent frames, ``z1 = mean + sigma * eps``
(posterior samples, the latents a decoder is trained on), standardised per channel with the
train split's statistics (exact moments of the posterior mixture over all train frames). A
time-conditioned 1-D residual CNN ``v(z_t, t)`` learns ``z1 - z0`` from
``z_t = (1 - t) z0 + t z1``, ``z0 ~ N(0, I)``, ``logit(t) ~ N(0, 1)``, by Adam for a fixed
number of steps. The validation loss -- mean squared error per element -- is averaged over a
fixed set of eval crops, each at the same fixed logit-normal quantiles of t with fixed noise,
so it has low variance and is a deterministic function of the seed. The untrained network
outputs 0 (zero-initialised last layer), so step 0 gives the loss of the zero predictor,
``E |z1 - z0|^2`` (about 2 for standardised data).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch
from torch import nn

DEFAULTS = dict(frames=32, batch=32, hidden=64, blocks=4, lr=2e-3, eval_crops=64, eval_t=16)


class _Block(nn.Module):
    def __init__(self, hidden: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.time = nn.Linear(hidden, hidden)
        self.act = nn.SiLU()

    def forward(self, h, temb):
        r = self.conv1(self.act(h)) + self.time(temb)[:, :, None]
        return h + self.conv2(self.act(r))


class FlowNet(nn.Module):
    """``v(z_t, t)``: (batch, C, frames), (batch,) -> (batch, C, frames). Non-causal convs with
    dilations 1, 2, 4, 8, ... (receptive field grows with the number of blocks)."""

    def __init__(self, channels: int, hidden: int = 64, blocks: int = 4):
        super().__init__()
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(1000.0), 16)),
                             persistent=False)
        self.embed = nn.Sequential(nn.Linear(32, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Conv1d(channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(_Block(hidden, 2 ** (i % 4)) for i in range(blocks))
        self.out = nn.Conv1d(hidden, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z, t):
        angles = t[:, None] * self.freqs[None, :]
        temb = self.embed(torch.cat([angles.sin(), angles.cos()], dim=1))
        h = self.inp(z)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(nn.functional.silu(h))


Sequence_ = Tuple[torch.Tensor, torch.Tensor]  # (mean (C, F), logsigma (C, F))


def channel_stats(seqs: Sequence[Sequence_]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of posterior samples pooled over all frames of ``seqs``:
    E[z] = avg(mu), Var[z] = avg(mu^2 + sigma^2) - E[z]^2 (exact, no sampling)."""
    mu = torch.cat([m for m, _ in seqs], dim=1).double()
    sig2 = torch.cat([(2 * s).exp() for _, s in seqs], dim=1).double()
    mean = mu.mean(dim=1)
    var = (mu.pow(2) + sig2).mean(dim=1) - mean.pow(2)
    return mean.float(), var.clamp(min=1e-12).sqrt().float()


def _crops(seqs, frames, count, gen, stats, picks=None):
    """``count`` standardised posterior-sample crops (count, C, frames)."""
    mean_c, std_c = stats
    out = []
    for i in range(count):
        k = picks[i] if picks is not None else int(torch.randint(len(seqs), (1,), generator=gen))
        mu, ls = seqs[k]
        start = int(torch.randint(mu.shape[1] - frames + 1, (1,), generator=gen))
        m, s = mu[:, start:start + frames], ls[:, start:start + frames].exp()
        z = m + s * torch.randn(m.shape, generator=gen)
        out.append((z - mean_c[:, None]) / std_c[:, None])
    return torch.stack(out)


def _loss(net, z1, z0, t):
    tt = t[:, None, None]
    zt = (1 - tt) * z0 + tt * z1
    return (net(zt, t) - (z1 - z0)).pow(2).mean()


def train_flow_prior(train_seqs: Sequence[Sequence_], eval_seqs: Sequence[Sequence_],
                     steps: int = 300, seed: int = 0, frames: int = DEFAULTS["frames"],
                     batch: int = DEFAULTS["batch"], hidden: int = DEFAULTS["hidden"],
                     blocks: int = DEFAULTS["blocks"], lr: float = DEFAULTS["lr"],
                     eval_crops: int = DEFAULTS["eval_crops"], eval_t: int = DEFAULTS["eval_t"],
                     eval_every: Optional[int] = None) -> dict:
    """Train the prior for ``steps`` Adam steps; return the validation loss and a curve.

    ``*_seqs``: posterior (mean, logsigma) per latent sequence, each ``(C, frames_i)``;
    sequences shorter than ``frames`` are not used. Raises ValueError when none is long enough.
    """
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small net: one thread is as fast, immune to busy-CPU stalls,
    try:                      # and makes the result independent of the machine's core count
        return _train(train_seqs, eval_seqs, steps, seed, frames, batch, hidden, blocks, lr,
                      eval_crops, eval_t, eval_every)
    finally:
        torch.set_num_threads(previous_threads)


def _train(train_seqs, eval_seqs, steps, seed, frames, batch, hidden, blocks, lr, eval_crops,
           eval_t, eval_every) -> dict:
    train = [(m.float().cpu(), s.float().cpu()) for m, s in train_seqs if m.shape[1] >= frames]
    evals = [(m.float().cpu(), s.float().cpu()) for m, s in eval_seqs if m.shape[1] >= frames]
    if not train or not evals:
        raise ValueError(f"flow prior needs latent sequences of at least {frames} frames in both "
                         f"splits (train: {len(train)}, eval: {len(evals)} long enough)")
    channels = train[0][0].shape[0]
    stats = channel_stats(train)

    # Fixed validation set: crops, noise and t quantiles all from one seeded generator.
    gen_eval = torch.Generator().manual_seed(seed + 1)
    picks = [i % len(evals) for i in range(eval_crops)]
    z1_eval = _crops(evals, frames, eval_crops, gen_eval, stats, picks)
    t_grid = torch.sigmoid(torch.special.ndtri((torch.arange(eval_t) + 0.5) / eval_t))
    z0_eval = torch.randn((eval_t,) + tuple(z1_eval.shape), generator=gen_eval)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FlowNet(channels, hidden, blocks)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def validate() -> float:
        net.eval()
        with torch.no_grad():
            losses = [float(_loss(net, z1_eval, z0_eval[j],
                                  t_grid[j].expand(z1_eval.shape[0])))
                      for j in range(eval_t)]
        net.train()
        return sum(losses) / len(losses)

    zero_loss = float(sum((z1_eval - z0_eval[j]).pow(2).mean() for j in range(eval_t)) / eval_t)
    curve = [(0, validate())]
    train_losses = []
    eval_every = eval_every or max(1, steps // 5)
    for step in range(1, steps + 1):
        z1 = _crops(train, frames, batch, gen, stats)
        z0 = torch.randn(z1.shape, generator=gen)
        t = torch.sigmoid(torch.randn(batch, generator=gen))
        loss = _loss(net, z1, z0, t)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        train_losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            if curve[-1][0] != step:
                curve.append((step, validate()))
    return {
        "val_loss": curve[-1][1],
        "zero_predictor_loss": zero_loss,
        "relative_val_loss": curve[-1][1] / zero_loss if zero_loss > 0 else float("nan"),
        "curve": curve,
        "final_train_loss": (sum(train_losses[-20:]) / len(train_losses[-20:])
                             if train_losses else None),
        "settings": {"steps": steps, "seed": seed, "frames": frames, "batch": batch,
                     "hidden": hidden, "blocks": blocks, "lr": lr, "eval_crops": eval_crops,
                     "eval_t": eval_t, "channels": channels,
                     "train_sequences": len(train), "eval_sequences": len(evals),
                     "parameters": sum(p.numel() for p in net.parameters())},
    }
