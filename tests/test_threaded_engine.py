"""ThreadedEngine: the model on a worker thread. Its output is the synchronous engine's
delayed by exactly `headroom` more samples; a late worker costs a block of silence (counted),
never the alignment."""
import threading

import numpy as np
import pytest

from star_plugin.engine import StreamingEngine
from star_plugin.errors import ConfigError
from star_plugin.morph import MorphParams
from star_plugin.threaded_engine import ThreadedEngine

from conftest import tiny_model

RATE = 48000
BLOCK = 480


@pytest.fixture(scope="module")
def model():
    return tiny_model(sample_rate=16000)


def _signal(n=24000, seed=0):
    return (np.random.default_rng(seed).standard_normal((2, n)) * 0.3).astype(np.float32)


def _reference(model, x, params=None):
    ref = StreamingEngine(model, RATE, 2, backend="torch", params=params)
    return np.concatenate([ref.process(x[:, i:i + BLOCK]) for i in range(0, x.shape[1], BLOCK)],
                          axis=1), ref.latency_samples


def test_output_is_the_sync_engine_delayed_by_headroom(model):
    params = MorphParams(texture_amount=0.4, temperature=0.2)
    x = _signal()
    expected, sync_latency = _reference(model, x, params)
    with ThreadedEngine(model, RATE, 2, max_block=BLOCK, backend="torch", params=params) as eng:
        assert eng.latency_samples == sync_latency + eng.headroom
        assert eng.headroom >= BLOCK
        outs = []
        for i in range(0, x.shape[1], BLOCK):
            outs.append(eng.process(x[:, i:i + BLOCK]))
            eng.wait_idle()  # a worker that keeps up
        got = np.concatenate(outs, axis=1)
        assert eng.misses == 0
    h = eng.headroom
    assert np.abs(got[:, :h]).max() == 0
    assert np.abs(got[:, h:] - expected[:, :-h]).max() == 0
    assert np.abs(expected).max() > 1e-2


def test_a_late_worker_costs_silence_not_alignment(model):
    x = _signal(seed=1)
    expected, _ = _reference(model, x)
    eng = ThreadedEngine(model, RATE, 2, max_block=BLOCK, backend="torch")
    gate = threading.Event()
    blocked = eng.engine.process

    def slow(block):  # the worker stalls until the gate opens (a CPU spike, say)
        gate.wait(timeout=10)
        return blocked(block)

    eng.engine.process = slow
    outs = [eng.process(x[:, i:i + BLOCK]) for i in range(0, 10 * BLOCK, BLOCK)]
    assert eng.misses >= 5  # the headroom ran out while the worker was stuck
    gate.set()
    for i in range(10 * BLOCK, x.shape[1], BLOCK):
        outs.append(eng.process(x[:, i:i + BLOCK]))
        eng.wait_idle()
    got = np.concatenate(outs, axis=1)
    h = eng.headroom
    recovered = slice(12 * BLOCK, x.shape[1] - h)  # once the late blocks came back
    assert np.abs(got[:, h:][:, recovered] - expected[:, recovered]).max() == 0
    eng.close()


def test_reset_close_and_errors(model):
    x = _signal(n=6000, seed=2)
    eng = ThreadedEngine(model, RATE, 2, max_block=512, backend="torch")

    def run():
        outs = []
        for i in range(0, x.shape[1], 500):
            outs.append(eng.process(x[:, i:i + 500]))
            eng.wait_idle()
        return np.concatenate(outs, axis=1)

    first = run()
    eng.reset()
    assert np.abs(run() - first).max() == 0
    with pytest.raises(ValueError, match="max_block 512"):
        eng.process(np.zeros((2, 513), np.float32))
    with pytest.raises(ValueError, match="channels=2"):
        eng.process(np.zeros((1, 10), np.float32))
    eng.close()
    assert not eng._worker.is_alive()
    with pytest.raises(ConfigError, match="max_block"):
        ThreadedEngine(model, RATE, 1, max_block=0, backend="torch")
    with pytest.raises(ConfigError, match="headroom"):
        ThreadedEngine(model, RATE, 1, headroom=-5, backend="torch")


def test_engine_bench_reports_both_modes(model):
    from star_plugin.bench.engine_speed import format_engine_bench, run_engine_bench

    result = run_engine_bench(model, rates=[48000], blocks=[256], seconds=0.3,
                              backends=["onnx"], modes=["sync", "threaded"], progress=None)
    rows = {r["mode"]: r for r in result["rows"]}
    assert set(rows) == {"sync", "threaded"}
    for r in rows.values():
        assert r["blocks"] == int(0.3 * 48000) // 256
        assert 0 <= r["median_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert 0 <= r["misses"] <= r["blocks"] and r["rtf"] > 0
    assert rows["threaded"]["latency_samples"] > rows["sync"]["latency_samples"]
    assert result["target_rows"] == []  # the target is block 512
    assert "| onnx | threaded | 48000 | 256 |" in format_engine_bench(result)
