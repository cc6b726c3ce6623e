"""Oracle study of the harmonic synthesis head (star_plugin/synthesis.py, HarmonicHead).

Can the head itself reach the issue's targets (pitched FSC >= 0.35, level within +-1.5 dB,
MSD <= 0.45) when it is given ideal inputs, and which of its inputs matter?

Every row calls the head module of the trained v2p model (``HarmonicHead.forward``: the same
phase-vocoder accumulation, comb scatter, iSTFT and overlap-add; the head has no weights) with
a head input built here, channel by channel, in the layout ``HarmonicHead.split`` reads:
[log magnitude + 3 | atanh(correction / pi) | atanh(offset / pi) | f0 channel | level |
partial logits | pitch code]. The oracle inputs come from the clip itself at the model's
frames (STFTAnalysis n_fft 1024, hop 256: frame j = samples [(j+1) hop - n_fft, (j+1) hop)):

* A   comb only: f0 = YIN at the model frames (``pitch.model_frame_f0``, the training target)
      as the pitch code (correction 0), partial peaks = the input's analysis magnitude at
      h x f0 (max of the two bins around it, as ``pitch.comb_amplitude_distance``), on voiced
      frames; PV magnitude 0. (``A ungated``: amplitudes on every frame.)
* B0  PV only, the input's magnitude, corrections 0 and offsets 0 (bin-centre advance).
* B1  PV only, the input's magnitude, each bin's correction = the frequency of its nearest
      spectral peak (parabolic interpolation on log magnitude), offsets 0: an ideal frequency
      per bin, no true phase.
* B*  PV only, corrections = the input's frame-to-frame phase difference minus the bin
      advance; they telescope to the true phase (a sanity check of alignment and scale,
      not an achievable oracle).
* C0/C1 = A + PV (rule B0/B1) on max(input magnitude - |comb spectrum|, 0).
* v2p: the trained model (encode -> decode, as ``star bench recon``), plus variants where
      its head input has one quantity swapped for the oracle one (``v2p+...`` rows).
* opus 12 kb/s, when opusenc/opusdec are on PATH.

Scored with ``star_plugin.bench.recon.ReferenceScorer`` (FSC, MSD, level, pitch error ...).

    python benchmarks/oracle_harmonic.py data/corpus-v2 --clips 16 \
        --out benchmarks/oracle_harmonic.json --png docs/training/oracle_harmonic.png
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from star_plugin.bench.recon import ReferenceScorer, clip_subsets, is_pitched  # noqa: E402
from star_plugin.bench.report import (DataItem, even_subset, finite_stats,  # noqa: E402
                                      iter_clips)
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.corpus_manifest import audio_path, read_manifest  # noqa: E402
from star_plugin.model_io import load_vae  # noqa: E402
from star_plugin.pitch import (comb_amplitude_distance, f0_to_code,  # noqa: E402
                               model_frame_f0)
from star_plugin.spectral import STFTAnalysis  # noqa: E402
from star_plugin.synthesis import HarmonicHead  # noqa: E402

TWO_PI = 2 * math.pi
ATANH_LIMIT = 1 - 1e-6
SILENT_LOG = -30.0          # log-magnitude channel value for "nothing" (exp(-33))
METRICS = ("fsc", "msd", "level_db", "abs_level_db", "f0_cents", "si_sdr", "stft_d", "head_f0_cents",
           "comb_amp_dist")
TARGETS = {"fsc": 0.35, "msd": 0.45, "level_db": 1.5}


def princarg(x):
    return x - TWO_PI * torch.round(x / TWO_PI)


def atanh_over_pi(angle):
    """The head's bounded channel value c with pi * tanh(c) = angle (angle in (-pi, pi))."""
    return torch.atanh((angle / math.pi).clamp(-ATANH_LIMIT, ATANH_LIMIT))


