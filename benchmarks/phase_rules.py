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
from star_plugin.spectral import ISTFTSynthesis  # noqa: E402
from star_plugin.synthesis import (TWO_PI, in_peak_lobe, peak_frequency,  # noqa: E402
                                   peak_locked_phase, peak_owner, wrap_phase)
from v3_bench import load_peak_locked, print_summary, v3_arguments, write_json  # noqa: E402

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
    if rule == "lobes locked, random elsewhere":   # the same bins locked, torch's RNG elsewhere
        logmag = torch.log(magnitude + 1e-9)
        noise = TWO_PI * torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(seed))
        phase = torch.where(in_peak_lobe(logmag, peak_owner(logmag)), phase, noise)
    return phase


def main(argv=None):
    args = v3_arguments(__doc__.split("\n")[0], "benchmarks/phase_rules.json").parse_args(argv)
    torch.set_num_threads(1)
    model, cfg, head = load_peak_locked(args.model)
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
    write_json(args.out, result)
    print_summary(summary, SCORE_KEYS, f"pitched, {len(items)} clips")
    return result


if __name__ == "__main__":
    main()
