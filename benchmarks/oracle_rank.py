"""How much spectral detail can the v3 head's input carry? (issue 22)

The decoder's last layer maps ``hidden`` features to 513 log magnitudes per frame with a
linear 1x1 projection, so every frame it can draw lies in a ``hidden``-dimensional affine
subspace of log spectra. The best such subspace (for squared error) is the principal one:
here the principal components of the log magnitudes of ``--train-clips`` training clips
(``analysis.analyse`` frames, silent frames left out). Each pitched test clip's own log
magnitude is projected onto the first ``r`` of them, rendered with the head's peak-locked
phase (``calibrate_v3.render_magnitude``) and scored as ``star bench recon`` does. Rank 513
is the input's magnitude itself.

``--bank``: rows for a bank of fixed harmonic combs on a log-f0 grid (25 or 50 cents from
40 Hz to 2 kHz), the kind of polyphonic comb a head could draw: per frame the non-negative
combination of combs (times the input's 7-bin power envelope) closest to the input's
magnitude (multiplicative updates), all combs or the ``k`` strongest, plus the smooth rest.

    python benchmarks/oracle_rank.py data/corpus-v2 --clips 16 --bank --out benchmarks/oracle_rank.json
"""
from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_v3 import HARMONICS, HOP, N_FFT, SR, render_magnitude  # noqa: E402
from oracle_harmonic import pitched_test_items  # noqa: E402
from v3_bench import print_summary, v3_arguments, write_json  # noqa: E402

from star_plugin.analysis import analyse, box_mean  # noqa: E402
from star_plugin.bench.recon import ReferenceScorer  # noqa: E402
from star_plugin.bench.report import DataItem, finite_stats, iter_clips  # noqa: E402
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.corpus_manifest import audio_path, read_manifest  # noqa: E402
from star_plugin.synthesis import PeakLockedHead  # noqa: E402

RANKS = (32, 64, 128, 192, 256, 384, 513)
FLOOR = 1e-4
SCORE_KEYS = ("fsc", "msd", "level_db", "buzz_ratio")
BUZZ_RATES = (SR / (HOP * 4), SR / HOP)      # the v3 model's latent and STFT frame rates


def magnitude_of(audio: torch.Tensor, head: PeakLockedHead) -> torch.Tensor:
    return analyse(audio, SR, N_FFT, HOP, HARMONICS, head.drawable_hz).magnitude


def principal_basis(data: Path, clips: int, seconds: float, head: PeakLockedHead, seed: int = 0):
    """-> (mean (bins,), components (bins, bins), rows first) of training log magnitudes."""
    entries = read_manifest(data, "train")
    picked = random.Random(seed).sample(entries, min(clips, len(entries)))
    items = [DataItem(str(e["id"]), audio_path(data, e), dict(e.get("labels") or {}))
             for e in picked]
    frames = []
    for clip in iter_clips(items, seconds):
        x, _ = to_model_batch(clip.audio, clip.rate, SR, 1)
        magnitude = magnitude_of(x, head)[0]
        power = magnitude.pow(2).sum(0)
        frames.append(torch.log(magnitude + FLOOR)[:, power > 1e-6 * power.max()].T)
    table = torch.cat(frames).double()
    mean = table.mean(0)
    return mean, torch.linalg.svd(table - mean, full_matrices=False)[2]


def comb_bank(head: PeakLockedHead, cents: float) -> torch.Tensor:
    """(bins, G): one comb of ``HARMONICS`` partials (peak 1, faded as the head fades them)
    per f0 on a grid ``cents`` apart from 40 Hz to 2 kHz."""
    count = int(math.log2(2000.0 / 40.0) * 1200.0 / cents) + 1
    f0 = 40.0 * 2.0 ** (torch.arange(count) * cents / 1200.0)
    frequency = torch.arange(1, HARMONICS + 1)[None, :, None] * f0[None, None, :]
    return head.comb_magnitude(frequency, head._audible(frequency))[0]