class Oracle:
    """Everything one clip's oracle head inputs need, at the model's head frames."""

    def __init__(self, head: HarmonicHead, audio: torch.Tensor, frames: int):
        # audio: (1, 1, frames * hop) at the model rate, already padded like VAE.encode
        self.head = head
        self.frames = frames
        n_fft, hop, sr = head.n_fft, head.hop, head.sample_rate
        self.bins = head.bins
        with torch.no_grad():
            spec = STFTAnalysis(n_fft, hop)(audio)[..., :frames]
        re, im = spec.chunk(2, dim=1)
        self.mag = torch.sqrt(re * re + im * im)                   # (1, bins, t)
        k = torch.arange(self.bins, dtype=torch.float64)[None, :, None]
        # phase counted from the frame centre (the head's convention): + pi k
        self.centre_phase = torch.atan2(im, re).double() + math.pi * k
        f0, voiced, dip = model_frame_f0(audio[:, 0], sr, n_fft, hop, frames)
        self.f0, self.voiced, self.dip = f0[:, None, :], voiced[:, None, :], dip[:, None, :]
        # partial amplitudes: comb_amplitude_distance's target
        h = head.partial[None]                                      # (1, H, 1)
        position = h * self.f0 * (n_fft / sr)
        below = position.floor().clamp(0, self.bins - 1).long()
        above = (below + 1).clamp(max=self.bins - 1)
        target = torch.maximum(self.mag.gather(1, below), self.mag.gather(1, above))
        self.partial_target = torch.where(position < self.bins - 1, target,
                                          torch.zeros_like(target))

    # ------------------------------------------------------------------ channel builders
    def comb_channels(self, gate_voiced=True, f0=None, code=None):
        """(f0 channel, level, logits, code) giving peaks = target x audible."""
        target = self.partial_target * (self.voiced.float() if gate_voiced else 1.0)
        total = target.sum(1, keepdim=True)
        level = 4.0 + torch.log(total.clamp(min=1e-12) / self.head.peak)
        clamped = float((level - 4.0 > 4.0).float().mean())
        level = torch.where(total > 1e-9, level, torch.full_like(level, -40.0))
        logits = torch.log(target + 1e-12)
        code = f0_to_code(self.f0 if f0 is None else f0) if code is None else code
        return torch.zeros_like(level), level, logits, code, clamped

    def zero_comb(self):
        z = torch.zeros(1, 1, self.frames)
        return z, torch.full_like(z, -40.0), torch.zeros(1, self.head.harmonics, self.frames), z

    def pv_channels(self, magnitude, rule):
        logmag = torch.log(magnitude.clamp(min=1e-14)) + 3.0
        logmag = torch.where(magnitude > 1e-14, logmag, torch.full_like(logmag, SILENT_LOG))
        offset = torch.zeros_like(magnitude)
        if rule == "zero":
            corr = torch.zeros_like(magnitude)
        elif rule == "peak":
            corr = atanh_over_pi(self.peak_corrections())
        elif rule == "true":
            advance = self.head.advance[None]                       # (1, bins, 1) float64
            prev = torch.nn.functional.pad(self.centre_phase, (1, 0))[..., :-1]
            corr = atanh_over_pi(princarg(self.centre_phase - prev - advance).float())
        else:
            raise ValueError(rule)
        return logmag, corr, offset

    def peak_corrections(self):
        """Per bin: 2 pi hop / n_fft x (nearest peak's frequency in bins - k), wrapped."""
        if hasattr(self, "_peak_corr"):
            return self._peak_corr
        logm = torch.log(self.mag[0].double().clamp(min=1e-12)).numpy()   # (bins, t)
        bins, t = logm.shape
        out = np.zeros((bins, t))
        k = np.arange(bins)
        scale = TWO_PI * self.head.hop / self.head.n_fft
        for j in range(t):
            m = logm[:, j]
            inner = np.where((m[1:-1] > m[:-2]) & (m[1:-1] >= m[2:]))[0] + 1
            if inner.size == 0:
                continue
            a, b, c = m[inner - 1], m[inner], m[inner + 1]
            denom = a - 2 * b + c
            shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(
                np.abs(denom) > 1e-12, denom, 1.0), 0.0).clip(-0.5, 0.5)
            peaks = inner + shift
            # nearest peak per bin (region of influence)
            idx = np.searchsorted(peaks, k).clip(1, peaks.size - 1) if peaks.size > 1 \
                else np.zeros_like(k)
            if peaks.size > 1:
                left, right = peaks[idx - 1], peaks[idx]
                nearest = np.where(np.abs(k - left) <= np.abs(right - k), left, right)
            else:
                nearest = np.full(bins, peaks[0])
            out[:, j] = scale * (nearest - k)
        out = out - TWO_PI * np.round(out / TWO_PI)
        self._peak_corr = torch.from_numpy(out).float()[None]
        return self._peak_corr

    def comb_magnitude(self, f0ch, level, logits, code):
        """|comb spectrum| on every bin (the head's own _comb)."""
        head = self.head
        x = assemble(head, *self.pv_channels(torch.zeros_like(self.mag), "zero"),
                     f0ch, level, logits, code)
        re, im, _ = head._comb(head.f0(x), level, logits, torch.zeros(1, 1, 1))
        mag = torch.sqrt(re * re + im * im)
        return torch.nn.functional.pad(mag, (0, 0, 0, self.bins - head.comb_bins))


