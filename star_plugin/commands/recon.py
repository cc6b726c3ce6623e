"""``star recon``: encode and decode audio files (one bad file is reported, not fatal)."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import OutputError, StarError
from . import args as a
from .common import (check_audio_output, finite_or_error, guard_outputs, load_model,
                     model_files, one_line, progress, read_for_model)


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", help="audio files (bad ones are reported and skipped)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    a.add_model(p)
    a.add_subtype(p)


def output_names(inputs, out_dir: Path) -> list:
    """``DIR/STEM.recon.wav`` per input; inputs that share a stem (``a/x.wav b/x.wav``,
    ``x.wav x.flac``) get ``STEM-2.recon.wav``, ``STEM-3...``, so no result replaces another."""
    used, targets = set(), []
    for path in inputs:
        stem = Path(path).stem
        name, n = f"{stem}.recon.wav", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}.recon.wav"
        used.add(name)
        targets.append(out_dir / name)
    return targets


def run(args):
    import torch

    from ..atomic import refuse_overwriting_input
    from ..audio import write_audio
    from ..convert import from_model_batch
    from ..metrics import si_sdr

    out_dir = Path(args.output)
    guard = guard_outputs(directories=[("-o/--output", out_dir)],
                          inputs=[*args.inputs, *model_files(args.model)])
    check_audio_output("x.wav", args.subtype)
    targets = output_names(args.inputs, out_dir)
    for path, target in zip(args.inputs, targets):
        if target.name != f"{Path(path).stem}.recon.wav":
            print(f"note: '{path}' shares its name with an earlier input: writing '{target}'")
    refused = {}  # an output that would replace one of the inputs: that file is skipped
    for path, target in zip(args.inputs, targets):
        try:
            refuse_overwriting_input(target, args.inputs, "recon output")
        except OutputError as exc:
            refused[target] = exc
    model = load_model(args.model)
    failures = 0
    bar = progress(len(args.inputs), "recon", "file")
    with guard.together():  # a run that fails (disk full, Ctrl+C) writes nothing
        for path, target in zip(args.inputs, targets):
            bar.update(1)
            try:
                if target in refused:
                    raise refused[target]
                audio, batch, layout = read_for_model(model, path)
                rate = layout.sample_rate
                with torch.no_grad():
                    recon = from_model_batch(model.reconstruct(batch), layout)
                try:
                    write_audio(target, finite_or_error(recon, f"'{path}'"), rate,
                                subtype=args.subtype)
                except OutputError as exc:  # the output place failed: stop the batch
                    raise _Fatal(exc) from None
                score = si_sdr(recon, audio) if audio.size else float("nan")
                print(f"{path} -> {target}  ({audio.shape[0]} ch, {rate} Hz, "
                      f"{audio.shape[1] / rate:.2f} s)  SI-SDR {score:.2f} dB")
            except _Fatal as fatal:
                bar.close()
                raise fatal.args[0] from None
            except (StarError, ValueError, RuntimeError, OSError) as exc:
                # one bad file must not stop the batch: report it, go on, fail at the end
                failures += 1
                message = one_line(exc)
                named = str(path) in message
                print(f"error: {message if named else f'{path!r}: ' + message}",
                      file=sys.stderr)
    bar.close()
    if failures:
        print(f"{failures} of {len(args.inputs)} file(s) failed", file=sys.stderr)
        return 1


class _Fatal(Exception):
    """A write failure (disk full, ...): it would fail every later file too."""
