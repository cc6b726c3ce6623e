"""Argument types and option groups shared by several ``star`` commands (argparse only, no
heavy imports)."""
from __future__ import annotations

import argparse
import math

from ..errors import StarError
from ..guard import MAX_BUFFER_SIZE, MAX_RATE, MIN_RATE


def int_in(low: int, high: int):
    """An argparse type: an integer in low..high (argparse names the option on failure)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got "
                                             f"{text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got {value}")
        return value
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


rate = int_in(MIN_RATE, MAX_RATE)
seed = int_in(0, 2 ** 63 - 1)


def int_list(text: str, option: str) -> list:
    """"64,256,1024" -> [64, 256, 1024] (positive integers), or an error naming the option."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise StarError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise StarError(f"{option} needs positive integers, got {text!r}")
    return values


def add_model(p, what: str = "bundled model name or model directory") -> None:
    p.add_argument("--model", default="default", help=what)


def add_model_positional(p) -> None:
    p.add_argument("model", nargs="?", default="default", help="bundled name or model directory")


def add_subtype(p) -> None:
    p.add_argument("--subtype", type=str.upper, default=None,
                   help="sample format of the written file, e.g. PCM_16, PCM_24, FLOAT "
                   "(default: FLOAT for .wav, PCM_24 for .flac)")


def add_backend(p) -> None:
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: ONNX Runtime when the onnx extra is installed, else PyTorch")


def add_morph(p) -> None:
    """The morph parameters and texture source (``morph``, ``stream``)."""
    p.add_argument("--texture-source", "--texture", dest="texture_file", metavar="FILE",
                   help="texture source: an audio file (--texture is short for it)")
    p.add_argument("--texture-prompt", metavar="PROMPT",
                   help="generate the texture source with STAR-Gen from this prompt")
    p.add_argument("--generator", default="default",
                   help="generator for --texture-prompt (default: the bundled one)")
    p.add_argument("--texture-seconds", type=positive_float,
                   help="length of the generated texture source (default 4, or the "
                   "generator's longest)")
    p.add_argument("--preset", help="bundled preset name or preset file (star presets list)")
    p.add_argument("--structure-amount", "--structure", dest="structure_amount", type=float,
                   metavar="A", help="0..1: how much of the source's structure "
                   "(MorphParams.structure_amount; default: the preset's, else 0)")
    p.add_argument("--texture-amount", "--amount", dest="texture_amount", type=float,
                   metavar="A", help="0..1: how much of the source's texture "
                   "(MorphParams.texture_amount; default: the preset's, else 1)")
    p.add_argument("--temperature", type=float, help="0..4: resample the texture channels")
    p.add_argument("--mix", type=float, help="0..1 dry/wet: 0 the input, 1 STAR only "
                   "(default: the preset's, else 1)")
    p.add_argument("--output-gain-db", type=float, help="-60..24 dB after the mix "
                   "(default: the preset's, else 0)")
    p.add_argument("--mode", choices=["loop", "hold", "mean", "match"],
                   help="how the source's frames follow the input")
    p.add_argument("--seed", type=seed, help="seed for the texture noise and a generated "
                   "texture (0..2**63-1; default: the preset's, else 0)")
    add_model(p)


def add_chain(p) -> None:
    """The effect chain options (``chain``, ``live``)."""
    p.add_argument("--chain", help="stages separated by '|', e.g. "
                   "\"HighpassFilter(cutoff_frequency_hz=80) | star(preset='texture-blend') | "
                   "Reverb(room_size=0.3)\"")
    p.add_argument("--chain-file", help="a chain saved as JSON (see --save-chain)")
    add_model(p, "model for the star(...) stages")
    add_backend(p)
    p.add_argument("--buffer-size", "--block", dest="buffer_size",
                   type=int_in(1, MAX_BUFFER_SIZE),
                   default=512, help=f"block size in samples (1..{MAX_BUFFER_SIZE})")
