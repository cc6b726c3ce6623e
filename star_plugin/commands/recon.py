"""``star recon``: encode and decode audio files (one bad file is reported, not fatal)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import StarError
from . import args as a
from .common import (check_audio_output, finite_or_error, load_model, one_line, progress,
                     read_for_model)


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", help="audio files (bad ones are reported and skipped)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    a.add_model(p)
    a.add_subtype(p)


def run(args):
    import torch

    from ..atomic import refuse_overwriting_input
    from ..audio import write_audio
    from ..convert import from_model_batch
    from ..metrics import si_sdr

    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise StarError(f"-o/--output '{out_dir}' is a file; recon writes into a directory")
    check_audio_output("x.wav", args.subtype)
    model = load_model(args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    bar = progress(len(args.inputs), "recon", "file")
    for path in args.inputs:
        bar.update(1)
        try:
            target = out_dir / (Path(path).stem + ".recon.wav")
            refuse_overwriting_input(target, [path], "recon output")
            audio, batch, layout = read_for_model(model, path)
            rate = layout.sample_rate
            with torch.no_grad():
                recon = from_model_batch(model.reconstruct(batch), layout)
            write_audio(target, finite_or_error(recon, f"'{path}'"), rate, subtype=args.subtype)
            score = si_sdr(recon, audio) if audio.size else float("nan")
            print(f"{path} -> {target}  ({audio.shape[0]} ch, {rate} Hz, "
                  f"{audio.shape[1] / rate:.2f} s)  SI-SDR {score:.2f} dB")
        except (StarError, ValueError, RuntimeError, OSError) as exc:
            # one bad file must not stop the batch: report it, go on, fail at the end
            failures += 1
            message = one_line(exc)
            named = str(path) in message
            print(f"error: {message if named else f'{path!r}: ' + message}", file=sys.stderr)
    bar.close()
    if failures:
        print(f"{failures} of {len(args.inputs)} file(s) failed", file=sys.stderr)
        return 1