def assemble(head, logmag, corr, offset, f0ch, level, logits, code):
    x = torch.cat([logmag, corr, offset, f0ch, level, logits, code], dim=1)
    assert x.shape[1] == 3 * head.bins + head.extra_channels + 1
    return x


def run_head(head, x, n):
    with torch.no_grad():
        audio = head(x)
    delay = head.delay
    return audio[..., delay:delay + n]


def find_head(model) -> HarmonicHead:
    heads = [m for m in model.modules() if isinstance(m, HarmonicHead)]
    assert len(heads) == 1, heads
    return heads[0]


def head_f0_cents(head, x, oracle: Oracle) -> float:
    """Median |head f0 - YIN f0| in cents over voiced frames (the head's input, not its output)."""
    f0 = head.f0(x)[:, :, :oracle.frames]
    keep = oracle.voiced
    if not bool(keep.any()):
        return float("nan")
    return float((1200 * torch.log2(f0 / oracle.f0).abs())[keep].median())


def comb_amp_dist(head, x, audio_rows) -> float:
    frequency, peaks = head.partial_peaks(x)
    return float(comb_amplitude_distance(frequency, peaks, audio_rows, head.sample_rate,
                                         head.n_fft, head.hop))


# ---------------------------------------------------------------------------- clip selection

def pitched_test_items(data: Path, n: int):
    entries = read_manifest(data, "test")
    items = [DataItem(str(e["id"]), audio_path(data, e), dict(e.get("labels") or {}))
             for e in entries if is_pitched(dict(e.get("labels") or {}))]
    return even_subset(items, n), len(items)


