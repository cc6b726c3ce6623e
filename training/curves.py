"""Training curves of a run, for the repository: ``log.csv`` and ``eval.jsonl`` copied as CSV and
drawn as one PNG, so progress is visible from session to session without the run folder.

    python -m star_plugin.training.curves runs/default-v2 --out docs/training/default-v2
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from star_plugin.atomic import atomic_path, write_bytes_atomic

TRAIN_PANELS = (("reconstruction", ("stft", "mel")),
                ("phase derivatives", ("inst_freq", "group_delay", "head_inst_freq")),
                ("level", ("frame_energy",)),
                ("pitch error (octaves)", ("f0_octaves", "latent_f0_octaves")),
                ("comb amplitude (log error)", ("comb_amplitude",)),
                ("stage 1: magnitude errors (dB)", ("envelope_db", "fine_db", "loudness_db")),
                ("stage 1: compressed magnitude (relative)", ("compressed",)),
                ("stage 1: partials (dB)", ("partial_db",)),
                ("stage 1: head f0 error (cents)", ("head_f0_cents",)),
                ("rate (bit/s)", ("rate_bps", "fitted_rate_bps")), ("beta-field scale", ("kl_scale",)))
EVAL_PANELS = (("eval: MSD", ("mel_distance",)), ("eval: FSC", ("fsc",)),
               ("eval: f0 error (cents)", ("f0_cents",)),
               ("eval: level error (dB)", ("level_error_db",)),
               ("eval: buzz (output / input)", ("buzz_ratio",)),
               ("eval: rate (bit/s)", ("rate_bits_per_second", "fitted_rate_bits_per_second")),
               ("eval: magnitude errors (dB)", ("envelope_db", "fine_db", "loudness_db")),
               ("eval: compressed magnitude (relative)", ("compressed",)),
               ("eval: partials (dB)", ("partial_db",)),
               ("eval: head f0 error (cents)", ("head_f0_cents",)))
# dashed lines: the largest error that still gave FSC >= 0.35 and level within 1.5 dB in the
# calibration of the v3 head (benchmarks/calibrate_v3.py), per measure
CALIBRATION = Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate_v3.json"
CALIBRATED = {"fine_db": "fine", "envelope_db": "envelope", "loudness_db": "loudness",
              "partial_db": "partials", "head_f0_cents": "f0"}
EVAL_FIELDS = ("step", "mel_distance", "stft_distance", "si_sdr", "fsc", "f0_cents", "level_error_db",
               "buzz_ratio", "rate_bits_per_second", "fitted_rate_bits_per_second",
               "active_channels", "kl_share_first_8", "envelope_db", "fine_db", "loudness_db",
               "compressed", "partial_db", "head_f0_cents")


def calibrated_limits() -> dict:
    """measure -> the calibrated largest error (pitched clips), where the calibration ran."""
    if not CALIBRATION.exists():
        return {}
    found = json.loads(CALIBRATION.read_text()).get("thresholds", {})
    return {measure: found[family]["max_error"] for measure, family in CALIBRATED.items()
            if found.get(family, {}).get("max_error") is not None}


def _mark_limits(ax, keys, limits) -> None:
    for key in keys:
        if key in limits:
            ax.axhline(limits[key], linestyle="--", linewidth=0.8, color="grey")
            ax.annotate(f"calibrated {key} {limits[key]:g}", (0.01, limits[key]),
                        xycoords=("axes fraction", "data"), fontsize=6, color="grey")


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def read_run(run) -> tuple[list[dict], list[dict]]:
    run = Path(run)
    with open(run / "log.csv", newline="") as f:
        train = list(csv.DictReader(f))
    evals = []
    if (run / "eval.jsonl").exists():
        evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()
                 if line.strip()]
    return train, evals


def smooth(values: list[float], width: int) -> list[float]:
    """Trailing moving average that skips nan (the log is noisy batch by batch)."""
    out, window = [], []
    for v in values:
        window.append(v)
        window = window[-width:]
        finite = [w for w in window if w == w]
        out.append(sum(finite) / len(finite) if finite else float("nan"))
    return out


def plot(train: list[dict], evals: list[dict], title: str, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def has_data(rows, keys):
        return any(_float(r.get(k)) == _float(r.get(k)) for r in rows for k in keys)
    # only the panels this run logged (a stage-1 run has no spectral losses, v2 no stage 1)
    shown = ([("train", name, keys) for name, keys in TRAIN_PANELS if has_data(train, keys)]
             + [("eval", name, keys) for name, keys in EVAL_PANELS if has_data(evals, keys)])
    panels = max(1, len(shown))
    fig, axes = plt.subplots((panels + 2) // 3, 3, figsize=(13, 3 * ((panels + 2) // 3)))
    axes = axes.ravel()
    steps = [_float(r["step"]) for r in train]
    width = max(1, len(train) // 60)
    limits = calibrated_limits()
    eval_steps = [e["step"] for e in evals]
    for ax, (kind, name, keys) in zip(axes, shown):
        for key in keys:
            if kind == "train":
                ax.plot(steps, smooth([_float(r.get(key)) for r in train], width), label=key)
            else:
                ax.plot(eval_steps, [_float(e.get(key)) for e in evals], marker="o", label=key)
        _mark_limits(ax, keys, limits)
        ax.set_title(name, fontsize=9)
        if kind == "train" or len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in axes[panels:]:
        ax.axis("off")
    for ax in axes[:panels]:
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def export_curves(run, out) -> Path:
    """Copy the run's logs (train CSV, eval CSV) into ``out`` and draw ``curves.png``."""
    run, out = Path(run), Path(out)
    train, evals = read_run(run)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "train_log.csv", (run / "log.csv").read_bytes())
    lines = [",".join(EVAL_FIELDS)]
    lines += [",".join(f"{_float(e.get(k)):.6g}" for k in EVAL_FIELDS) for e in evals]
    write_bytes_atomic(out / "eval_log.csv", ("\n".join(lines) + "\n").encode())
    last = train[-1] if train else {}
    hours = _float(last.get("seconds")) / 3600
    plot(train, evals, f"{run.name}: step {last.get('step', 0)}, {hours:.1f} h of training",
         out / "curves.png")
    return out / "curves.png"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a training run folder (holds log.csv)")
    parser.add_argument("--out", required=True, help="folder for the CSVs and curves.png")
    args = parser.parse_args(argv)
    print(export_curves(args.run, args.out))


if __name__ == "__main__":
    main()
