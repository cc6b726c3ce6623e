"""Evaluate the study runs side by side and write the table for docs/RESULTS.md.

    python -m star_plugin.training.study_report --corpus data/corpus --runs runs/study \
        --json benchmarks/study.json --markdown benchmarks/study.md

Every run is scored on the same test clips (``star bench recon`` with the Opus rows, and
``star bench latent``); rows per run, then mean +- standard deviation over seeds per variant.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

from star_plugin.bench.latent import bench_latent
from star_plugin.bench.recon import bench_recon
from star_plugin.bench.report import write_json, write_text

from .study import VARIANTS

COLUMNS = ["rate b/s", "MSD", "STFT-D", "SI-SDR dB", "KL in first 8 ch", "mean abs corr",
           "texture->prior dLow/dHigh dB", "probe source: struct / texture", "prior loss (rel.)"]


def run_rows(recon: dict, latent: dict) -> dict:
    """One row of figures per model, keyed by the model's path."""
    rows = {}
    for row in recon["rows"]:
        if row["kind"] != "model":
            continue
        m = row["metrics"]
        rows[row["row"]] = {"rate b/s": row["rate_bits_per_s"], "MSD": m["msd"]["mean"],
                            "STFT-D": m["stft_d"]["mean"], "SI-SDR dB": m["si_sdr"]["mean"]}
    for model in latent["models"]:
        name = model["model"]["model"]
        kl, rep = model["kl"], model["replacement"]["error_db"]["texture_prior"]["delta"]
        source = model["probes"]["keys"].get("source", {})
        rows.setdefault(name, {}).update({
            "KL in first 8 ch": kl["structure_fraction"],
            "mean abs corr": model["correlation"]["mean_abs_offdiag"],
            "texture->prior dLow/dHigh dB": (rep["low"], rep["high"]),
            "probe source: struct / texture": (source.get("structure", {}).get("accuracy"),
                                               source.get("texture", {}).get("accuracy")),
            "prior loss (rel.)": model["prior"]["relative_val_loss"],
        })
    return rows


def _cell(value) -> str:
    if isinstance(value, tuple):
        return " / ".join(_cell(v) for v in value)
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3f}"


def _mean_cell(values) -> str:
    if isinstance(values[0], tuple):
        return " / ".join(_mean_cell([v[i] for v in values]) for i in range(len(values[0])))
    values = [v for v in values if v is not None]
    mean = statistics.fmean(values)
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.0f} +- {spread:.0f}" if abs(mean) >= 100 else f"{mean:.3f} +- {spread:.3f}"


def markdown(rows: dict, recon: dict) -> str:
    header = "| run | " + " | ".join(COLUMNS) + " |\n|" + "---|" * (len(COLUMNS) + 1) + "\n"
    per_run = header + "".join(
        f"| {Path(name).parent.name} | " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + " |\n"
        for name, r in rows.items())
    groups: dict = {}
    for name, r in rows.items():
        variant = re.sub(r"-seed\d+$", "", Path(name).parent.name)
        groups.setdefault(variant, []).append(r)
    means = header.replace("| run |", "| variant (mean +- sd over seeds) |") + "".join(
        f"| {v} (n={len(rs)}) | " + " | ".join(_mean_cell([r[c] for r in rs]) for c in COLUMNS)
        + " |\n" for v, rs in groups.items())
    opus = "| codec | rate | MSD | STFT-D | SI-SDR dB |\n|---|---|---|---|---|\n" + "".join(
        f"| {row['row']} | {row.get('measured_kbps', 0):.1f} kbit/s measured | "
        f"{row['metrics']['msd']['mean']:.3f} | {row['metrics']['stft_d']['mean']:.3f} | "
        f"{row['metrics']['si_sdr']['mean']:.2f} |\n"
        for row in recon["rows"] if row["kind"] != "model")
    return f"### Per variant\n\n{means}\n### Per run\n\n{per_run}\n### Opus on the same clips\n\n{opus}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--runs", default="runs/study")
    p.add_argument("--max-clips", type=int, default=80)
    p.add_argument("--max-train-clips", type=int, default=300)
    p.add_argument("--prior-steps", type=int, default=300)
    p.add_argument("--json", default="benchmarks/study.json")
    p.add_argument("--markdown", default="benchmarks/study.md")
    args = p.parse_args(argv)
    models = [str(d / "model") for v in VARIANTS for d in sorted(Path(args.runs).glob(f"{v}-seed*"))
              if (d / "model").exists()]
    if not models:
        raise SystemExit(f"no finished runs under '{args.runs}'")
    print(f"evaluating {len(models)} runs", file=sys.stderr)
    recon = bench_recon(args.corpus, models, split="test", max_clips=args.max_clips, opus=[6, 12, 24])
    latent = bench_latent(args.corpus, models, split="test", max_clips=args.max_clips,
                          max_train_clips=args.max_train_clips, prior_steps=args.prior_steps)
    rows = run_rows(recon, latent)
    write_json(args.json, {"recon": recon, "latent": latent, "rows": rows})
    text = markdown(rows, recon)
    write_text(args.markdown, text)
    print(text)


if __name__ == "__main__":
    main()