# ---------------------------------------------------------------------------- main

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--model", default="training/checkpoints/default-v2p")
    p.add_argument("--out", type=Path, default=Path("benchmarks/oracle_harmonic.json"))
    p.add_argument("--png", type=Path, default=None)
    p.add_argument("--no-opus", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    model = load_vae(args.model)
    cfg = model.config
    head = find_head(model)
    assert head.code_input, "expects a pitch-channel (v2p) model"
    sr = cfg.sample_rate
    tools = None
    if not args.no_opus:
        from star_plugin.bench.opus import opus_roundtrip, opus_tools
        tools = opus_tools()

    items, n_pitched = pitched_test_items(args.data, args.clips)
    rows = {}
    clip_info = []
    png_candidates = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="oracle-harmonic-") as tmp:
        for index, clip in enumerate(iter_clips(items, args.seconds)):
            batch, layout = to_model_batch(clip.audio, clip.rate, sr, cfg.audio_channels)
            n = batch.shape[-1]
            latent_frames = (n + model.synthesis_delay + model.hop - 1) // model.hop
            padded = torch.nn.functional.pad(batch, (0, latent_frames * model.hop - n))
            frames = padded.shape[-1] // head.hop
            o = Oracle(head, padded, frames)
            score = ReferenceScorer(clip.audio, clip.rate)
            subsets = clip_subsets(clip.item.labels, True)
            info = {"id": clip.item.id, "rate": clip.rate, "subsets": subsets,
                    "source": clip.item.labels.get("source"),
                    "family": clip.item.labels.get("family"),
                    "instrument": clip.item.labels.get("instrument"),
                    "voiced_fraction": float(o.voiced.float().mean()),
                    "median_f0_hz": float(o.f0[o.voiced].median()) if o.voiced.any() else None}
            outputs = {}

            def add(name, audio_t, x=None, extra=None):
                est = from_model_batch(audio_t, layout)
                m = score(est)
                m = {k: m[k] for k in ("fsc", "msd", "level_db", "f0_cents", "si_sdr",
                                       "stft_d")}
                if x is not None:
                    m["head_f0_cents"] = head_f0_cents(head, x, o)
                    m["comb_amp_dist"] = comb_amp_dist(head, x, batch)
                m["abs_level_db"] = abs(m["level_db"])
                m.update(extra or {})
                rows.setdefault(name, []).append({"id": clip.item.id, "subsets": subsets, **m})
                outputs[name] = est

            zero = torch.zeros_like(o.mag)
            f0ch, level, logits, code, clamped = o.comb_channels(gate_voiced=True)
            info["level_clamped_fraction"] = clamped
            comb = (f0ch, level, logits, code)
            # A: comb only
            xa = assemble(head, *o.pv_channels(zero, "zero"), *comb)
            add("A comb (YIN f0, input partial amps)", run_head(head, xa, n), xa)
            ung = o.comb_channels(gate_voiced=False)[:4]
            xau = assemble(head, *o.pv_channels(zero, "zero"), *ung)
            add("A ungated (amps on unvoiced frames too)", run_head(head, xau, n), xau)
            # B: PV only
            for rule, label in (("zero", "B0 PV (input mag, zero corr)"),
                                ("peak", "B1 PV (input mag, peak-freq corr)"),
                                ("true", "B* PV (true phase; sanity)")):
                xb = assemble(head, *o.pv_channels(o.mag, rule), *o.zero_comb())
                add(label, run_head(head, xb, n))
            # C: comb + residual PV
            residual = (o.mag - o.comb_magnitude(*comb)).clamp(min=0)
            for rule, label in (("zero", "C0 A + PV residual (zero corr)"),
                                ("peak", "C1 A + PV residual (peak-freq corr)")):
                xc = assemble(head, *o.pv_channels(residual, rule), *comb)
                add(label, run_head(head, xc, n), xc)

            # the trained model
            with torch.no_grad():
                latent = model.encode(batch)
                feats = model.decoder.head_input(latent.mean)
                recon = model.decode(latent)
            add("v2p (trained)", recon, feats)
            pv, vf0, vlevel, vlogits = head.split(feats)
            vcode = feats[:, -1:]
            vlog, vcorr, voff = pv.chunk(3, dim=1)
            silent_pv = torch.full_like(vlog, SILENT_LOG)
            x = torch.cat([silent_pv, vcorr, voff, vf0, vlevel, vlogits, vcode], 1)
            add("v2p comb only", run_head(head, x, n), x)
            x = torch.cat([vlog, vcorr, voff, vf0, torch.full_like(vlevel, -40.0), vlogits,
                           vcode], 1)
            add("v2p PV only", run_head(head, x, n))
            # v2p with one quantity swapped for the oracle's
            x = torch.cat([pv, torch.zeros_like(vf0), vlevel, vlogits, code], 1)
            add("v2p + oracle f0", run_head(head, x, n), x)
            x = torch.cat([pv, *comb[:3], code], 1)
            add("v2p + oracle comb (f0, amps)", run_head(head, x, n), x)
            resid_log = o.pv_channels(residual, "zero")[0]
            x = torch.cat([resid_log, vcorr, voff, *comb[:3], code], 1)
            add("v2p phase + oracle comb + oracle residual mag", run_head(head, x, n), x)
            x = torch.cat([o.pv_channels(o.mag, "zero")[0], vcorr, voff,
                           torch.zeros_like(vf0), torch.full_like(vlevel, -40.0), vlogits,
                           vcode], 1)
            add("v2p phase + input mag (no comb)", run_head(head, x, n))
            if tools is not None:
                decoded, _ = opus_roundtrip(clip.audio, clip.rate, 12, tmp, tools)
                m = score(decoded)
                rows.setdefault("opus 12 kb/s", []).append(
                    {"id": clip.item.id, "subsets": subsets,
                     "abs_level_db": abs(m["level_db"]),
                     **{k: m[k] for k in ("fsc", "msd", "level_db", "f0_cents", "si_sdr",
                                          "stft_d")}})
            clip_info.append(info)
            png_candidates.append((info, clip.audio, outputs, o))
            print(f"{index + 1}/{len(items)} {clip.item.id} "
                  f"A {rows['A comb (YIN f0, input partial amps)'][-1]['fsc']:.3f} "
                  f"C0 {rows['C0 A + PV residual (zero corr)'][-1]['fsc']:.3f} "
                  f"v2p {rows['v2p (trained)'][-1]['fsc']:.3f}", file=sys.stderr, flush=True)

    summary = {}
    for name, clips in rows.items():
        summary[name] = {}
        for subset in ("pitched", "real", "synthesised"):
            members = [c for c in clips if subset in c["subsets"]]
            summary[name][subset] = {"n": len(members), **{
                k: finite_stats([c.get(k) for c in members]) for k in METRICS}}
    result = {"benchmark": "oracle_harmonic", "data": str(args.data), "split": "test",
              "pitched_test_clips": n_pitched, "clips": clip_info, "seconds": args.seconds,
              "model": args.model, "head": {"n_fft": head.n_fft, "hop": head.hop,
                                            "harmonics": head.harmonics,
                                            "top_hz": head.top_hz},
              "targets": TARGETS, "summary": summary, "rows": rows,
              "elapsed_s": time.perf_counter() - start}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print_table(summary)
    if args.png:
        save_png(args.png, png_candidates, sr)
    return result


