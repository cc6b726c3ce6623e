"""The two function bodies of ``ai.star::SelectiveScan`` timed side by side in ONNX Runtime.

``star export --scan-body auto`` picks each graph's body with ``time_scan_bodies`` at the
model's own state size; ``star bench speed`` reports the same timings (``bench/onnx_speed.py``).
Timings are wall-clock medians on the given number of intra-op threads.
"""
from __future__ import annotations

import statistics
import time
from typing import Dict, List, Sequence

import numpy as np


def _session(model_proto, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def scan_inputs(d: int, n: int, length: int, batch: int = 1,
                seed: int = 0) -> Dict[str, np.ndarray]:
    """Random SelectiveScan inputs in Mamba's ranges (decays exp(dt A) in (0, 1))."""
    rng = np.random.default_rng(seed)

    def randn(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return dict(u=randn(batch, d, length), delta=randn(batch, d, length) - 1.0,
                A=-np.exp(randn(d, n)), B=randn(batch, n, length), C=randn(batch, n, length),
                D=randn(d), z=randn(batch, d, length), delta_bias=randn(d) * 0.1,
                h0=randn(batch, d, n))


def time_scan_bodies(d: int, n: int, lengths: Sequence[int], repeats: int = 9,
                     threads: int = 1) -> Dict[str, Dict[int, float]]:
    """Median seconds per call of each body at each length: {body: {length: s}}."""
    from .scan_function import BODIES, scan_op_model

    sessions = {body: _session(scan_op_model(body), threads) for body in BODIES}
    result: Dict[str, Dict[int, float]] = {body: {} for body in BODIES}
    for length in lengths:
        feeds = scan_inputs(d, n, length)
        times: Dict[str, List[float]] = {body: [] for body in BODIES}
        for s in sessions.values():  # warm-up
            s.run(None, feeds)
        for _ in range(repeats):
            for body, s in sessions.items():
                start = time.perf_counter()
                s.run(None, feeds)
                times[body].append(time.perf_counter() - start)
        for body in BODIES:
            result[body][length] = statistics.median(times[body])
    return result
