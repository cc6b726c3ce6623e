"""``star demo``: reconstruct and morph the bundled examples (``star_plugin.demo``)."""
from __future__ import annotations

from . import args as a
from .common import guard_outputs, model_files, progress


def add_arguments(p) -> None:
    p.add_argument("-o", "--output", default="star-demo", help="directory to write")
    a.add_model(p)


def run(args):
    from ..demo import run_demo

    # the output rule; the demo's files appear one by one (it reports them as it goes)
    guard_outputs(directories=[("-o/--output", args.output)], inputs=model_files(args.model))
    run_demo(args.output, model_name=args.model,
             progress=lambda total: progress(total, "demo", "step"))
