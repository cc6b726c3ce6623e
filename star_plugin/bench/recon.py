"""``star bench recon``: reconstruction quality of one or more models on a corpus split or an
audio folder, with Opus reference rows. Definitions in docs/METRICS.md.

Every clip is read once; each model encodes it (posterior mean) and decodes it, and the
reconstruction is brought back to the clip's own rate and channel count (``convert``) and
scored against the clip itself, so rows of models with different rates, and the Opus rows, share
one reference. Per clip: SI-SDR (dB), multi-scale mel distance (MSD), multi-resolution STFT
distance (STFT-D); per row: mean and median over clips. Model rows also give the latent rate:
the KL in bits/s, and the nominal latent size (channels x frame rate, values/s).
"""
from __future__ import annotations

import sys
import tempfile
import time

from .report import add_data_arguments


def add_arguments(parser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--opus", default=None, metavar="KBPS",
                        help="add Opus reference rows at these bitrates, e.g. 6,12,24 (kbit/s; "
                             "needs opusenc/opusdec from opus-tools)")


# ----------------------------------------------------------------------------- metrics

class ReferenceScorer:
    """The metrics of ``star_plugin.metrics`` against one fixed reference: the reference's
    features are computed once and shared by every row (models, Opus bitrates), about half
    the work per row.

    ``reference``: numpy (channels, samples) at ``sample_rate``.
    """

    def __init__(self, reference, sample_rate: int):
        import torch

        from ..metrics import log_mel_features, stft_magnitudes

        self.reference = reference
        self.sample_rate = int(sample_rate)
        r = torch.from_numpy(reference.astype("float32", copy=False))
        with torch.no_grad():
            self.mel = log_mel_features(r, self.sample_rate)
            self.mags = stft_magnitudes(r)

    def __call__(self, estimate) -> dict:
        """SI-SDR (dB), MSD and STFT-D of ``estimate`` (same shape as the reference)."""
        import torch

        from ..metrics import (log_mel_features, mel_distance_from, si_sdr, stft_distance_from,
                               stft_magnitudes)

        e = torch.from_numpy(estimate.astype("float32", copy=False))
        with torch.no_grad():
            msd = mel_distance_from(log_mel_features(e, self.sample_rate), self.mel)
            stft = stft_distance_from(stft_magnitudes(e), self.mags)
        return {"si_sdr": si_sdr(estimate, self.reference),
                "msd": float(msd), "stft_d": float(stft)}


def clip_metrics(estimate, reference, sample_rate: int) -> dict:
    """SI-SDR, multi-scale mel distance and multi-resolution STFT distance of one clip.

    ``estimate``, ``reference``: numpy (channels, samples) at ``sample_rate``, equal shapes.
    """
    return ReferenceScorer(reference, sample_rate)(estimate)


def _model_info(name, model) -> dict:
    cfg = model.config
    return {"model": str(name), "name": cfg.name, "family": cfg.family, "backbone": cfg.backbone,
            "causal": cfg.causal, "sample_rate": cfg.sample_rate,
            "audio_channels": cfg.audio_channels, "hop": model.hop,
            "latent_rate_hz": model.latent_rate, "latent_channels": cfg.latent_channels,
            "structure_channels": cfg.structure_channels,
            "nominal_values_per_s": cfg.latent_channels * model.latent_rate}


def reconstruct_clip(model, audio, rate):
    """(reconstruction at the clip's rate/channels, per-channel KL in nats/frame)."""
    import torch

    from ..convert import from_model_batch, to_model_batch
    from ..star_loss import kl_nats_per_frame

    batch, layout = to_model_batch(audio, rate, model.sample_rate, model.config.audio_channels)
    with torch.no_grad():
        latent = model.encode(batch)
        recon = model.decode(latent)
    kl = kl_nats_per_frame(latent.mean, latent.logsigma)
    return from_model_batch(recon, layout), kl.double().numpy()


# ----------------------------------------------------------------------------- the benchmark

