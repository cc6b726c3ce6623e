"""``star train vae`` and ``star train gen``: the trainers in ``star_plugin.training``."""
from __future__ import annotations

from . import args as a


def add_vae_arguments(b) -> None:
    b.add_argument("--config", required=True, help="training config (JSON or TOML)")
    b.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    b.add_argument("--out", default=None, help="run directory (default: from the config)")
    b.add_argument("--seed", type=a.seed, default=None, help="override the config's seed")
    b.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set optim.steps=2000 (repeatable)")


def run_vae(args):
    from ..training.trainer import run_train_vae
    run_train_vae(args)


def add_gen_arguments(b) -> None:
    b.add_argument("--config", required=True)
    b.add_argument("--resume", action="store_true")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")


def run_gen(args):
    from ..training.gen_trainer import run_train_gen
    run_train_gen(args)
