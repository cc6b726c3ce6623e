"""Calibration of the v3 head (issue 22, step 1): which prediction errors still sound right?

The oracle study (benchmarks/oracle_harmonic.py) fed the synthesis head the exact analysis of
its input. Here the same analysis is given with controlled errors, and each row is scored as
``star bench recon`` scores a model (FSC, MSD, level). The errors are measured with the
functions the stage-1 trainer logs (``star_plugin.analysis``: envelope / fine structure /
loudness in dB, partials in dB, f0 in cents), so the thresholds found here are the stage-1
targets, read in the same units as the training curves.

Paths (all through ``star_plugin.synthesis``):

* M: magnitude only (the head's residual channel = the input's magnitude, comb silent), with
  the phase rule ``centre`` (each bin at its own centre frequency), ``peak`` (each bin at its
  peak's frequency, own running phase: the oracle study's B1) or ``locked`` (the
  ``PeakLockedHead`` rule: each bin takes its peak's phase);
* C: comb + residual through ``PeakLockedHead.forward``: YIN f0 as the pitch code, the
  harmonic envelope = the input's magnitude (3-bin maximum) on voiced frames, the residual =
  the input's magnitude minus the comb's (>= 0).

Errors: M: iid noise on the log magnitude (``fine``), the fine structure's contrast shrunk
around the envelope (``contrast``: what an under-trained decoder does), a smooth random field
on the envelope (``envelope``), each with every frame's loudness kept; a smooth random gain
per frame (``loudness``); C: iid noise on the harmonic envelope (``partials``), f0
off by a constant (``f0``), noise on the residual (``residual``).

    python benchmarks/calibrate_v3.py data/corpus-v2 --clips 16 \
        --out benchmarks/calibrate_v3.json --png docs/training/calibrate_v3.png
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from oracle_harmonic import pitched_test_items  # noqa: E402

from star_plugin.analysis import (DB, FrameAnalysis, analyse, f0_error_cents,  # noqa: E402
                                  magnitude_errors, partial_error_db, power_envelope)
from star_plugin.bench.recon import ReferenceScorer, clip_subsets  # noqa: E402
from star_plugin.bench.report import finite_stats, iter_clips  # noqa: E402
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.pitch import f0_to_code  # noqa: E402
from star_plugin.spectral import ISTFTSynthesis  # noqa: E402
from star_plugin.synthesis import (RESIDUAL_OFFSET, TWO_PI,  # noqa: E402
                                   PeakLockedHead, peak_frequency, peak_locked_phase,
                                   peak_owner, wrap_phase)

SR, N_FFT, HOP, HARMONICS = 44100, 1024, 256, 64
TARGET_FSC, TARGET_LEVEL_DB = 0.35, 1.5
GRID = {  # family -> error sizes (dB, or cents for f0; contrast: the fraction kept)
    "fine": (2.0, 4.0, 6.0, 9.0, 12.0),
    "contrast": (0.75, 0.5, 0.3, 0.15),
    "envelope": (2.0, 4.0, 8.0),
    "partials": (3.0, 6.0, 10.0, 15.0),
    "f0": (10.0, 25.0, 50.0, 100.0),
    "residual": (3.0, 6.0, 10.0),
    "loudness": (1.0, 2.0, 4.0),
}


def render_magnitude(head: PeakLockedHead, magnitude: torch.Tensor, rule: str) -> torch.Tensor:
    """(1, bins, t) magnitude -> raw head audio (1, 1, t * hop) with the phase ``rule``."""
    previous = torch.zeros(1, head.bins, 1)
    if rule == "locked":
        phase, _ = peak_locked_phase(magnitude, previous, HOP, N_FFT)
    else:
        if rule == "centre":
            frequency = torch.arange(head.bins, dtype=torch.float64)[None, :, None].expand_as(magnitude)
        else:
            logmag = torch.log(magnitude + 1e-9)
            frequency = peak_frequency(logmag, peak_owner(logmag)).double()
        phase = wrap_phase(torch.cumsum((TWO_PI * HOP / N_FFT) * frequency, -1)).float()
    spectrum = head._from_centre(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
    return ISTFTSynthesis(N_FFT, HOP)(spectrum)


def residual_channel(magnitude: torch.Tensor) -> torch.Tensor:
    """The head's residual log-magnitude channel for a wanted magnitude."""
    return torch.where(magnitude > 1e-12, torch.log(magnitude.clamp(min=1e-12)) + RESIDUAL_OFFSET,
                       torch.full_like(magnitude, -30.0))