def bench_recon(data, models, split="test", max_clips=None, seconds=None, opus=None,
                progress=None) -> dict:
    """Run the benchmark. ``models``: list of model names/paths (or (name, model) pairs);
    ``opus``: list of kbit/s or None. Returns the result dict (see docs/METRICS.md)."""
    import numpy as np

    from ..model_io import load_vae
    from ..star_loss import rate_bits_per_second
    from .opus import INSTALL_HINT, OpusError, best_lag, opus_roundtrip, opus_tools
    from .report import BenchError, check_positive, finite_stats, iter_clips, resolve_data, warn

    check_positive("--seconds", seconds)
    dataset = resolve_data(data, split, max_clips)
    loaded = []
    for m in models:
        name, model = (m if isinstance(m, tuple) else (m, load_vae(m)))
        name, n = str(name), 2
        while any(name == other for other, _ in loaded):  # the same model twice: label #2
            name, n = f"{m if not isinstance(m, tuple) else m[0]} #{n}", n + 1
        loaded.append((name, model))

    tools = None
    opus_note = None
    if opus:
        tools = opus_tools()
        if tools is None:
            opus_note = f"Opus rows skipped: opusenc/opusdec not found on PATH; {INSTALL_HINT}"
            warn(opus_note)
            opus = []
    opus = list(opus or [])

    rows = {}
    for name, model in loaded:
        rows[name] = {"kind": "model", "label": name, "info": _model_info(name, model),
                      "clips": [], "kl": []}
    for kbps in opus:
        rows[f"opus {kbps:g}"] = {"kind": "opus", "label": f"opus {kbps:g} kb/s",
                                  "kbps": kbps, "clips": [], "bits": 0, "seconds": 0.0,
                                  "lags": []}

    skipped = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="star-bench-opus-") as tmp:
        for index, clip in enumerate(iter_clips(dataset.items, seconds, skipped)):
            base = {"id": clip.item.id, "rate": clip.rate, "channels": clip.audio.shape[0],
                    "seconds": clip.audio.shape[1] / clip.rate}
            score = ReferenceScorer(clip.audio, clip.rate)
            for name, model in loaded:
                recon, kl = reconstruct_clip(model, clip.audio, clip.rate)
                rows[name]["clips"].append({**base, **score(recon)})
                rows[name]["kl"].append(kl)
            for kbps in opus:
                row = rows[f"opus {kbps:g}"]
                try:
                    decoded, size = opus_roundtrip(clip.audio, clip.rate, kbps, tmp, tools)
                except OpusError as exc:
                    warn(f"'{clip.item.path}': {exc}; no Opus {kbps:g} kb/s score for it")
                    continue
                row["clips"].append({**base, **score(decoded), "bytes": size})
                row["bits"] += 8 * size
                row["seconds"] += base["seconds"]
                row["lags"].append(best_lag(decoded, clip.audio, max_lag=512))
            if progress:
                progress(index + 1, len(dataset.items))
    elapsed = time.perf_counter() - start

    n_ok = max((len(r["clips"]) for r in rows.values()), default=0)
    if n_ok == 0:
        raise BenchError(f"no clip of '{dataset.root}' could be evaluated "
                         f"({len(skipped)} skipped; see the warnings above)")

    out_rows = []
    for key, row in rows.items():
        clips = row["clips"]
        summary = {metric: finite_stats([c[metric] for c in clips])
                   for metric in ("si_sdr", "msd", "stft_d")}
        entry = {"row": row["label"], "kind": row["kind"], "n_clips": len(clips),
                 "metrics": summary, "clips": clips}
        if row["kind"] == "model":
            info = row["info"]
            kl = np.mean(row["kl"], axis=0) if row["kl"] else np.zeros(info["latent_channels"])
            k = info["structure_channels"]
            entry.update({
                "model": info,
                "kl_nats_per_frame": float(kl.sum()),
                "rate_bits_per_s": rate_bits_per_second(kl, info["latent_rate_hz"]),
                "rate_structure_bits_per_s": rate_bits_per_second(kl[:k], info["latent_rate_hz"]),
                "rate_texture_bits_per_s": rate_bits_per_second(kl[k:], info["latent_rate_hz"]),
                "nominal_values_per_s": info["nominal_values_per_s"],
            })
        else:
            entry.update({
                "bitrate_kbps": row["kbps"],
                "measured_kbps": (row["bits"] / row["seconds"] / 1000.0) if row["seconds"] else None,
                "lag_samples_max_abs": max((abs(v) for v in row["lags"]), default=None),
            })
        out_rows.append(entry)

    return {
        "benchmark": "recon",
        "data": {**dataset.describe(), "seconds": seconds},
        "settings": {"opus_kbps": opus, "opus_note": opus_note,
                     "reference": "each clip at its own rate and channel count"},
        "rows": out_rows,
        "skipped": skipped,
        "elapsed_s": elapsed,
    }


