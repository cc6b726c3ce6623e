"""The STAR-vs-uniform study: every study config x every seed, one after another, resumable.

    python -m star_plugin.training.study --corpus data/corpus --out runs/study --seeds 0,1

Each run gets the same step budget, batch and latent rate; a finished run (its checkpoint at
the final step) is skipped, an interrupted one resumes. Evaluate afterwards with
``star bench recon`` / ``star bench latent`` (the commands are in docs/RESULTS.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .train_config import TrainConfig, apply_overrides
from .trainer import CHECKPOINT, Trainer

CONFIGS = Path(__file__).parent / "configs"
VARIANTS = ("mamba-star", "mamba-uniform", "cnn-star", "cnn-uniform")


def run_dir(out: Path, variant: str, seed: int) -> Path:
    return Path(out) / f"{variant}-seed{seed}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", default="runs/study")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--set", action="append", help="config override for every run")
    args = p.parse_args(argv)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for variant in args.variants.split(","):
            config = TrainConfig.from_file(CONFIGS / f"study-{variant}.json")
            config = apply_overrides(config, [f"data.corpus={args.corpus}", f"seed={seed}",
                                              *(args.set or [])])
            out = run_dir(args.out, variant, seed)
            checkpoint = out / CHECKPOINT
            if checkpoint.exists() and (out / "model").exists():
                if torch.load(checkpoint, weights_only=False)["step"] >= config.optim.steps:
                    print(f"{out}: done, skipping", file=sys.stderr)
                    continue
            start = time.time()
            trainer = Trainer(config, out, resume=checkpoint.exists())
            trainer.fit()
            if trainer.interrupted:  # SIGTERM/Ctrl+C stops the whole study, not just this run
                print(f"{out}: interrupted; run the same command to resume", file=sys.stderr)
                return
            print(f"{out}: trained in {time.time() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
