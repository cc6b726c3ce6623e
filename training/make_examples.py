"""Write the bundled example clips under presets/examples/ from a corpus's *test* split (never
seen in training), with a CREDITS.md giving each clip's caption, origin and licence.

    python -m star_plugin.training.make_examples --corpus data/corpus [--out presets/examples]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from star_plugin.atomic import write_bytes_atomic
from star_plugin.audio import read_audio, write_audio

from .corpus.manifest import audio_path, read_manifest

# (file stem, what to pick): the first dry test clip (by id) that matches, for variety of
# structure (melody, rhythm, speech) and texture (tonal, percussive, noisy).
EXAMPLES = [
    ("melody", lambda e: e["labels"]["source"] == "instrument" and e["labels"].get("phrase") == "melody"
     and e["labels"].get("family") in ("strings", "reed", "pipe", "brass")),
    ("drums", lambda e: e["labels"]["source"] == "drums" and e["origin"]["package"] == "hydrogen-drumkits"),
    ("speech", lambda e: e["labels"]["source"] == "speech" and "English" in e["caption"]),
    ("texture", lambda e: e["labels"]["source"] == "texture"),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "presets" / "examples"))
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    entries = sorted(read_manifest(args.corpus, "test"), key=lambda e: e["id"])
    dry = [e for e in entries if e["labels"].get("effect") in ("none", "dry")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    credits = ["# Example clips\n", "Taken from the test split of `star data build --hours 2 "
               "--seed 0` (never used for training), first 3 s, 44.1 kHz mono FLAC.\n",
               "| file | caption | origin | licence |", "|---|---|---|---|"]
    for old in out.glob("*.flac"):
        old.unlink()
    for stem, wanted in EXAMPLES:
        entry = next(e for e in dry if wanted(e))
        audio, rate = read_audio(audio_path(args.corpus, entry))
        path = write_audio(out / f"{stem}.flac", audio[:, :int(args.seconds * rate)], rate,
                           subtype="PCM_16")
        origin = entry["origin"]
        credits.append(f"| {path.name} | {entry['caption']} | {origin['package']}: "
                       f"{origin.get('file', '')} | {origin['licence']} |")
        print(path, "-", entry["caption"])
    write_bytes_atomic(out / "CREDITS.md", ("\n".join(credits) + "\n").encode())


if __name__ == "__main__":
    main()