# ----------------------------------------------------------------------------- output

HEADERS = ["model/codec", "rate", "SI-SDR dB (mean / med)", "MSD (mean / med)",
           "STFT-D (mean / med)", "n clips"]


def _rate_cell(row) -> str:
    if row["kind"] == "model":
        m = row["model"]
        return (f"KL {row['rate_bits_per_s']:.0f} b/s; latent {m['latent_channels']}x"
                f"{m['latent_rate_hz']:.1f} Hz = {m['nominal_values_per_s']:.0f} values/s")
    measured = row["measured_kbps"]
    return f"{row['bitrate_kbps']:g} kb/s" + (f" ({measured:.1f} measured)" if measured else "")


def table_rows(result) -> list:
    from .report import fmt

    out = []
    for row in result["rows"]:
        m = row["metrics"]
        cells = [f"{fmt(m[k]['mean'], d)} / {fmt(m[k]['median'], d)}"
                 for k, d in (("si_sdr", 2), ("msd", 3), ("stft_d", 3))]
        out.append([row["row"], _rate_cell(row), *cells, str(row["n_clips"])])
    return out


def format_text(result) -> str:
    from .report import text_table

    d = result["data"]
    where = f"{d['root']} ({d['kind']}" + (f", split {d['split']}" if d["split"] else "") + ")"
    lines = [f"reconstruction on {where}: {d['clips_selected']} of {d['clips_available']} clips"
             + (f", first {d['seconds']:g} s" if d["seconds"] else ""),
             text_table(HEADERS, table_rows(result))]
    if result["settings"]["opus_note"]:
        lines.append(result["settings"]["opus_note"])
    if result["skipped"]:
        lines.append(f"{len(result['skipped'])} file(s) skipped (unreadable or too short)")
    return "\n".join(lines)


def format_markdown(result) -> str:
    from .report import markdown_table

    d = result["data"]
    lines = ["# Reconstruction benchmark", "",
             f"Data: `{d['root']}` ({d['kind']}" + (f", split `{d['split']}`" if d["split"] else "")
             + f"), {d['clips_selected']} of {d['clips_available']} clips"
             + (f", first {d['seconds']:g} s of each" if d["seconds"] else "") + ".",
             "Metrics against each clip at its own rate and channel count; definitions in "
             "docs/METRICS.md. SI-SDR: higher is better; MSD, STFT-D: lower is better.", "",
             markdown_table(HEADERS, table_rows(result))]
    if result["settings"]["opus_note"]:
        lines += ["", result["settings"]["opus_note"]]
    if result["skipped"]:
        lines += ["", "Skipped files:", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines) + "\n"


def run_bench_recon(args) -> dict:
    from .opus import parse_bitrates
    from .report import model_names, torch_threads, write_json, write_text

    opus = parse_bitrates(args.opus) if args.opus else None

    def progress(done, total):
        if sys.stderr.isatty():
            print(f"\r{done}/{total} clips", end="" if done < total else "\n", file=sys.stderr)

    with torch_threads(args.threads):
        result = bench_recon(args.data, model_names(args), split=args.split,
                             max_clips=args.max_clips, seconds=args.seconds, opus=opus,
                             progress=progress)
    print(format_text(result))
    if args.json:
        print(f"results written to {write_json(args.json, result)}")
    if args.markdown:
        print(f"markdown written to {write_text(args.markdown, format_markdown(result))}")
    return result
