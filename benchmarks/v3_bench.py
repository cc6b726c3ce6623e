"""What the v3 benchmark scripts share (ablate_v3, phase_rules, oracle_rank): their common
arguments, loading a peak-locked model, writing the JSON atomically, the summary table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def v3_arguments(description: str, out: str, model: bool = True) -> argparse.ArgumentParser:
    """data, --clips, --seconds, --out (and --model): the pitched test clips of a corpus."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("data", type=Path)
    if model:
        p.add_argument("--model", default="training/checkpoints/default-v3")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out", type=Path, default=Path(out))
    return p


def load_peak_locked(path: str):
    """-> (model in eval mode, its config, its PeakLockedHead); a clear exit otherwise."""
    from star_plugin.model_io import load_vae

    model = load_vae(path).eval()
    if model.config.head != "peak-locked":
        raise SystemExit(f"--model {path}: needs a peak-locked (v3) model, got head "
                         f"{model.config.head!r}")
    return model, model.config, model.decoder.layers[-1].inner


def write_json(path: Path, result: dict) -> None:
    """Write ``result`` to ``path`` through a temporary file (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(path)


def print_summary(summary: dict, keys, note: str) -> None:
    """One line per row: the mean of each of ``keys`` (fsc, msd, level_db, buzz_ratio)."""
    width = max(len(name) for name in summary) + 2
    titles = {"fsc": "FSC", "msd": "MSD", "level_db": "level", "buzz_ratio": "buzz"}
    print(f"{'row':{width}} " + " ".join(f"{titles.get(k, k):>7}" for k in keys) + f"   ({note})")
    for name, s in summary.items():
        print(f"{name:{width}} " + " ".join(
            f"{s[k]:+7.2f}" if k == "level_db" else f"{s[k]:7.3f}" for k in keys))
