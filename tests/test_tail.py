"""The tail a plugin reports (star_plugin/tail.py): measured at export, read by the native
engine, reported by the plugins (VST3 getTailSamples via JUCE, CLAP clap.tail)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from star_plugin.backend import TorchModel
from star_plugin.model_io import load_vae
from star_plugin.tail import DRIVE_SECONDS, FLOOR_DB, _render, measure_tail_samples


def test_the_measured_tail_is_where_the_bundled_model_settles():
    """After the input ends (and the latency, compensated by the host), the default model's
    output keeps moving for the tail and no longer: beyond it the driven render equals the
    render of silence to -80 dB of its peak; a hop and a half earlier it does not."""
    model = TorchModel(load_vae("default").eval())
    tail = measure_tail_samples(model)
    rate, hop = model.sample_rate, model.hop
    assert tail % hop == 0 and 0 < tail < model.sample_rate  # finite, under a second
    drive = int(DRIVE_SECONDS * rate)
    x = np.zeros(drive + 2 * rate, np.float32)
    x[:drive] = np.clip(0.3 * np.random.default_rng(0).standard_normal(drive), -1, 1)
    diff = np.abs(_render(model, x) - _render(model, np.zeros_like(x))).max(axis=0)
    floor = 10 ** (FLOOR_DB / 20) * np.abs(_render(model, x)).max()
    assert diff[drive + tail:].max() <= floor
    assert diff[drive + tail - 3 * hop // 2 - hop:drive + tail - 3 * hop // 2].max() > floor


def test_a_model_that_never_settles_reports_the_cap():
    from conftest import tiny_model

    model = TorchModel(tiny_model(seed=3).eval())
    assert measure_tail_samples(model, max_seconds=0.25) == -(-4000 // model.hop) * model.hop


def test_export_writes_the_measured_tail(tmp_path):
    """manifest.json's model.tail_samples is the measurement (the plugins report it:
    tests/test_native_clap.py)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from conftest import V2_HARMONIC, tiny_model
    from star_plugin.export.exporter import export_model

    vae = tiny_model(seed=5, **V2_HARMONIC)
    manifest = export_model(vae, tmp_path / "m", scan_body="scan")
    tail = manifest["model"]["tail_samples"]
    assert tail == measure_tail_samples(vae.eval())
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["model"]["tail_samples"] \
        == tail
