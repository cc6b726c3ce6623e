"""Forward+backward speed of the selective-scan backends, side by side (``star bench speed``).

Each repetition runs every available backend once, in turn (interleaved), on the same inputs:
``u, delta`` of shape (batch, d, length), ``A = -exp(randn(d, n))``, ``B, C`` of shape
(batch, n, length) (Mamba's usual layout), ``D`` and ``delta_bias`` of shape (d,), and no
initial state (so that mamba-ssm's kernel can run on a GPU). The time covers the forward call
and ``backward()`` of a scalar loss that uses both outputs. One untimed warm-up round precedes
the timed ones. CPU timings are wall-clock: other processes on the machine inflate them, and
with threads > 1 a busy machine can slow every backend by 10x or more (OpenMP waits for a
descheduled thread at every operation); compare backends only within one result.
"""
from __future__ import annotations

import statistics
import time

import torch

from ..scan import cuda_available_for, selective_scan


def _available_backends(device: torch.device) -> list[str]:
    names = ["ref", "chunked"]
    if device.type == "cuda" and cuda_available_for(torch.empty(0, device=device)):
        names.append("cuda")
    return names


def _make_inputs(batch, d, n, length, device, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    return dict(
        u=randn(batch, d, length), delta=randn(batch, d, length) - 1.0,
        A=-torch.exp(randn(d, n)), B=randn(batch, n, length), C=randn(batch, n, length),
        D=randn(d), delta_bias=randn(d) * 0.1,
    )


def _one_run(inputs: dict, backend: str, device: torch.device) -> float:
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    y, h_last = selective_scan(**leaves, backend=backend)
    (y.square().mean() + h_last.square().mean()).backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def bench_scan(threads: int = 1, batch: int = 1, d: int = 256, n: int = 16, length: int = 1024,
               repeats: int = 5, device: str | torch.device = "cpu",
               backends: list[str] | None = None) -> dict:
    """Time forward+backward of each backend, interleaved; returns medians and minima (s).

    ``threads`` is applied with ``torch.set_num_threads`` for the duration and restored after.
    Result: {"config": {...}, "backends": {name: {"median_s", "min_s", "times_s"}},
    "ratio_chunked_over_ref": ref median / chunked median (speed-up of chunked)}.
    """
    if threads < 1 or batch < 1 or d < 1 or n < 1 or length < 1 or repeats < 1:
        raise ValueError("threads, batch, d, n, length and repeats must all be >= 1")
    device = torch.device(device)
    names = list(backends) if backends is not None else _available_backends(device)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        inputs = _make_inputs(batch, d, n, length, device)
        for name in names:  # warm-up (allocator, lazy imports)
            _one_run(inputs, name, device)
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(repeats):
            for name in names:
                times[name].append(_one_run(inputs, name, device))
    finally:
        torch.set_num_threads(old_threads)
    result = {
        "config": {"threads": threads, "batch": batch, "d": d, "n": n, "length": length,
                   "repeats": repeats, "device": str(device), "torch": torch.__version__},
        "backends": {name: {"median_s": statistics.median(ts), "min_s": min(ts), "times_s": ts}
                     for name, ts in times.items()},
    }
    if "ref" in times and "chunked" in times:
        result["ratio_chunked_over_ref"] = (result["backends"]["ref"]["median_s"]
                                            / result["backends"]["chunked"]["median_s"])
    return result


def format_scan_results(result: dict) -> str:
    """A small readable table of a ``bench_scan`` result."""
    cfg = result["config"]
    lines = [
        "selective scan, forward+backward: batch={batch} d={d} N={n} L={length} "
        "threads={threads} repeats={repeats} device={device}".format(**cfg),
        f"{'backend':<10} {'median (ms)':>12} {'min (ms)':>10} {'vs ref':>8}",
    ]
    ref = result["backends"].get("ref")
    for name, r in result["backends"].items():
        speedup = f"{ref['median_s'] / r['median_s']:7.1f}x" if ref else "      -"
        lines.append(f"{name:<10} {r['median_s'] * 1e3:12.1f} {r['min_s'] * 1e3:10.1f} "
                     f"{speedup:>8}")
    return "\n".join(lines)