def envelope_channel(magnitude: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
    """The ideal harmonic envelope: the input's magnitude through a 3-bin maximum (so reading
    it between two bins gives the lobe's top), on voiced frames; silent elsewhere."""
    top = torch.nn.functional.max_pool1d(magnitude.transpose(1, 2), 3, 1, 1).transpose(1, 2)
    return torch.where(voiced, residual_channel(top), torch.full_like(top, -30.0))


def comb_input(residual_mag, envelope, f0):
    return torch.cat([residual_channel(residual_mag), envelope, torch.zeros_like(f0),
                      f0_to_code(f0)], dim=1)


def smooth_field(shape, sigma_db, generator, bins=9, frames=5):
    """A random field smooth over ``bins`` x ``frames``, std ``sigma_db`` (in natural log)."""
    noise = torch.randn(shape, generator=generator)[:, None]
    kernel = torch.ones(1, 1, bins, frames) / (bins * frames)
    field = torch.nn.functional.conv2d(noise, kernel, padding=(bins // 2, frames // 2))[:, 0]
    return field / field.std().clamp(min=1e-9) * (sigma_db / DB)


def rows_for_clip(head: PeakLockedHead, target: FrameAnalysis, seed: int):
    """Yield (row name, family, size, raw audio, measured errors) for one clip."""
    g = torch.Generator().manual_seed(seed)
    mag = target.magnitude
    logm = torch.log(mag + 1e-9)   # errors are put on the magnitude, not on the floored log

    def measured_m(m):
        return {k: float(v) for k, v in magnitude_errors(m, target).items()}
    for rule in ("centre", "peak", "locked"):
        yield f"M {rule}: input magnitude", "M", 0.0, render_magnitude(head, mag, rule), \
            measured_m(mag)
    env = power_envelope(mag)

    def level_kept(m):
        """The same loudness per frame as the input: the family's error alone (the loudness
        is a target of its own, the ``loudness`` rows)."""
        return m * (mag.pow(2).sum(1, keepdim=True) / m.pow(2).sum(1, keepdim=True).clamp(min=1e-30)).sqrt()

    def m_row(label, family, size, m):
        return label, family, size, render_magnitude(head, m, "locked"), measured_m(m)
    for size in GRID["fine"]:
        m = level_kept(torch.exp(logm + torch.randn(mag.shape, generator=g) * (size / DB)))
        yield m_row(f"M locked, fine noise {size:g} dB", "fine", size, m)
    for keep in GRID["contrast"]:
        yield m_row(f"M locked, contrast x{keep:g}", "contrast", keep,
                    level_kept(torch.exp(env + keep * (logm - env))))
    for size in GRID["envelope"]:
        m = level_kept(torch.exp(logm + smooth_field(mag.shape, size, g)))
        yield m_row(f"M locked, envelope field {size:g} dB", "envelope", size, m)
    for size in GRID["loudness"]:   # a gain per frame, smooth over 5 frames (the level moves)
        gain = smooth_field((1, 1, mag.shape[-1]), size, g, bins=1)
        yield m_row(f"M locked, loudness field {size:g} dB", "loudness", size, mag * torch.exp(gain))
    # the comb path
    envelope = envelope_channel(mag, target.voiced)
    x = comb_input(torch.zeros_like(mag), envelope, target.f0)
    comb = head.magnitude(x)[0]
    residual = (mag - comb).clamp(min=0)

    def run_c(res, f0, env):
        x = comb_input(res, env, f0)
        with torch.no_grad():
            audio = head(x)
            total, _, drawn = head.magnitude(x)
        errors = {**measured_m(total), "partial_db": float(partial_error_db(drawn, target)),
                  "head_f0_cents": float(f0_error_cents(head.f0(x), target))}
        return audio, errors
    yield ("C comb + residual", "C", 0.0, *run_c(residual, target.f0, envelope))
    yield ("C comb only", "C", 0.0, *run_c(torch.zeros_like(residual), target.f0, envelope))
    for size in GRID["partials"]:   # noise on the envelope: the partials' peaks move by ~size
        noisy = envelope + torch.randn(envelope.shape, generator=g) * (size / DB)
        yield (f"C, envelope noise {size:g} dB", "partials", size, *run_c(residual, target.f0, noisy))
    for cents in GRID["f0"]:
        yield (f"C, f0 +{cents:g} cents", "f0", cents,
               *run_c(residual, target.f0 * 2 ** (cents / 1200), envelope))
    for size in GRID["residual"]:
        noisy = residual * torch.exp(torch.randn(residual.shape, generator=g) * (size / DB))
        yield (f"C, residual noise {size:g} dB", "residual", size, *run_c(noisy, target.f0, envelope))


ERROR_KEYS = ("envelope_db", "fine_db", "loudness_db", "partial_db", "head_f0_cents")
SCORE_KEYS = ("fsc", "msd", "level_db", "stft_d")


def thresholds(summary, subset="pitched"):
    """Per error family: the largest measured error with FSC >= 0.35 and |level| <= 1.5 dB
    (linear interpolation between grid points), in the unit of its main measure."""
    measure = {"fine": "fine_db", "contrast": "fine_db", "envelope": "envelope_db",
               "loudness": "loudness_db", "partials": "partial_db", "f0": "head_f0_cents",
               "residual": "fine_db"}
    out = {}
    for family, key in measure.items():
        points = sorted((s["errors"][key], s[subset]["fsc"], abs(s[subset]["level_db"]))
                        for s in summary.values() if s["family"] == family)
        ok = [p for p in points if p[1] >= TARGET_FSC and p[2] <= TARGET_LEVEL_DB]
        bad = [p for p in points if not (p[1] >= TARGET_FSC and p[2] <= TARGET_LEVEL_DB)]
        if not ok:
            out[family] = {"measure": key, "max_error": None, "note": "fails at the smallest error tried"}
            continue
        best = max(ok)
        above = [p for p in bad if p[0] > best[0]]
        value = best[0]
        if above:  # interpolate FSC down to the target between best and the next failing point
            nxt = min(above)
            if nxt[1] < TARGET_FSC < best[1]:
                value = best[0] + (best[1] - TARGET_FSC) / (best[1] - nxt[1]) * (nxt[0] - best[0])
        out[family] = {"measure": key, "max_error": round(value, 2),
                       "note": "all grid points pass" if not above else ""}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/calibrate_v3.json"))
    p.add_argument("--png", type=Path, default=None)
    p.add_argument("--no-opus", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    head = PeakLockedHead(N_FFT, HOP, SR, HARMONICS)
    tools = None
    if not args.no_opus:
        from star_plugin.bench.opus import opus_roundtrip, opus_tools
        tools = opus_tools()
    items, n_pitched = pitched_test_items(args.data, args.clips)
    per_row, started, examples = {}, time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="calibrate-v3-") as tmp:
        for index, clip in enumerate(iter_clips(items, args.seconds)):
            batch, layout = to_model_batch(clip.audio, clip.rate, SR, 1)
            n = batch.shape[-1]
            frames = (n + N_FFT) // HOP + 1
            padded = torch.nn.functional.pad(batch, (0, frames * HOP - n))
            target = analyse(padded, SR, N_FFT, HOP, HARMONICS, head.drawable_hz)
            score = ReferenceScorer(clip.audio, clip.rate)
            subsets = clip_subsets(clip.item.labels, True)
            outputs = {}
            for name, family, size, raw, errors in rows_for_clip(head, target, seed=index):
                audio = raw[..., head.delay:head.delay + n]
                est = from_model_batch(audio, layout)
                m = score(est)
                per_row.setdefault(name, {"family": family, "size": size, "clips": []})["clips"].append(
                    {"id": clip.item.id, "subsets": subsets, **errors,
                     **{k: m[k] for k in SCORE_KEYS}})
                outputs[name] = est
            if tools is not None:
                decoded, _ = opus_roundtrip(clip.audio, clip.rate, 12, tmp, tools)
                m = score(decoded)
                per_row.setdefault("opus 12 kb/s", {"family": "opus", "size": 12, "clips": []})[
                    "clips"].append({"id": clip.item.id, "subsets": subsets,
                                     **{k: m[k] for k in SCORE_KEYS}})
            examples.append((clip.item.id, clip.audio, outputs))
            print(f"{index + 1}/{len(items)} {clip.item.id}: M locked FSC "
                  f"{per_row['M locked: input magnitude']['clips'][-1]['fsc']:.3f}, level "
                  f"{per_row['M locked: input magnitude']['clips'][-1]['level_db']:+.2f} dB",
                  file=sys.stderr, flush=True)
    summary = {}
    for name, row in per_row.items():
        s = {"family": row["family"], "size": row["size"],
             "errors": {k: finite_stats([c.get(k) for c in row["clips"]])["mean"]
                        for k in ERROR_KEYS}}
        for subset in ("pitched", "real", "synthesised"):
            members = [c for c in row["clips"] if subset in c["subsets"]]
            s[subset] = {"n": len(members), **{k: finite_stats([c[k] for c in members])["mean"]
                                               for k in SCORE_KEYS}}
        summary[name] = s
    result = {"benchmark": "calibrate_v3", "data": str(args.data), "clips": len(examples),
              "pitched_test_clips": n_pitched, "seconds": args.seconds,
              "targets": {"fsc": TARGET_FSC, "level_db": TARGET_LEVEL_DB},
              "summary": summary, "thresholds": thresholds(summary),
              "thresholds_real": thresholds(summary, "real"),
              "elapsed_s": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print_table(result)
    if args.png:
        save_png(args.png, examples, summary)
    return result


def _fmt(v, spec):
    return format(v, spec) if v is not None and not (isinstance(v, float) and math.isnan(v)) else "-"


def print_table(result):
    print(f"{'row':40s} {'env dB':>6s} {'fine dB':>7s} {'loud dB':>7s} {'part dB':>7s} "
          f"{'f0 c':>5s} | {'FSC':>6s} {'MSD':>6s} {'level':>6s} | {'real FSC':>8s} {'level':>6s}")
    for name, s in result["summary"].items():
        e, pt, rl = s["errors"], s["pitched"], s["real"]
        print(f"{name:40s} {_fmt(e['envelope_db'], '6.2f')} {_fmt(e['fine_db'], '7.2f')} "
              f"{_fmt(e['loudness_db'], '7.2f')} {_fmt(e['partial_db'], '7.2f')} "
              f"{_fmt(e['head_f0_cents'], '5.0f')} | {_fmt(pt['fsc'], '6.3f')} {_fmt(pt['msd'], '6.3f')} "
              f"{_fmt(pt['level_db'], '+6.2f')} | {_fmt(rl['fsc'], '8.3f')} {_fmt(rl['level_db'], '+6.2f')}")
    print("thresholds (pitched):", json.dumps(result["thresholds"]))
    print("thresholds (real):", json.dumps(result["thresholds_real"]))


def save_png(path, examples, summary):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from star_plugin.metrics import spectrogram_db
    clip_id, audio, outputs = examples[0]
    panels = [("input", audio), *[(n, outputs[n]) for n in
              ("M centre: input magnitude", "M peak: input magnitude", "M locked: input magnitude",
               "C comb + residual", "M locked, contrast x0.5")]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.5), sharey=True)
    for ax, (title, a) in zip(axes, panels):
        s = spectrogram_db(np.atleast_2d(np.asarray(a)), n_fft=2048, hop=256)
        ax.imshow(s, origin="lower", aspect="auto", vmin=s.max() - 80, vmax=s.max(),
                  cmap="magma", extent=[0, a.shape[-1] / SR, 0, SR / 2])
        ax.set_ylim(0, 4000)
        fsc = "" if title == "input" else f"\nFSC {summary[title]['pitched']['fsc']:.2f} (mean)"
        ax.set_title(title + fsc, fontsize=9)
    fig.suptitle(clip_id)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    print(f"png: {path}")


if __name__ == "__main__":
    main()
