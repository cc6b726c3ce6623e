"""``star bench recon``: reconstruction quality of one or more models on a corpus split or an
audio folder, with Opus reference rows. Definitions in docs/METRICS.md.

Every clip is read once; each model encodes it (posterior mean) and decodes it, and the
reconstruction is brought back to the clip's own rate and channel count (``convert``) and
scored against the clip itself, so rows of models with different rates, and the Opus rows, share
one reference. Per clip: SI-SDR (dB), multi-scale mel distance (MSD), multi-resolution STFT
distance (STFT-D), and what the ear hears: fine-structure correlation (FSC, pitch and
harmonics), level error (dB) and hop-rate buzz of the output beside the input's; per row: mean
and median over clips, overall and per clip subset (all / real / synthesised / pitched, from
the corpus labels). Model rows also give the latent rate: the KL in bits/s, and the nominal
latent size (channels x frame rate, values/s).
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

#: Per-clip metrics, in table order. ``buzz``/``buzz_input``: hop-rate buzz of the output and
#: of the input at the row's rates; ``buzz_ratio``: their quotient (output / input).
METRICS = ("si_sdr", "msd", "stft_d", "fsc", "f0_cents", "level_db", "buzz", "buzz_input",
           "buzz_ratio")


class ReferenceScorer:
    """The metrics of ``star_plugin.metrics`` against one fixed reference: the reference's
    features are computed once and shared by every row (models, Opus bitrates), about half
    the work per row; so is the input's buzz figure, once per set of rates.

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
        self._input_buzz = {}

    def __call__(self, estimate, rates=None) -> dict:
        """SI-SDR (dB), MSD, STFT-D, FSC, level error (dB) and, when ``rates`` (Hz) are
        given, the hop-rate buzz of ``estimate`` (same shape as the reference) and of the
        reference; without rates the three buzz figures are nan."""
        import torch

        from ..metrics import (fine_structure_correlation, level_error_db, log_mel_features,
                               mel_distance_from, pitch_error_cents, si_sdr, stft_distance_from,
                               stft_magnitudes)

        e = torch.from_numpy(estimate.astype("float32", copy=False))
        with torch.no_grad():
            msd = mel_distance_from(log_mel_features(e, self.sample_rate), self.mel)
            stft = stft_distance_from(stft_magnitudes(e), self.mags)
        return {"si_sdr": si_sdr(estimate, self.reference),
                "msd": float(msd), "stft_d": float(stft),
                "fsc": fine_structure_correlation(estimate, self.reference, self.sample_rate),
                "f0_cents": pitch_error_cents(estimate, self.reference, self.sample_rate),
                "level_db": level_error_db(estimate, self.reference),
                **self.buzz(estimate, rates)}

    def buzz(self, estimate, rates) -> dict:
        """``buzz`` (output), ``buzz_input`` (the reference, cached per rates) and
        ``buzz_ratio`` = output / input; nan where a figure is undefined."""
        import math

        from ..metrics import hop_buzz

        nan = float("nan")
        if not rates:
            return {"buzz": nan, "buzz_input": nan, "buzz_ratio": nan}
        key = tuple(float(r) for r in rates)
        if key not in self._input_buzz:
            self._input_buzz[key] = hop_buzz(self.reference, self.sample_rate, key)
        b_in = self._input_buzz[key]
        b_out = hop_buzz(estimate, self.sample_rate, key)
        ok = math.isfinite(b_in) and math.isfinite(b_out) and b_in > 0
        return {"buzz": b_out, "buzz_input": b_in, "buzz_ratio": b_out / b_in if ok else nan}


def clip_metrics(estimate, reference, sample_rate: int, rates=None) -> dict:
    """Every per-clip metric (``METRICS``) of one clip; buzz only when ``rates`` (Hz) are given.

    ``estimate``, ``reference``: numpy (channels, samples) at ``sample_rate``, equal shapes.
    """
    return ReferenceScorer(reference, sample_rate)(estimate, rates)


# ----------------------------------------------------------------------------- clip subsets

#: Subsets of a corpus split, from the manifest labels (a plain folder has only "all").
SUBSETS = ("all", "real", "synthesised", "pitched")
PITCHED_SOURCES = ("instrument", "speech", "sample")
PITCHED_FAMILIES = ("voice", "music")
#: No single pitch: drums and percussion, noises, effects; lmms' "misc" folder is applause,
#: breaths and hits. These win over a pitched source (a GM drum kit is an "instrument").
UNPITCHED_FAMILIES = ("drums", "percussive", "sound effects", "texture", "misc")
SUBSET_RULES = {
    "all": "every clip",
    "real": "labels.source == recording",
    "synthesised": "labels.source present and not recording",
    "pitched": (f"source {'/'.join(PITCHED_SOURCES)} or family {'/'.join(PITCHED_FAMILIES)}, "
                f"family not {'/'.join(UNPITCHED_FAMILIES)}"),
}


