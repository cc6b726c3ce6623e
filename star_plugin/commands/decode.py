"""``star decode``: a latent file -> an audio file at the original (or another) rate."""
from __future__ import annotations

from ..errors import StarError
from . import args as a
from .common import check_audio_output, guard_file_output, load_model


def add_arguments(p) -> None:
    p.add_argument("input", help="latent file written by `star encode`")
    p.add_argument("-o", "--output", required=True, help="audio file to write (.wav/.flac)")
    a.add_model(p)
    p.add_argument("--sample-rate", type=a.rate, default=None,
                   help="output rate in Hz (default: the original rate)")
    a.add_subtype(p)


def run(args):
    import torch

    from ..audio import write_audio
    from ..convert import from_model_batch
    from ..latent_file import load_latent

    guard_file_output(args)
    check_audio_output(args.output, args.subtype)
    model = load_model(args.model)
    latent, layout, meta = load_latent(args.input)
    if latent.channels != model.config.latent_channels or latent.hop != model.hop:
        raise StarError(f"'{args.input}' was encoded by model '{meta.get('model')}' "
                        f"({latent.channels} channels, hop {latent.hop}); model '{args.model}' "
                        f"expects {model.config.latent_channels} channels, hop {model.hop}")
    with torch.no_grad():
        audio = from_model_batch(model.decode(latent), layout)
    rate = args.sample_rate or layout.sample_rate
    if rate != layout.sample_rate:
        from ..audio import resample
        audio = resample(audio, layout.sample_rate, rate)
    write_audio(args.output, audio, rate, subtype=args.subtype)
    print(f"{args.input} -> {args.output}: {audio.shape[0]} channel(s), "
          f"{audio.shape[1] / rate:.2f} s at {rate} Hz")
