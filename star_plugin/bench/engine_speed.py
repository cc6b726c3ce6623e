"""``star bench engine``: the real-time engine as a host drives it.

For each backend (ONNX Runtime, PyTorch; 1 thread each), host rate and block size, the same
stereo audio goes through two ways of running the engine:

* ``sync`` - ``StreamingEngine.process`` on the calling thread, blocks back to back. Its
  per-block times are the compute a host's audio thread would carry; a block whose time
  exceeds its duration is a deadline miss.
* ``threaded`` - ``ThreadedEngine``: the model on one worker thread, the caller only copies.
  Blocks are paced in real time (each call at its deadline, as an audio callback would be),
  so the worker runs at the speed a live stream asks of it; a miss is a block the worker had
  not finished in time (filled with silence, counted by the engine).

* ``native`` backend: ``star-engine-cli`` (the C++ engine of native/, docs/NATIVE.md; build it
  with ``star plugin build --no-vst3``) streams the same audio, written to a WAV file, in the
  same blocks with 1 intra-op thread, at any host rate (libsoxr, as the Python engine), and
  writes its per-block times, which are summarised here the same way. ``sync`` runs the model
  on the calling thread; ``threaded`` is the plugin's Worker Thread option (``--worker-thread
  --realtime``: paced like an audio callback, misses counted by the engine). The export (its
  morph graph included, as the plugin runs it) is the model's; RSS is the CLI process's own
  peak (VmHWM).

Reported per row: block time median / p99 / max, p99 as a fraction of the block's duration,
real-time factor (compute / audio time), deadline misses, and the process's resident memory
after the row (peak RSS for the whole run at the end).
"""
from __future__ import annotations

import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..timing import block_time_stats

DEFAULT_BLOCKS = (32, 64, 128, 256, 512, 1024, 2048, 4096)
DEFAULT_RATES = (44100, 48000)
TARGET = {"backend": "onnx", "rate": 48000, "block": 512, "p99_over_block": 0.10}


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20
    except OSError:
        return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _sync_row(engine, audio: np.ndarray, block: int) -> dict:
    times = []
    for start in range(0, audio.shape[1] - block + 1, block):
        chunk = audio[:, start:start + block]
        t0 = time.perf_counter()
        engine.process(chunk)
        times.append(time.perf_counter() - t0)
    seconds = len(times) * block / engine.sample_rate
    stats = block_time_stats(times, block / engine.sample_rate)
    misses = sum(t > block / engine.sample_rate for t in times)
    return {**stats, "rtf": sum(times) / seconds, "misses": int(misses)}


def _threaded_row(engine, audio: np.ndarray, block: int) -> dict:
    period = block / engine.sample_rate
    times = []
    next_call = time.perf_counter()
    caller_cpu0 = time.thread_time()  # only this thread's CPU: the caller's share
    for start in range(0, audio.shape[1] - block + 1, block):
        delay = next_call - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        chunk = audio[:, start:start + block]
        t0 = time.perf_counter()
        engine.process(chunk)
        times.append(time.perf_counter() - t0)
        next_call += period
    engine.wait_idle(timeout=60.0)
    caller_cpu = time.thread_time() - caller_cpu0
    stats = block_time_stats(times, period)
    seconds = len(times) * period
    return {**stats, "rtf": sum(times) / seconds, "caller_cpu_rtf": caller_cpu / seconds,
            "misses": int(engine.misses)}


def native_cli() -> Optional[Path]:
    """The built ``star-engine-cli`` ($STAR_ENGINE_CLI, else build/native/bin), or None."""
    import os

    from star_plugin.native_build import DEFAULT_BUILD_DIR

    path = Path(os.environ.get("STAR_ENGINE_CLI") or DEFAULT_BUILD_DIR / "bin" / "star-engine-cli")
    return path if path.is_file() else None


def _export_dir(model, scratch: Path) -> Path:
    """An ONNX export directory of ``model`` (itself when it already is one)."""
    if isinstance(model, (str, Path)) and (Path(model) / "manifest.json").is_file():
        return Path(model)
    from star_plugin.export.exporter import export_model
    from star_plugin.model_io import load_vae

    directory = scratch / "export"
    export_model(load_vae(model), directory, scan_body="scan")
    return directory