def print_table(summary):
    print(f"{'row':50s} {'n':>3s} {'FSC':>7s} {'MSD':>6s} {'level dB':>9s} {'|level|':>8s}"
          f" {'f0 out c':>8s} {'head f0 c':>9s} {'amp dist':>8s}")
    for subset in ("pitched", "real", "synthesised"):
        print(f"-- {subset}")
        for name, s in summary.items():
            d = s[subset]

            def g(k, stat="mean"):
                v = d[k][stat] if isinstance(d[k], dict) else None
                return float("nan") if v is None else v
            print(f"{name:50s} {d['n']:3d} {g('fsc'):7.3f} {g('msd'):6.3f} "
                  f"{g('level_db'):9.2f} {g('abs_level_db'):8.2f} {g('f0_cents', 'median'):8.0f} "
                  f"{g('head_f0_cents', 'median'):9.1f} {g('comb_amp_dist'):8.3f}")


def save_png(path: Path, candidates, sr):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from star_plugin.metrics import spectrogram_db

    # the clearest pitch: an instrument or voice clip (not speech) with the most voiced
    # frames and the deepest YIN dips
    def key(c):
        info, _, _, o = c
        if not bool(o.voiced.any()):
            return (0, -1.0)
        clarity = info["voiced_fraction"] - float(o.dip[o.voiced].mean())
        return (int(info["source"] != "speech"), clarity)
    info, audio, outputs, o = max(candidates, key=key)
    panels = [("input", audio), ("oracle A: comb only", outputs["A comb (YIN f0, input partial amps)"]),
              ("oracle C0: comb + PV residual", outputs["C0 A + PV residual (zero corr)"]),
              ("v2p (trained)", outputs["v2p (trained)"])]
    fig, axes = plt.subplots(1, 4, figsize=(18, 5), sharey=True)
    hop = 256
    f0 = o.f0[0, 0].numpy().copy()
    f0[~o.voiced[0, 0].numpy()] = np.nan
    t_f0 = ((np.arange(f0.size) + 1) * hop - 512) / sr
    for ax, (title, a) in zip(axes, panels):
        s = spectrogram_db(np.atleast_2d(np.asarray(a)), n_fft=2048, hop=256)
        ref = s.max()
        ax.imshow(s, origin="lower", aspect="auto", vmin=ref - 80, vmax=ref, cmap="magma",
                  extent=[0, a.shape[-1] / sr, 0, sr / 2])
        ax.plot(t_f0, f0, color="cyan", lw=0.6, alpha=0.7)
        ax.set_ylim(0, 4000)
        ax.set_title(title)
        ax.set_xlabel("s")
    axes[0].set_ylabel("Hz (cyan: YIN f0 of the input, voiced frames)")
    fig.suptitle(f"{info['id']} ({info['source']}, {info['family']}, "
                 f"{info['instrument'] or ''}), median f0 {info['median_f0_hz']:.0f} Hz")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    print(f"png: {path} ({info['id']})")


if __name__ == "__main__":
    main()