def is_pitched(labels: dict) -> bool:
    """The "pitched" rule of ``SUBSET_RULES`` on one clip's manifest labels."""
    source, family = labels.get("source"), labels.get("family")
    if family in UNPITCHED_FAMILIES:
        return False
    return source in PITCHED_SOURCES or family in PITCHED_FAMILIES


def clip_subsets(labels: dict, corpus: bool) -> list:
    """The subsets one clip belongs to; a clip without a source label is neither real nor
    synthesised (the corpus does not say)."""
    if not corpus:
        return ["all"]
    source = labels.get("source")
    out = ["all"]
    if source is not None:
        out.append("real" if source == "recording" else "synthesised")
    if is_pitched(labels):
        out.append("pitched")
    return out


def summarise(clips) -> dict:
    """Mean and median of every metric over ``clips`` (finite values only)."""
    from .report import finite_stats

    return {metric: finite_stats([c.get(metric) for c in clips]) for metric in METRICS}


def subset_summaries(clips, names) -> dict:
    """{subset: {"n_clips", "metrics"}} over the clips of one row that are in each subset."""
    out = {}
    for name in names:
        members = [c for c in clips if name in c["subsets"]]
        out[name] = {"n_clips": len(members), "metrics": summarise(members)}
    return out


def _model_info(name, model) -> dict:
    cfg = model.config
    return {"model": str(name), "name": cfg.name, "family": cfg.family, "backbone": cfg.backbone,
            "causal": cfg.causal, "sample_rate": cfg.sample_rate,
            "audio_channels": cfg.audio_channels, "hop": model.hop,
            "latent_rate_hz": model.latent_rate, "latent_channels": cfg.latent_channels,
            "structure_channels": cfg.structure_channels,
            "nominal_values_per_s": cfg.latent_channels * model.latent_rate,
            "hop_rates_hz": [float(r) for r in cfg.hop_rates]}


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
    from .report import BenchError, check_positive, iter_clips, resolve_data, warn

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
    # Opus has no frame rate of its own: its buzz is read at the first model's rates, so the
    # Opus rows' figures sit beside that model's
    opus_rates = list(loaded[0][1].config.hop_rates) if loaded else []

    rows = {}
    for name, model in loaded:
        rows[name] = {"kind": "model", "label": name, "info": _model_info(name, model),
                      "rates": list(model.config.hop_rates), "clips": [], "kl": []}
    for kbps in opus:
        rows[f"opus {kbps:g}"] = {"kind": "opus", "label": f"opus {kbps:g} kb/s",
                                  "kbps": kbps, "rates": opus_rates, "clips": [], "bits": 0,
                                  "seconds": 0.0, "lags": []}
    corpus = dataset.kind == "corpus"
    subset_names = list(SUBSETS) if corpus else ["all"]
    subset_counts = dict.fromkeys(subset_names, 0)

    skipped = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="star-bench-opus-") as tmp:
        for index, clip in enumerate(iter_clips(dataset.items, seconds, skipped)):
            subsets = clip_subsets(clip.item.labels, corpus)
            for name in subsets:
                subset_counts[name] += 1
            base = {"id": clip.item.id, "rate": clip.rate, "channels": clip.audio.shape[0],
                    "seconds": clip.audio.shape[1] / clip.rate, "subsets": subsets}
            score = ReferenceScorer(clip.audio, clip.rate)
            for name, model in loaded:
                recon, kl = reconstruct_clip(model, clip.audio, clip.rate)
                rows[name]["clips"].append({**base, **score(recon, rows[name]["rates"])})
                rows[name]["kl"].append(kl)
            for kbps in opus:
                row = rows[f"opus {kbps:g}"]
                try:
                    decoded, size = opus_roundtrip(clip.audio, clip.rate, kbps, tmp, tools)
                except OpusError as exc:
                    warn(f"'{clip.item.path}': {exc}; no Opus {kbps:g} kb/s score for it")
                    continue
                row["clips"].append({**base, **score(decoded, opus_rates), "bytes": size})
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
    for row in rows.values():
        clips = row["clips"]
        entry = {"row": row["label"], "kind": row["kind"], "n_clips": len(clips),
                 "metrics": summarise(clips), "buzz_rates_hz": row["rates"],
                 "subsets": subset_summaries(clips, subset_names), "clips": clips}
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
                     "reference": "each clip at its own rate and channel count",
                     "opus_buzz_rates_hz": opus_rates if opus else None,
                     "opus_buzz_rates_from": loaded[0][0] if opus and loaded else None},
        "subsets": {name: {"rule": SUBSET_RULES[name], "n_clips": subset_counts[name]}
                    for name in subset_names},
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


