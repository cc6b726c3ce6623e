"""Per-block timing statistics of a real-time loop (``star stream``, ``star bench``)."""
from __future__ import annotations

import statistics
from typing import List


def block_time_stats(times: List[float], block_seconds: float) -> dict:
    """Per-block times (s) -> median, p99 and max in ms, p99 / block duration, real-time x."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return {"median_ms": median * 1e3, "p99_ms": p99 * 1e3, "max_ms": ordered[-1] * 1e3,
            "p99_over_block": p99 / block_seconds, "realtime_x": block_seconds / median,
            "blocks": len(ordered)}
