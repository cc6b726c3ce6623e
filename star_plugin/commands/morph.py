"""``star morph``: timbre transfer offline, the content's structure with a texture source's
texture (``render_offline``: exactly what the engine streams, aligned)."""
from __future__ import annotations

from ..errors import StarError
from . import args as a
from .common import (check_audio_output, finite_or_error, guard_file_output, load_model,
                     preset_file, read_guarded)
from .morphing import morph_params, texture_latent


def add_arguments(p) -> None:
    p.add_argument("input", help="content audio file")
    p.add_argument("-o", "--output", required=True, help="audio file to write")
    a.add_morph(p)
    a.add_subtype(p)


def run(args):
    from ..audio import write_audio
    from ..engine import render_offline

    if not (args.texture_file or args.texture_prompt is not None):
        raise StarError("morph needs a texture source: --texture-source REF.wav or "
                        "--texture-prompt "
                        "\"PROMPT\" (without one it would only reconstruct the input; use "
                        "`star recon` for that)")
    guard_file_output(args, args.texture_file, *preset_file(args.preset))
    check_audio_output(args.output, args.subtype)
    params = morph_params(args)
    model = load_model(args.model)
    audio, rate = read_guarded(args.input)
    texture = texture_latent(model, args)
    out = render_offline(model, audio, rate, params, texture_source=texture)
    write_audio(args.output, finite_or_error(out, f"'{args.input}'"), rate,
                subtype=args.subtype)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch, {rate} Hz, "
          f"{audio.shape[1] / rate:.2f} s; structure amount {params.structure_amount}, "
          f"texture amount {params.texture_amount}, temperature {params.temperature}, "
          f"mode {params.mode})")
