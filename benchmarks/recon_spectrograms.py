"""Spectrograms of reconstructions beside their inputs: the picture that shows what MSD hides
(harmonics are horizontal lines that must follow the input's pitch; a hop-rate buzz is a fixed
comb of lines whatever the input).

    python benchmarks/recon_spectrograms.py data/corpus-v2 --model default \
        --model runs/default-v2/model --out docs/training/default-v2/spectrograms.png

One row per test clip (the first clip of each source, sorted by id), one column per model
after the input; the title of each panel gives FSC and the level error.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from star_plugin.audio import load_for_model
from star_plugin.metrics import fine_structure_correlation, level_error_db, spectrogram_db
from star_plugin.model_io import load_vae

SOURCES = ("instrument", "speech", "recording", "drums", "sample")


def pick_clips(corpus: Path, split: str, seconds: float):
    entries = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines()]
    entries = sorted((e for e in entries if e["split"] == split and e["labels"]["effect"] == "none"),
                     key=lambda e: e["id"])
    chosen = [next((e for e in entries if e["labels"]["source"] == s), None) for s in SOURCES]
    return [e for e in chosen if e is not None]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [(name, load_vae(name).eval()) for name in args.model]
    clips = pick_clips(args.corpus, args.split, args.seconds)
    fig, axes = plt.subplots(len(clips), 1 + len(models),
                             figsize=(4 * (1 + len(models)), 2.4 * len(clips)), squeeze=False)
    for row, entry in zip(axes, clips):
        audio, _ = load_for_model(args.corpus / entry["path"], 44100, 1)
        audio = audio[:, : int(args.seconds * 44100)]
        panels = [("input", audio, "")]
        for name, model in models:
            with torch.no_grad():
                recon = model.reconstruct(torch.from_numpy(audio)[None])[0].numpy()
            score = (f"FSC {fine_structure_correlation(recon, audio, 44100):.2f}, "
                     f"level {level_error_db(recon, audio):+.1f} dB")
            panels.append((Path(name).name if "/" in name else name, recon, score))
        for ax, (label, signal, score) in zip(row, panels):
            db = spectrogram_db(signal, 2048, 512)[:280]  # 0-6 kHz
            ax.imshow(db, origin="lower", aspect="auto", vmin=-90, vmax=10, cmap="magma",
                      extent=(0, signal.shape[-1] / 44100, 0, 280 * 44100 / 2048))
            ax.set_title(f"{entry['id']}: {label} {score}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=72)
    print(args.out)


if __name__ == "__main__":
    main()
