"""The ``star`` command line: a table of commands, each an ``(add_arguments, run)`` pair in its
own module (``star_plugin.commands``, or the tool that owns it: ``star_plugin.bench.*``,
``star_plugin.training.corpus.build``, ``star_plugin.gui.app``).

Modules are named here, not imported: only the command the command line selects is imported
(``build_parser(argv)``), so ``star --help`` never pays for torch or a tool
(``benchmarks/cli_startup.md``); ``build_parser()`` without argv imports them all.
"""
from __future__ import annotations

import argparse
import sys
from typing import NamedTuple, Tuple

from .errors import StarError


class Command(NamedTuple):
    """One ``star`` command: its words, help line, the module (relative to ``star_plugin``)
    holding it, and the names of its ``add_arguments`` and ``run`` functions there."""

    words: Tuple[str, ...]
    help: str
    module: str
    add_arguments: str = "add_arguments"
    run: str = "run"


#: Groups of sub-commands (``star bench ...``) and their help lines.
GROUPS = {"presets": "morph presets", "bench": "benchmarks", "data": "datasets",
          "train": "training", "plugin": "native engine and DAW plugin (source checkout)"}

COMMANDS = (
    Command(("info",), "describe a model", ".commands.info"),
    Command(("encode",), "audio file -> latent file", ".commands.encode"),
    Command(("decode",), "latent file -> audio file", ".commands.decode"),
    Command(("recon",), "encode and decode audio files", ".commands.recon"),
    Command(("export",), "export a model to ONNX (graphs + manifest.json)", ".commands.export"),
    Command(("morph",), "timbre transfer offline: CONTENT's structure, a texture",
            ".commands.morph"),
    Command(("stream",), "run a file through the real-time engine block by block",
            ".commands.stream"),
    Command(("chain",), "run a file through an effect chain (Pedalboard + STAR)",
            ".commands.chain"),
    Command(("live",), "live input -> effect chain -> output (audio devices)", ".commands.live"),
    Command(("presets", "list"), "list the bundled morph presets", ".commands.presets"),
    Command(("bench", "speed"), "scan backends and model real-time factors",
            ".commands.bench_speed"),
    Command(("bench", "engine"), "real-time engine per-block time, misses, memory",
            ".bench.engine_speed", run="run_from_args"),
    Command(("bench", "recon"), "reconstruction quality on a corpus split or audio folder",
            ".bench.recon", run="run_bench_recon"),
    Command(("bench", "latent"), "latent regularity: KL profile, probes, texture swap",
            ".bench.latent", run="run_bench_latent"),
    Command(("bench", "gen"), "STAR-Gen: prompt adherence, Fréchet distance, speed "
            "(self-trained evaluator)", ".bench.gen_bench", run="run_bench_gen"),
    Command(("bench", "studio"), "STAR Studio's responsiveness while the model works "
            "(GUI-thread timer gaps; needs the gui extra)", ".bench.studio",
            run="run_from_args"),
    Command(("data", "build"), "build the captioned corpus from Debian packages",
            ".training.corpus.build", run="run_build"),
    Command(("train", "vae"), "train a STAR-VAE from a config file", ".commands.train",
            "add_vae_arguments", "run_vae"),
    Command(("train", "gen"), "train STAR-Gen (text to audio) on cached corpus latents",
            ".commands.train", "add_gen_arguments", "run_gen"),
    Command(("generate",), "text to audio with STAR-Gen", ".commands.generate"),
    Command(("demo",), "reconstruct and morph the bundled examples", ".commands.demo"),
    Command(("plugin", "build"), "build star-engine-cli and STAR.vst3 (C++, CMake; "
            "docs/NATIVE.md)", ".commands.plugin"),
    Command(("studio",), "open STAR Studio, the desktop app (needs the gui extra)", ".gui.app"),
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every default (unless the help text already explains it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub-)parser shows defaults in its help (sub-parsers inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from .version import __version__

    return f"star {__version__}"


def _wanted(argv, words) -> bool:
    """Whether the command line selects the command ``words`` (argv None: build all)."""
    if argv is None:
        return True
    given = [a for a in argv if not a.startswith("-")]
    return tuple(given[:len(words)]) == tuple(words)


def _function(command: Command, which: str):
    import importlib

    return getattr(importlib.import_module(command.module, __package__),
                   getattr(command, which))


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The ``star`` parser. With ``argv``, only the selected command's module is imported
    (fast ``--help``); without, everything is built."""
    parser = _Parser(prog="star", description="STAR-VAE audio toolkit")
    parser.add_argument("--version", action="version", version=_version())
    top = parser.add_subparsers(dest="command", required=True)
    groups = {}
    for command in COMMANDS:
        *group, name = command.words
        if group and group[0] not in groups:
            p = top.add_parser(group[0], help=GROUPS[group[0]])
            groups[group[0]] = p.add_subparsers(dest=group[0], required=True)
        p = (groups[group[0]] if group else top).add_parser(name, help=command.help)
        if _wanted(argv, command.words):
            _function(command, "add_arguments")(p)
        p.set_defaults(command_entry=command)
    return parser


def _terminate_cleanly() -> None:
    """SIGTERM unwinds like Ctrl+C, so atomic writes delete their temporary files."""
    import signal
    import threading

    def on_term(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)


def main(argv=None) -> int:
    """Run ``star``: errors print one line naming the file or argument and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # bad option values (argparse printed the one-line reason),
        return exc.code if isinstance(exc.code, int) else 2  # --help, --version

    _terminate_cleanly()
    try:
        code = _function(args.command_entry, "run")(args)
    except StarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable place, a file where a directory should be, ...
        from .commands.common import one_line

        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
