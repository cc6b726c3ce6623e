"""``star demo``: reconstruct and morph the bundled examples (``star_plugin.demo``)."""
from __future__ import annotations

from . import args as a
from .common import progress


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", default="star-demo", help="directory to write")
    a.add_model(p)


def run(args):
    from ..demo import run_demo
    run_demo(args.output, model_name=args.model,
             progress=lambda total: progress(total, "demo", "step"))
