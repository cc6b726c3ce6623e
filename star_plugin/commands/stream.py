"""``star stream``: a file through the real-time engine block by block, with the per-block
compute time a host's audio thread would carry."""
from __future__ import annotations

import sys

from ..errors import StarError
from . import args as a
from .common import (check_audio_output, finite_or_error, guard_file_output, load_model,
                     preset_file, progress, read_guarded)
from .morphing import morph_params, texture_latent


def add_arguments(p) -> None:
    p.add_argument("input", help="audio file")
    p.add_argument("-o", "--output", required=True, help="audio file to write (latency removed)")
    p.add_argument("--block", "--buffer-size", dest="block", type=int, default=512,
                   help="host block size in samples (1..8192)")
    p.add_argument("--sample-rate", type=a.rate, default=None,
                   help="host rate in Hz (default: the file's)")
    a.add_backend(p)
    a.add_morph(p)
    a.add_subtype(p)


def stream_file(engine, audio, block: int):
    """``audio`` through ``engine`` in blocks, the latency flushed with silence and cut off
    -> (aligned output, per-block seconds)."""
    import time

    import numpy as np

    lat = engine.latency_samples
    padded = np.concatenate([audio, np.zeros((audio.shape[0], lat), np.float32)], axis=1)
    outs, times = [], []
    with progress(padded.shape[1], "stream", "sample") as bar:
        for start in range(0, padded.shape[1], block):
            piece = padded[:, start:start + block]
            t0 = time.perf_counter()
            outs.append(engine.process(piece))
            times.append(time.perf_counter() - t0)
            bar.update(piece.shape[1])
    return np.concatenate(outs, axis=1)[:, lat:lat + audio.shape[1]], times


def run(args):
    from ..audio import resample, write_audio
    from ..engine import MAX_BLOCK, StreamingEngine
    from ..timing import block_time_stats

    if not 1 <= args.block <= MAX_BLOCK:
        raise StarError(f"--block must be in 1..{MAX_BLOCK}, got {args.block}")
    guard_file_output(args, args.texture_file, *preset_file(args.preset))
    check_audio_output(args.output, args.subtype)
    audio, rate = read_guarded(args.input, "; nothing to stream")
    host_rate = args.sample_rate or rate
    if host_rate != rate:
        audio = resample(audio, rate, host_rate)
    model = load_model(args.model)
    texture = texture_latent(model, args)
    engine = StreamingEngine(model, host_rate, audio.shape[0], backend=args.backend,
                             params=morph_params(args), texture_source=texture)
    lat = engine.latency_samples
    out, times = stream_file(engine, audio, args.block)
    write_audio(args.output, finite_or_error(out, f"'{args.input}'"), host_rate,
                subtype=args.subtype)
    block_ms = 1000 * args.block / host_rate
    stats = block_time_stats(times, args.block / host_rate)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch at {host_rate} Hz, "
          f"{engine.backend} backend, blocks of {args.block} = {block_ms:.2f} ms)")
    print(f"latency {lat} samples ({1000 * lat / host_rate:.1f} ms), removed from the file")
    print(f"per block: median {stats['median_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms, "
          f"max {stats['max_ms']:.3f} ms; real-time factor "
          f"{sum(times) / (audio.shape[1] / host_rate):.3f} (compute / audio time)")
    if stats["p99_ms"] > block_ms:
        print(f"warning: p99 {stats['p99_ms']:.2f} ms exceeds the block's duration "
              f"{block_ms:.2f} ms: a host would drop out at this block size; use a larger "
              "--block", file=sys.stderr)
