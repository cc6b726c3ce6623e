"""Write the bundled example clips under presets/examples/ (FLAC, 44.1 kHz mono).

    python -m star_plugin.training.make_examples [--out presets/examples]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from star_plugin.audio import write_audio

from .synth import synth_clip

# (file stem, kind, seed): chosen by ear for variety of structure and texture.
EXAMPLES = [("pluck-melody", "pluck", 11), ("drum-loop", "drums", 3),
            ("chord-pad", "chord", 5), ("noise-texture", "noise", 8)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "presets" / "examples"))
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    for stem, kind, seed in EXAMPLES:
        audio, _ = synth_clip(seed, args.seconds, 44100, kind=kind)
        path = write_audio(Path(args.out) / f"{stem}.flac", audio, 44100, subtype="PCM_16")
        print(path)


if __name__ == "__main__":
    main()
