"""Export the EMA weights of a run's last checkpoint as a model directory, while the run goes
on (the trainer itself exports only when it stops):

    python -m star_plugin.training.snapshot runs/default-v2 --out /tmp/v2-now
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from star_plugin.errors import ConfigError
from star_plugin.model_io import save_vae
from star_plugin.vae import StarVAE

from .train_config import TrainConfig
from .trainer import CHECKPOINT, model_config


def snapshot(run, out) -> Path:
    checkpoint = Path(run) / CHECKPOINT
    if not checkpoint.is_file():
        raise ConfigError(f"'{run}' holds no {CHECKPOINT}")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    config = TrainConfig.from_dict(state["config"], str(checkpoint))
    model = StarVAE(model_config(config))
    model.load_state_dict(state["ema"])
    model.config.scan_backend = "auto"
    save_vae(model, out, {"train_steps": str(state["step"]),
                          "train_seconds": f"{state['elapsed']:.0f}",
                          "train_config": config.name})
    return Path(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a training run folder (holds checkpoint.pt)")
    parser.add_argument("--out", required=True, help="model directory to write")
    args = parser.parse_args(argv)
    print(snapshot(args.run, args.out))


if __name__ == "__main__":
    main()
