"""One feature set in every format: STAR.vst3 (in Pedalboard), STAR.clap (in star-clap-host)
and STAR.lv2 (in star-lv2-host) each equal the Python ONNX engine after latency compensation,
to <= 1e-4, at host rates 44.1 / 48 / 96 kHz, in host blocks of 1, 64, 512 and 8192 frames,
for mono and stereo tracks.

Each case compares the three plugins with one reference: StreamingEngine at the host rate
(libsoxr to the model's 16 kHz and back, its latency rule), fed the same signal. Skips without
the native build, unless STAR_REQUIRE_NATIVE=1 (set by .ci/run).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import test_native_clap as clap_host  # noqa: E402
import test_native_lv2 as lv2_host  # noqa: E402
from test_native_clap import clap  # noqa: E402,F401  (session fixtures)
from test_native_engine import TOLERANCE, _compensated_engine, _load, _signal  # noqa: E402
from test_native_engine import exports, native, vst3  # noqa: E402,F401  (session fixtures)
from test_native_lv2 import lv2  # noqa: E402,F401

BLOCKS = (1, 64, 512, 8192)


def _vst3(request, monkeypatch, d, x, rate, block, tmp_path):
    plugin = _load(request.getfixturevalue("vst3"), d, monkeypatch, rate)
    return plugin.process(x, rate, buffer_size=block, reset=True)  # Pedalboard compensates


def _clap(request, monkeypatch, d, x, rate, block, tmp_path):
    return clap_host._compensated(request.getfixturevalue("clap"), d, x, rate, tmp_path,
                                  block)[0]


def _lv2(request, monkeypatch, d, x, rate, block, tmp_path):
    return lv2_host.compensated(request.getfixturevalue("lv2"), d, x, rate, tmp_path, block)[0]


FORMATS = {"vst3": _vst3, "clap": _clap, "lv2": _lv2}


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [44100, 48000, 96000])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_equals_the_python_engine(request, monkeypatch, exports, tmp_path,  # noqa: F811
                                               fmt, rate, channels):
    d = exports["harmonic"]
    x = _signal(channels, rate // 3, seed=rate + channels)
    ref, _ = _compensated_engine(d, x, rate=rate)
    assert np.abs(ref).max() > 1e-3  # the model really produced sound
    for block in BLOCKS:
        y = FORMATS[fmt](request, monkeypatch, d, x, rate, block, tmp_path)
        assert y.shape == x.shape, block
        assert np.abs(y - ref).max() <= TOLERANCE, block
