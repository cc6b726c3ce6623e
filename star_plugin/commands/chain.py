"""``star chain``: a file through an effect chain (Pedalboard plugins and STAR stages)."""
from __future__ import annotations

from pathlib import Path

from ..errors import StarError
from . import args as a
from .common import guard_outputs, model_files, progress
from .morphing import chain_from_args


def add_arguments(p) -> None:
    p.add_argument("input", help="audio file (any length: processed chunk by chunk)")
    p.add_argument("-o", "--output", required=True, help="audio file to write (atomically)")
    a.add_chain(p)
    p.add_argument("--save-chain", help="also write the chain as JSON to this file")


def run(args):
    import time

    from ..atomic import write_bytes_atomic
    from ..chain import chain_json, describe_stage
    from ..chain_file import process_file

    guard = guard_outputs(files=[("-o/--output", args.output), ("--save-chain", args.save_chain)],
                          inputs=[args.input, args.chain_file, *model_files(args.model)])
    if not Path(args.input).is_file():  # before the chain loads its models
        raise StarError(f"input file '{args.input}' does not exist")
    chain = chain_from_args(args)
    guard.check_inputs(chain.input_files())  # texture sources, impulse responses, ...
    t0 = time.perf_counter()
    # both outputs or neither: the chain file is written only once the audio succeeded
    with guard.together(), progress(0, "chain", "frame") as bar:
        def report(done, total):
            bar.total = total
            bar.update(done - bar.n)

        facts = process_file(chain, args.input, args.output, buffer_size=args.buffer_size,
                             progress=report)
        if args.save_chain:
            write_bytes_atomic(args.save_chain, chain_json(chain.to_dict()))
    took = time.perf_counter() - t0
    print(f"{args.input} -> {args.output}  ({facts['channels']} ch, {facts['sample_rate']:g} Hz, "
          f"{facts['seconds']:.2f} s in {took:.2f} s, {len(chain)} stages)")
    for i, stage in enumerate(chain.stages, 1):
        print(f"  {i}. {describe_stage(stage)}")
