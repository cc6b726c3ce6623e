"""The morph and chain options of ``star morph``, ``stream``, ``chain`` and ``live`` turned
into what the runtime takes: ``MorphParams``, a texture source, a ``StarChain``."""
from __future__ import annotations

from pathlib import Path

from ..errors import StarError


def morph_params(args):
    """A preset (if any) with the command line's overrides on top."""
    from ..morph import MorphParams
    from ..morph_presets import load_preset

    params = load_preset(args.preset).params if args.preset else MorphParams()
    changes = {k: v for k, v in (("structure_amount", args.structure_amount),
                                 ("texture_amount", args.texture_amount),
                                 ("temperature", args.temperature), ("mode", args.mode),
                                 ("mix", args.mix), ("output_gain_db", args.output_gain_db),
                                 ("seed", args.seed)) if v is not None}
    return MorphParams.from_dict({**params.to_dict(), **changes})


def texture_latent(model, args):
    """The texture source of a morph: an audio file's latent, a generated one, or none."""
    if args.texture_file and args.texture_prompt:
        raise StarError("give --texture-source or --texture-prompt, not both")
    if args.texture_prompt is not None and not args.texture_prompt.strip():
        raise StarError("--texture-prompt is empty; describe the texture, e.g. "
                        "--texture-prompt \"a band of pink noise\"")
    if args.texture_prompt:
        from ..gen.texture import texture_from_prompt

        return texture_from_prompt(args.texture_prompt, args.model, args.generator,
                                   seconds=args.texture_seconds, seed=args.seed or 0)
    if args.texture_file:
        from ..morph import texture_from_file

        return texture_from_file(model, args.texture_file)
    return None


def chain_from_args(args):
    """``--chain-file`` or ``--chain`` as a ``StarChain``."""
    from ..chain import StarChain

    if args.chain_file and args.chain:
        raise StarError("give --chain or --chain-file, not both (one of them would be "
                        "dropped)")
    if args.chain_file:
        from ..errors import ConfigError
        from ..model_io import read_json

        if not Path(args.chain_file).is_file():
            raise StarError(f"--chain-file '{args.chain_file}' does not exist")
        data = read_json(Path(args.chain_file), ConfigError)
        try:
            return StarChain.from_dict(data, model=args.model, backend=args.backend)
        except ConfigError as exc:  # name the file: "chain data must be an object" alone
            raise ConfigError(f"--chain-file '{args.chain_file}': {exc}") from None
    if not args.chain:
        raise StarError("give the effects with --chain 'Effect(param=value) | star(...)' or "
                        "--chain-file FILE.json")
    return StarChain.from_spec(args.chain, model=args.model, backend=args.backend)
