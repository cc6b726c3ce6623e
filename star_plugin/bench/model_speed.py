"""Encode+decode speed of each model family on this CPU (``star bench speed``)."""
from __future__ import annotations

import statistics
import time

import torch

from ..architectures import ARCHITECTURES, architecture
from ..vae import StarVAE


def bench_models(threads=(1, 2), seconds: float = 10.0, repeats: int = 3, names=None) -> dict:
    """Real-time factor (audio seconds per compute second, higher is faster) of offline
    encode+decode, and of block streaming (blocks of 1024) for causal models."""
    names = list(names or ARCHITECTURES)
    previous = torch.get_num_threads()
    rows = []
    try:
        for name in names:
            torch.manual_seed(0)
            model = StarVAE(architecture(name)).eval()
            x = torch.randn(1, 1, int(seconds * model.sample_rate)) * 0.1
            for n_threads in threads:
                torch.set_num_threads(n_threads)
                with torch.no_grad():
                    model.reconstruct(x[..., : model.hop * 4])  # warm-up
                    times = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        model.reconstruct(x)
                        times.append(time.perf_counter() - start)
                median = statistics.median(times)
                rows.append({"model": name, "threads": n_threads,
                             "params_m": model.num_parameters() / 1e6,
                             "median_s": median, "realtime_x": seconds / median})
    finally:
        torch.set_num_threads(previous)
    return {"config": {"seconds": seconds, "sample_rate": 44100, "repeats": repeats},
            "models": rows}


def format_model_results(result: dict) -> str:
    lines = [f"encode+decode of {result['config']['seconds']:.0f} s at 44.1 kHz mono "
             f"(median of {result['config']['repeats']})",
             f"{'model':<16} {'threads':>7} {'params':>8} {'time':>9} {'x real time':>12}"]
    for r in result["models"]:
        lines.append(f"{r['model']:<16} {r['threads']:>7} {r['params_m']:>7.2f}M "
                     f"{r['median_s']:>8.3f}s {r['realtime_x']:>11.1f}x")
    return "\n".join(lines)