def _native_row(cli: Path, directory: Path, audio: np.ndarray, rate: int, block: int,
                scratch: Path, mode: str = "sync") -> dict:
    """One row of star-engine-cli: whole blocks of ``audio``, 1 thread; ``threaded``: the
    worker thread, blocks paced in real time."""
    import os
    import subprocess

    import soundfile

    usable = audio[:, :audio.shape[1] // block * block]
    src, dst, times_file = scratch / "in.wav", scratch / "out.wav", scratch / "times.txt"
    soundfile.write(src, usable.T, rate, subtype="FLOAT")
    extra = ["--worker-thread", "--realtime"] if mode == "threaded" else []
    proc = subprocess.run([str(cli), str(directory), str(src), str(dst), "--block", str(block),
                           "--threads", "1", "--block-times", str(times_file), *extra],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise RuntimeError(f"star-engine-cli failed: {proc.stderr.strip()}")
    summary = json.loads(proc.stdout)
    times = [float(line.split()[1]) / 1e3 for line in times_file.read_text().splitlines()]
    period = block / rate
    stats = block_time_stats(times, period)
    misses = summary["misses"] if mode == "threaded" else int(sum(t > period for t in times))
    return {**stats, "rtf": sum(times) / (len(times) * period),
            "misses": int(misses),
            "latency_samples": int(summary["latency_samples"]),
            "native_rss_mb": float(summary.get("peak_rss_mb", float("nan"))),
            "allocations_per_graph_block": summary.get("allocations_per_graph_block")}


def run_engine_bench(model="default", rates: Sequence[int] = DEFAULT_RATES,
                     blocks: Sequence[int] = DEFAULT_BLOCKS, seconds: float = 5.0,
                     backends: Sequence[str] = ("onnx", "torch"),
                     modes: Sequence[str] = ("sync", "threaded"), channels: int = 2,
                     seed: int = 0, progress=print) -> dict:
    from star_plugin.backend import open_streaming_model
    from star_plugin.engine import StreamingEngine
    from star_plugin.threaded_engine import ThreadedEngine

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows: List[Dict] = []
    skipped: List[str] = []
    loaded = {}
    scratch = Path(tempfile.mkdtemp(prefix="star-bench-native-"))
    try:
        for backend in backends:
            if backend == "native":
                _native_rows(model, rates, blocks, modes, seconds, channels, seed, scratch,
                             rows, skipped, progress)
                continue
            loaded[backend] = open_streaming_model(model, backend)  # one model (one export) each
            for rate in rates:
                audio = (np.random.default_rng(seed).standard_normal(
                    (channels, int(seconds * rate))) * 0.1).astype(np.float32)
                for block in blocks:
                    for mode in modes:
                        if mode == "sync":
                            engine = StreamingEngine(loaded[backend], rate, channels,
                                                     backend=backend)
                            engine.process(audio[:, :block])  # first-call set-up
                            engine.reset()
                            row = _sync_row(engine, audio, block)
                            latency = engine.latency_samples
                        else:
                            engine = ThreadedEngine(loaded[backend], rate, channels,
                                                    max_block=block, backend=backend)
                            row = _threaded_row(engine, audio, block)
                            latency = engine.latency_samples
                            engine.close()
                        row.update(backend=backend, mode=mode, rate=rate, block=block,
                                   channels=channels, block_ms=1e3 * block / rate,
                                   latency_samples=latency,
                                   latency_ms=1e3 * latency / rate, rss_mb=_rss_mb())
                        rows.append(row)
                        if progress:
                            progress(format_row(row))
    finally:
        torch.set_num_threads(previous_threads)
        shutil.rmtree(scratch, ignore_errors=True)
    return {"rows": rows, "seconds": seconds, "channels": channels, "skipped": skipped,
            "peak_rss_mb": _peak_rss_mb(), "target": dict(TARGET),
            "target_rows": [r for r in rows if r["backend"] == TARGET["backend"]
                            and r["rate"] == TARGET["rate"] and r["block"] == TARGET["block"]]}


def _native_rows(model, rates, blocks, modes, seconds, channels, seed, scratch, rows, skipped,
                 progress) -> None:
    cli = native_cli()
    if cli is None:
        skipped.append("native: star-engine-cli not built (star plugin build --no-vst3)")
        return
    directory = _export_dir(model, scratch)
    for rate in rates:
        audio = (np.random.default_rng(seed).standard_normal(
            (channels, int(seconds * rate))) * 0.1).astype(np.float32)
        for block, mode in ((b, m) for b in blocks for m in modes):
            row = _native_row(cli, directory, audio, rate, block, scratch, mode)
            row.update(backend="native", mode=mode, rate=rate, block=block,
                       channels=channels, block_ms=1e3 * block / rate,
                       latency_ms=1e3 * row["latency_samples"] / rate,
                       rss_mb=row["native_rss_mb"])
            rows.append(row)
            if progress:
                progress(format_row(row))


HEADER = ("| backend | mode | rate | block | block ms | median ms | p99 ms | max ms | p99/block "
          "| RTF | misses | latency ms | RSS MB |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def format_row(r: dict) -> str:
    return (f"| {r['backend']} | {r['mode']} | {r['rate']} | {r['block']} | {r['block_ms']:.2f} "
            f"| {r['median_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_ms']:.3f} "
            f"| {100 * r['p99_over_block']:.1f}% | {r['rtf']:.3f} | {r['misses']}/{r['blocks']} "
            f"| {r['latency_ms']:.1f} | {r['rss_mb']:.0f} |")


def format_engine_bench(result: dict) -> str:
    lines = [f"Engine, {result['channels']} channels, 1 thread per backend, "
             f"{result['seconds']:g} s of audio per row", HEADER]
    lines += [format_row(r) for r in result["rows"]]
    lines.append(f"\npeak resident memory of the whole run: {result['peak_rss_mb']:.0f} MB "
                 "of Python (native rows: the star-engine-cli process's own peak)")
    lines += [f"skipped: {note}" for note in result.get("skipped", [])]
    t = result["target"]
    for r in result["target_rows"]:
        verdict = "met" if r["p99_over_block"] <= t["p99_over_block"] else "NOT met"
        lines.append(f"target ({t['backend']}, {t['rate']} Hz, block {t['block']}, p99 <= "
                     f"{100 * t['p99_over_block']:.0f}% of {r['block_ms']:.2f} ms): {r['mode']} "
                     f"p99 {r['p99_ms']:.3f} ms = {100 * r['p99_over_block']:.1f}% -> {verdict}")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="default")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    parser.add_argument("--blocks", default=",".join(map(str, DEFAULT_BLOCKS)))
    parser.add_argument("--seconds", type=float, default=5.0, help="audio per row")
    parser.add_argument("--backends", default="onnx,torch,native",
                        help="onnx, torch, native (star-engine-cli, the C++ engine the VST3 "
                             "runs; skipped with a note when not built)")
    parser.add_argument("--modes", default="sync,threaded")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--markdown", help="also write the table to this Markdown file")


def run_from_args(args) -> Optional[dict]:
    import json

    from star_plugin.atomic import write_bytes_atomic
    from star_plugin.commands.args import int_list
    from star_plugin.errors import ConfigError

    from .report import guard_report_files

    guard_report_files(args)  # the output rule, before any measuring
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in ("sync", "threaded"):
            raise ConfigError(f"--modes: unknown mode {m!r} (sync, threaded)")
    for b in backends:
        if b not in ("onnx", "torch", "native", "auto"):
            raise ConfigError(f"--backends: unknown backend {b!r} (onnx, torch, native)")
    print(HEADER)
    result = run_engine_bench(args.model, int_list(args.rates, "--rates"),
                              int_list(args.blocks, "--blocks"), args.seconds, backends, modes,
                              args.channels)
    text = format_engine_bench(result)
    print("\n".join(text.splitlines()[-1 - len(result["target_rows"]) - len(result["skipped"]):]))
    if args.json:
        write_bytes_atomic(args.json, (json.dumps(result, indent=2) + "\n").encode())
    if args.markdown:
        write_bytes_atomic(args.markdown, (text + "\n").encode())
    return result
