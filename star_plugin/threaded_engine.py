"""The engine with the model on a worker thread: the audio thread only copies samples.

A synchronous ``StreamingEngine.process`` call that completes a latent frame carries the whole
frame's compute (a few ms for the bundled model), which is longer than a small host block
lasts. Plugins with heavy DSP solve this the usual way, and so does this class: the audio
thread hands its block to a worker thread and takes finished samples from a FIFO that was
primed with ``headroom`` extra samples of silence. While the worker keeps up (it needs the
compute of one block within ``headroom`` samples' worth of time), every call finds its output
ready, so the audio thread's cost is a copy in and a copy out.

If the worker falls behind, the block is completed with silence and counted in ``misses``;
the late samples are dropped when they arrive, so the output stays exactly
``latency_samples`` behind the input (it never drifts).

Output equals ``StreamingEngine`` output delayed by a further ``headroom`` samples whenever
``misses`` is 0.
"""
from __future__ import annotations

import queue
import threading
import weakref
from typing import Optional

import numpy as np

from .engine import MAX_BLOCK, StreamingEngine
from .errors import ConfigError, StreamingError
from .streaming import SampleFIFO, drop_leading

_RESET, _STOP, _RESET_DONE = "reset", "stop", "reset-done"


def _worker_loop(engine: StreamingEngine, inbox, outbox, errors: list) -> None:
    while True:
        item = inbox.get()
        if isinstance(item, str):
            if item == _STOP:
                return
            engine.reset()
            outbox.put(_RESET_DONE)
            continue
        try:
            outbox.put(engine.process(item))
        except BaseException as exc:  # surfaced on the audio thread's next call
            errors.append(exc)
            outbox.put(np.zeros_like(item))


def _stop_worker(inbox, thread: threading.Thread) -> None:
    if thread.is_alive():
        inbox.put(_STOP)
        thread.join(timeout=30.0)


class ThreadedEngine:
    """``StreamingEngine`` with the model work on a worker thread.

    ``max_block``: the largest block the host will pass (a host knows it before playback).
    ``headroom``: extra latency in host samples; default ``max_block`` plus one latent hop at
    the host rate, enough for a worker that finishes a hop's compute within a hop's time.
    Other keyword arguments go to ``StreamingEngine``.
    """

    def __init__(self, model="default", sample_rate: Optional[int] = None, channels: int = 1,
                 max_block: int = 1024, headroom: Optional[int] = None, **engine_kwargs):
        if not isinstance(max_block, int) or not 1 <= max_block <= MAX_BLOCK:
            raise ConfigError(f"max_block must be an integer in 1..{MAX_BLOCK}, got {max_block!r}")
        self.engine = StreamingEngine(model, sample_rate, channels, **engine_kwargs)
        e = self.engine
        hop_host = -(-e.hop * e.sample_rate // e.model_rate)
        self.headroom = int(max_block + hop_host if headroom is None else headroom)
        if self.headroom < 0:
            raise ConfigError(f"headroom must be >= 0 samples, got {headroom}")
        self.max_block = max_block
        self.sample_rate, self.channels = e.sample_rate, e.channels
        self.latency_samples = e.latency_samples + self.headroom
        self.morph = e.morph
        self._inbox: "queue.SimpleQueue" = queue.SimpleQueue()
        self._outbox: "queue.SimpleQueue" = queue.SimpleQueue()
        self._errors: list = []
        # The thread holds no reference to self, so an engine dropped without close() is
        # collected, and the finalizer (also run at interpreter exit) stops the thread.
        self._worker = threading.Thread(target=_worker_loop, name="star-engine-worker",
                                        args=(e, self._inbox, self._outbox, self._errors),
                                        daemon=True)
        self._reset_local()
        self._worker.start()
        self._finalizer = weakref.finalize(self, _stop_worker, self._inbox, self._worker)

    # ----------------------------------------------------------------- audio thread
    def _reset_local(self) -> None:
        self._fifo = SampleFIFO(self.channels, self.headroom + 4 * self.max_block,
                                primed=self.headroom)
        self._debt = 0  # samples already replaced by silence, to drop when they arrive
        self.misses = 0  # blocks completed with silence because the worker was late
        self.pending = 0  # samples handed to the worker, not yet returned

    def _append(self, y: np.ndarray) -> None:
        self.pending -= y.shape[1]
        y, self._debt = drop_leading(y, self._debt)
        self._fifo.push(y)

    def _collect(self) -> None:
        while True:
            try:
                y = self._outbox.get_nowait()
            except queue.Empty:
                return
            if not isinstance(y, str):
                self._append(y)

    def process(self, block) -> np.ndarray:
        """(channels, n) at the host rate -> (channels, n), ``latency_samples`` late. Never
        waits for the worker."""
        if self._errors:
            error = self._errors.pop()
            raise StreamingError(f"the engine's worker thread failed: {error}") from error
        x = self.engine.guard_block(block)
        n = x.shape[1]
        if n > self.max_block:
            raise ValueError(f"block has {n} samples, more than this engine's max_block "
                             f"{self.max_block}")
        if n == 0:
            return x.copy()
        self.pending += n
        self._inbox.put(x.copy())  # the host may reuse its buffer
        self._collect()
        out, short = self._fifo.pop(n)
        if short:  # the worker is late: silence now, those samples dropped when they come
            self.misses += 1
            self._debt += short
        return out

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until the worker has returned everything handed to it (not for the audio
        thread: for offline use and tests)."""
        import time

        deadline = time.monotonic() + timeout
        while self.pending > 0:
            try:
                y = self._outbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise StreamingError(f"the engine's worker did not finish within {timeout} s")
            if not isinstance(y, str):
                self._append(y)

    def reset(self) -> None:
        """Back to silence (waits for the worker; not for the audio thread)."""
        self._inbox.put(_RESET)
        while True:
            item = self._outbox.get(timeout=30.0)
            if isinstance(item, str) and item == _RESET_DONE:
                break
        self._reset_local()

    def close(self) -> None:
        """Stop the worker thread (also done when the engine is collected or Python exits)."""
        self._finalizer()

    def __enter__(self) -> "ThreadedEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
