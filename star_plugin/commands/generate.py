"""``star generate``: text to audio with STAR-Gen."""
from __future__ import annotations

from pathlib import Path

from . import args as a
from .common import check_audio_output, guard_outputs, model_files, progress


def add_arguments(p) -> None:
    from ..gen.generator import DEFAULT_CFG, DEFAULT_SOLVER, DEFAULT_STEPS  # imports torch

    p.add_argument("prompt", help="what to generate, e.g. \"a soft flute melody\"")
    p.add_argument("-o", "--output", required=True, help="audio file (variations get -N)")
    p.add_argument("--seconds", type=a.positive_float, default=4.0, help="length of each sound")
    p.add_argument("--steps", type=a.int_in(1, 1000), default=DEFAULT_STEPS,
                   help="ODE solver steps")
    p.add_argument("--cfg", type=float, default=DEFAULT_CFG, help="classifier-free guidance scale")
    p.add_argument("--seed", type=a.seed, default=0, help="random seed (0..2**63-1)")
    p.add_argument("--variations", type=a.int_in(1, 64), default=1, help="sounds per prompt")
    p.add_argument("--solver", choices=["euler", "midpoint", "heun"], default=DEFAULT_SOLVER,
                   help="ODE solver")
    p.add_argument("--generator", default="default", help="bundled name or directory")
    a.add_subtype(p)


def run(args):
    import time

    from ..audio import write_audio
    from ..gen.store import load_generator

    out = Path(args.output)
    paths = [out] if args.variations == 1 else [
        out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(args.variations)]
    guard = guard_outputs(files=[("-o/--output", p) for p in paths],
                          inputs=model_files(args.generator, "gen-"))
    check_audio_output(args.output, args.subtype)
    gen = load_generator(args.generator)
    t0 = time.perf_counter()
    with progress(args.steps, "generate", "step") as bar:
        audio = gen.generate(args.prompt, args.seconds, steps=args.steps, cfg=args.cfg,
                             seed=args.seed, variations=args.variations, solver=args.solver,
                             progress=lambda done, total: bar.update(done - bar.n))
    took = time.perf_counter() - t0
    with guard.together():  # every variation, or none
        for i, (path, clip) in enumerate(zip(paths, audio)):
            write_audio(path, clip, gen.sample_rate, subtype=args.subtype)
            print(f"{path}  ({args.seconds:g} s, seed {args.seed}, variation {i + 1})")
    print(f"generated {len(audio)} x {args.seconds:g} s in {took:.2f} s "
          f"({args.steps} {args.solver} steps, cfg {args.cfg})")