SUBSET_HEADERS = ["model/codec", "n", "SI-SDR dB", "MSD", "STFT-D", "FSC", "f0 err cents",
                  "level dB", "buzz out", "buzz in", "buzz out/in"]
SUBSET_COLUMNS = (("si_sdr", 2), ("msd", 3), ("stft_d", 3), ("fsc", 3), ("f0_cents", 0),
                  ("level_db", 2),
                  ("buzz", 2), ("buzz_input", 2), ("buzz_ratio", 2))
SUBSET_NOTE = ("Per subset, the mean over its clips. FSC (fine-structure correlation): 1 = the "
               "input's harmonics, 0 = unrelated; f0 err cents: median pitch error over the "
               "input's voiced frames (YIN; 100 = a semitone); level dB: output RMS minus input RMS; buzz: "
               "hop-rate buzz of the output and of the input, out/in the mean of the per-clip "
               "ratios (no hop-rate comb: <= 2).")


def subset_table_rows(result, name: str) -> list:
    """One line per row of ``result``: the means over the clips of subset ``name``."""
    from .report import fmt

    out = []
    for row in result["rows"]:
        sub = row["subsets"][name]
        m = sub["metrics"]
        out.append([row["row"], str(sub["n_clips"]),
                     *(fmt(m[k]["mean"], d) for k, d in SUBSET_COLUMNS)])
    return out


def subset_heading(result, name: str) -> str:
    info = result["subsets"][name]
    count = f"{info['n_clips']} clips" if info["n_clips"] else "no clips"
    return f"{name}: {count} ({info['rule']})"


def opus_rates_note(result):
    """Which rates the Opus rows' buzz was read at, or None without Opus rows."""
    s = result["settings"]
    if not s.get("opus_buzz_rates_hz"):
        return None
    rates = ", ".join(f"{r:.1f}" for r in s["opus_buzz_rates_hz"])
    return (f"Opus rows: buzz at the rates of the first model "
            f"({s['opus_buzz_rates_from']}: {rates} Hz).")


def subset_text(result) -> list:
    """The per-subset tables as text lines (a subset with no clip gets its heading only)."""
    from .report import text_table

    lines = ["", SUBSET_NOTE]
    note = opus_rates_note(result)
    if note:
        lines.append(note)
    for name in result["subsets"]:
        lines += ["", subset_heading(result, name)]
        if result["subsets"][name]["n_clips"]:
            lines.append(text_table(SUBSET_HEADERS, subset_table_rows(result, name)))
    return lines


def subset_markdown(result) -> list:
    """The per-subset tables as markdown lines, one section per subset."""
    from .report import markdown_table

    lines = ["", "## By clip subset", "", SUBSET_NOTE]
    note = opus_rates_note(result)
    if note:
        lines += ["", note]
    for name in result["subsets"]:
        lines += ["", f"### {subset_heading(result, name)}"]
        if result["subsets"][name]["n_clips"]:
            lines += ["", markdown_table(SUBSET_HEADERS, subset_table_rows(result, name))]
    return lines


def format_text(result) -> str:
    from .report import text_table

    d = result["data"]
    where = f"{d['root']} ({d['kind']}" + (f", split {d['split']}" if d["split"] else "") + ")"
    lines = [f"reconstruction on {where}: {d['clips_selected']} of {d['clips_available']} clips"
             + (f", first {d['seconds']:g} s" if d["seconds"] else ""),
             text_table(HEADERS, table_rows(result))]
    lines += subset_text(result)
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
             "docs/METRICS.md. SI-SDR, FSC: higher is better; MSD, STFT-D: lower is better; "
             "level error: 0 is best.", "",
             markdown_table(HEADERS, table_rows(result))]
    lines += subset_markdown(result)
    if result["settings"]["opus_note"]:
        lines += ["", result["settings"]["opus_note"]]
    if result["skipped"]:
        lines += ["", "Skipped files:", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in result["skipped"]]
    return "\n".join(lines) + "\n"


def run_bench_recon(args) -> dict:
    from .opus import parse_bitrates
    from .report import guard_report_files, model_names, torch_threads, write_json, write_text

    guard_report_files(args)  # the output rule, before any measuring
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
