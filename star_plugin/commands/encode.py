"""``star encode``: an audio file -> a latent file (``star_plugin.latent_file``)."""
from __future__ import annotations

from . import args as a
from .common import guard_file_output, load_model, read_for_model


def add_arguments(p) -> None:
    p.add_argument("input", help="audio file (any format, rate and channel count)")
    p.add_argument("-o", "--output", required=True, help="latent file to write (.safetensors)")
    a.add_model(p)


def run(args):
    import torch

    from ..latent_file import save_latent

    guard_file_output(args)
    model = load_model(args.model)
    _, batch, layout = read_for_model(model, args.input)
    with torch.no_grad():
        latent = model.encode(batch)
    out = save_latent(args.output, latent, layout, str(args.model))
    print(f"{args.input} -> {out}: {latent.mean.shape[0]} x {latent.channels} channels x "
          f"{latent.frames} frames ({latent.frame_rate:.2f} Hz)")
