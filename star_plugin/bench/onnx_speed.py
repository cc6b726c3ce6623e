"""ONNX speed, side by side in one run (``star bench speed``):

* ``time_scan_bodies``: the two function bodies of ``ai.star::SelectiveScan`` (``scan``: one
  ``Scan`` iteration per step; ``chunked``: two-level, about 2 sqrt(L) iterations), each in a
  one-node model run by ONNX Runtime, interleaved on the same inputs;
* ``bench_streaming``: per-block time of PyTorch streaming (``StarVAE.stream``) against ONNX
  Runtime streaming (``OnnxStreamer.process``) on the same blocks, alternating block by block.

Everything runs on 1 intra-op thread (torch and ONNX Runtime) unless told otherwise. Timings
are wall-clock medians / 99th percentiles; other processes on the machine inflate them.
"""
from __future__ import annotations

import tempfile
import time
from typing import Sequence

import numpy as np
import torch

# Re-exported: the scan-body timing lives with the exporter that uses it, the block statistics
# with the runtime (``star stream``).
from star_plugin.export.scan_timing import scan_inputs, time_scan_bodies
from star_plugin.timing import block_time_stats

__all__ = ["bench_streaming", "block_time_stats", "format_onnx_speed", "run_onnx_speed",
           "scan_inputs", "time_scan_bodies"]


def bench_streaming(model, onnx_dir, blocks: Sequence[int] = (64, 256, 1024, 4096),
                    seconds: float = 10.0, threads: int = 1, seed: int = 0) -> dict:
    """Per-block time of torch vs ONNX Runtime streaming, same audio, alternating per block."""
    from star_plugin.export.runtime import OnnxVAE

    onnx_model = OnnxVAE(onnx_dir, threads=threads, providers=["CPUExecutionProvider"])
    rate, ch = model.sample_rate, model.config.audio_channels
    audio = (np.random.default_rng(seed).standard_normal((1, ch, int(seconds * rate)))
             * 0.1).astype(np.float32)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for block in blocks:
            streamer = onnx_model.streamer()
            state = model.init_state(1)
            torch_times, onnx_times = [], []
            with torch.inference_mode():
                for start in range(0, audio.shape[-1] - block + 1, block):
                    piece = audio[..., start:start + block]
                    tensor = torch.from_numpy(piece)
                    t0 = time.perf_counter()
                    _, state = model.stream(tensor, state)
                    t1 = time.perf_counter()
                    streamer.process(piece)
                    t2 = time.perf_counter()
                    torch_times.append(t1 - t0)
                    onnx_times.append(t2 - t1)
            block_seconds = block / rate
            rows.append({"block": block, "block_ms": block_seconds * 1e3,
                         "torch": block_time_stats(torch_times, block_seconds),
                         "onnx": block_time_stats(onnx_times, block_seconds)})
    finally:
        torch.set_num_threads(previous)
    return {"config": {"model": model.config.name, "sample_rate": rate, "channels": ch,
                       "seconds": seconds, "threads": threads,
                       "scan_body": onnx_model.manifest["scan_op"]["stream_body"]},
            "rows": rows}


def run_onnx_speed(model_name: str, blocks: Sequence[int], seconds: float,
                   lengths: Sequence[int], threads: int = 1) -> dict:
    """The ``star bench speed`` ONNX section: scan bodies at the model's state size and at a
    small one, and streaming torch vs ONNX Runtime."""
    from star_plugin.export.exporter import export_model, mixer_sizes
    from star_plugin.model_io import load_vae

    model = load_vae(model_name)
    sizes = [s for s in (mixer_sizes(model), (32, 4)) if s is not None]
    scan = [{"d": d, "n": n, "threads": threads,
             "median_ms": {body: {str(k): v * 1e3 for k, v in t.items()}
                           for body, t in time_scan_bodies(d, n, lengths, threads=threads).items()}}
            for d, n in dict.fromkeys(sizes)]
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model, tmp, scan_body="auto")
        streaming = bench_streaming(model, tmp, blocks, seconds, threads)
    return {"scan_bodies": scan, "streaming": streaming}


def format_onnx_speed(result: dict) -> str:
    lines = []
    for entry in result["scan_bodies"]:
        t = entry["median_ms"]
        lines.append(f"SelectiveScan function bodies in ONNX Runtime, d={entry['d']} N={entry['n']}, "
                     f"{entry['threads']} thread (median ms per call):")
        lines.append(f"{'L':>6} {'scan':>10} {'chunked':>10} {'scan/chunked':>13}")
        for length in t["scan"]:
            a, b = t["scan"][length], t["chunked"][length]
            lines.append(f"{length:>6} {a:>10.3f} {b:>10.3f} {a / b:>12.2f}x")
        lines.append("")
    s = result["streaming"]
    cfg = s["config"]
    lines.append(f"streaming '{cfg['model']}', {cfg['sample_rate']} Hz, {cfg['channels']} ch, "
                 f"{cfg['seconds']:.0f} s of audio per block size, {cfg['threads']} thread, "
                 f"ONNX scan body '{cfg['scan_body']}' (ms per block):")
    lines.append(f"{'block':>6} {'dur':>7} | {'torch med':>9} {'p99':>7} {'max':>7} | "
                 f"{'onnx med':>9} {'p99':>7} {'max':>7} | {'torch/onnx med':>14} {'p99':>6}")
    for r in s["rows"]:
        t, o = r["torch"], r["onnx"]
        lines.append(f"{r['block']:>6} {r['block_ms']:>6.1f}ms | {t['median_ms']:>9.3f} "
                     f"{t['p99_ms']:>7.2f} {t['max_ms']:>7.2f} | {o['median_ms']:>9.3f} "
                     f"{o['p99_ms']:>7.2f} {o['max_ms']:>7.2f} | "
                     f"{t['median_ms'] / o['median_ms']:>13.2f}x {t['p99_ms'] / o['p99_ms']:>5.2f}x")
    return "\n".join(lines)