def fit_bank(magnitude: torch.Tensor, envelope: torch.Tensor, bank: torch.Tensor,
             strongest=None, iterations: int = 150) -> torch.Tensor:
    """Non-negative weights a per frame minimising |X - E (bank a)|^2 (multiplicative updates;
    with ``strongest`` only that many combs per frame after half of them) -> E (bank a)."""
    target, weight = (envelope * magnitude)[0].T, envelope[0].T.pow(2)      # (t, bins)
    numerator = target @ bank
    a = torch.full((target.shape[0], bank.shape[1]), 1e-2)
    for i in range(iterations):
        a = a * numerator / ((((a @ bank.T) * weight) @ bank) + 1e-12)
        if strongest and i == iterations // 2:
            a = torch.where(a >= a.topk(strongest, dim=1).values[:, -1:], a, torch.zeros_like(a))
    return (envelope[0].T * (a @ bank.T)).T[None]


def smooth(power: torch.Tensor) -> torch.Tensor:
    """A magnitude with no line in it: the square root of a 15-bin (650 Hz) mean power."""
    return torch.sqrt(box_mean(power.clamp(min=0), 15))


def rows_for(magnitude, basis, banks) -> dict:
    mean, components = basis
    log = torch.log(magnitude + FLOOR)[0].T.double()
    out = {}
    for r in RANKS:
        b = components[:r]
        projected = (log - mean) @ b.T @ b + mean
        out[f"rank {r}"] = (torch.exp(projected) - FLOOR).clamp(min=0).T[None].float()
    if banks:
        envelope = torch.sqrt(box_mean(magnitude.pow(2), 7)) + 1e-6
        out["smooth only"] = smooth(magnitude.pow(2))
        for cents, bank in banks.items():
            for k in (None, 8, 3):
                drawn = fit_bank(magnitude, envelope, bank, k)
                out[f"comb bank {cents:g} c, {'all' if k is None else f'{k} strongest'} + smooth"] = \
                    drawn + smooth(magnitude.pow(2) - drawn.pow(2))
    return out


def main(argv=None):
    p = v3_arguments(__doc__.split("\n")[0], "benchmarks/oracle_rank.json", model=False)
    p.add_argument("--train-clips", type=int, default=300)
    p.add_argument("--bank", action="store_true", help="also the comb-bank rows")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    head = PeakLockedHead(N_FFT, HOP, SR, HARMONICS)
    basis = principal_basis(args.data, args.train_clips, 2.0, head)
    banks = {25.0: comb_bank(head, 25.0), 50.0: comb_bank(head, 50.0)} if args.bank else {}
    items, n_pitched = pitched_test_items(args.data, args.clips)
    per_row = {}
    for clip in iter_clips(items, args.seconds):
        x, layout = to_model_batch(clip.audio, clip.rate, SR, 1)
        n = x.shape[-1]
        magnitude = magnitude_of(torch.nn.functional.pad(x, (0, N_FFT + HOP)), head)
        score = ReferenceScorer(clip.audio, clip.rate)
        line = []
        for name, m in rows_for(magnitude, basis, banks).items():
            audio = render_magnitude(head, m, "locked")[..., head.delay:head.delay + n]
            s = score(from_model_batch(audio, layout), BUZZ_RATES)
            per_row.setdefault(name, []).append({"id": clip.item.id, **{k: s[k] for k in SCORE_KEYS}})
            line.append(f"{s['fsc']:.2f}")
        print(clip.item.id, " ".join(line), file=sys.stderr, flush=True)
    summary = {name: {k: finite_stats([c[k] for c in clips])["mean"] for k in SCORE_KEYS}
               for name, clips in per_row.items()}
    result = {"benchmark": "oracle_rank", "data": str(args.data), "clips": len(items),
              "pitched_test_clips": n_pitched, "train_clips": args.train_clips,
              "summary": summary, "per_clip": per_row,
              "elapsed_s": round(time.perf_counter() - started, 1)}
    write_json(args.out, result)
    print_summary(summary, SCORE_KEYS, f"pitched, {len(items)} clips")
    return result


if __name__ == "__main__":
    main()
