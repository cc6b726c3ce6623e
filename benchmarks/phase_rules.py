"""The v3 head's phase rule on a trained model's magnitudes and on the input's (issue 22).

Rows, each rendered from the same magnitude with ``ISTFTSynthesis`` and scored as
``star bench recon`` does (FSC, level, MSD, hop-rate buzz out/in at the model's rates):

* ``every bin locked``: every bin takes its climbed-to bin's phase (the rule until
  2026-12-06); on the slopes of a smooth spectrum a whole region then shares one phase;
* ``lobes locked, random elsewhere``: only the bins within ``LOCK_BINS`` of a local maximum
  are locked, the rest get a random phase every frame (torch's RNG: an oracle, not exportable);
* ``lobes locked, scrambled elsewhere``: the same with ``synthesis.scrambled_phase``, the
  deterministic rule ``PeakLockedHead`` uses.

    python benchmarks/phase_rules.py data/corpus-v2 --model training/checkpoints/default-v3 \
        --clips 16 --out benchmarks/phase_rules.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_harmonic import pitched_test_items  # noqa: E402

from star_plugin.analysis import analyse  # noqa: E402
from star_plugin.bench.recon import ReferenceScorer  # noqa: E402
from star_plugin.bench.report import finite_stats, iter_clips  # noqa: E402
from star_plugin.convert import from_model_batch, to_model_batch  # noqa: E402
from star_plugin.model_io import load_vae  # noqa: E402
from star_plugin.spectral import ISTFTSynthesis  # noqa: E402
from star_plugin.synthesis import (TWO_PI, peak_frequency, peak_locked_phase,  # noqa: E402
                                   peak_owner, wrap_phase)

RULES = ("every bin locked", "lobes locked, random elsewhere", "lobes locked, scrambled elsewhere")
SCORE_KEYS = ("fsc", "level_db", "msd", "buzz_ratio")


def every_bin_locked(magnitude: torch.Tensor, hop: int, n_fft: int) -> torch.Tensor:
    logmag = torch.log(magnitude + 1e-9)
    owner = peak_owner(logmag)
    increment = (TWO_PI * hop / n_fft) * peak_frequency(logmag, owner).double()
    return wrap_phase(torch.cumsum(increment, dim=-1)).gather(1, owner).float()


def phase_for(rule: str, magnitude: torch.Tensor, hop: int, n_fft: int, seed: int):
    if rule == "every bin locked":
        return every_bin_locked(magnitude, hop, n_fft)
    start = torch.zeros(magnitude.shape[0], magnitude.shape[1], 1)
    phase, _ = peak_locked_phase(magnitude, start, hop, n_fft)
    if rule == "lobes locked, random elsewhere":
        # the shipped rule's scrambled bins are exactly those not equal to their lobe's phase:
        # recompute the lock mask as peak_locked_phase does and draw those from the RNG
        logmag = torch.log(magnitude + 1e-9)
        owner = peak_owner(logmag)
        padded = torch.nn.functional.pad(logmag, (0, 0, 1, 1), value=-1e30)
        is_peak = (logmag >= padded[:, :-2]) & (logmag >= padded[:, 2:])
        k = torch.arange(logmag.shape[1])[None, :, None]
        from star_plugin.synthesis import LOCK_BINS
        in_lobe = is_peak.gather(1, owner) & ((k - owner).abs() <= LOCK_BINS)
        noise = TWO_PI * torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(seed))
        phase = torch.where(in_lobe, phase, noise)
    return phase


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path)
    p.add_argument("--model", default="training/checkpoints/default-v3")
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/phase_rules.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_vae(args.model).eval()
    cfg, head = model.config, model.decoder.layers[-1].inner
    if cfg.head != "peak-locked":
        raise SystemExit(f"--model {args.model}: needs a peak-locked (v3) model, got head {cfg.head!r}")
    synthesis = ISTFTSynthesis(cfg.n_fft, cfg.stft_hop)
    items, n_pitched = pitched_test_items(args.data, args.clips)
    per_row, started = {}, time.perf_counter()
    for index, clip in enumerate(iter_clips(items, args.seconds)):
        x, layout = to_model_batch(clip.audio, clip.rate, cfg.sample_rate, 1)
        n = x.shape[-1]
        padded = torch.nn.functional.pad(x, (0, cfg.n_fft + cfg.stft_hop))
        with torch.no_grad():
            _, _, features = model.forward_with_head(padded, sample=False)
            target = analyse(padded, cfg.sample_rate, cfg.n_fft, cfg.stft_hop, cfg.harmonics,
                             head.drawable_hz)
            t = min(features.shape[-1], target.magnitude.shape[-1])
            sources = {"model": head.magnitude(features[..., :t])[0],
                       "input": target.magnitude[..., :t]}
        score = ReferenceScorer(clip.audio, clip.rate)
        for source, magnitude in sources.items():
            for rule in RULES:
                phase = phase_for(rule, magnitude.float(), cfg.stft_hop, cfg.n_fft, index)
                spectrum = head._from_centre(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
                audio = synthesis(spectrum)[..., head.delay:head.delay + n]
                m = score(from_model_batch(audio, layout), list(cfg.hop_rates))
                per_row.setdefault(f"{source}: {rule}", []).append(
                    {"id": clip.item.id, **{k: m[k] for k in SCORE_KEYS}})
        print(f"{index + 1}/{len(items)} {clip.item.id}", file=sys.stderr, flush=True)
    summary = {name: {k: finite_stats([c[k] for c in clips])["mean"] for k in SCORE_KEYS}
               for name, clips in per_row.items()}
    result = {"benchmark": "phase_rules", "model": args.model, "data": str(args.data),
              "clips": len(items), "pitched_test_clips": n_pitched, "summary": summary,
              "per_clip": per_row, "elapsed_s": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(args.out)
    print(f"{'row':48} {'FSC':>6} {'level':>7} {'MSD':>6} {'buzz':>6}   (pitched, {len(items)} clips)")
    for name, s in summary.items():
        print(f"{name:48} {s['fsc']:6.3f} {s['level_db']:+7.2f} {s['msd']:6.3f} {s['buzz_ratio']:6.2f}")
    return result


if __name__ == "__main__":
    main()
