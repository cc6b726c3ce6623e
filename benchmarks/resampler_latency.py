"""soxr recipes for the engine's resamplers, latency and quality side by side (docs/ENGINE.md,
"Latency per host rate"): python benchmarks/resampler_latency.py [RATES] [RECIPES].

Model side: 44.1 kHz, hop 1024, synthesis delay 768 (the bundled model). Per host rate and
recipe (a soxr quality, optionally with phase-response bits):
  lag_ms    what resampling adds to the engine's latency: the whole chain (host -> model ->
            hop framing -> host) replayed on silence in 8-sample chunks, minus the model's
            own latency, as StreamingEngine._measure_latency does
  sine1k    SNR of a 1 kHz sine sent there and back (host -> model -> host), dB
  noise16k  SNR of white noise band-limited to 16 kHz, there and back, dB
  noise20k  the same to 20 kHz
  alias     hosts above 44.1 kHz: a 23 kHz tone after host -> model (it cannot be carried;
            what is left is aliasing), dB re the tone; hosts below: the images above the
            host's Nyquist when a 10 kHz tone is upsampled to the model rate
"""
import sys

import numpy as np
from soxr import soxr_ext

MODEL_RATE, HOP, SYNTHESIS_DELAY = 44100, 1024, 768
RECIPES = {"HQ-linear": 4, "HQ-minimum": 4 | 0x30, "MQ-linear": 2, "LQ-linear": 1,
           "LQ-intermediate": 1 | 0x10, "LQ-minimum": 1 | 0x30, "QQ": 0}


class Stream:
    """A soxr stream with any recipe (python-soxr's ResampleStream takes only the names)."""

    def __init__(self, rate_in, rate_out, recipe):
        self.soxr = soxr_ext.CSoxr(rate_in, rate_out, 1, soxr_ext.SOXR_FLOAT32_I, recipe, False)

    def chunk(self, x, last=False):
        return self.soxr.process_float32(np.ascontiguousarray(x[:, None], np.float32), last)[:, 0]


def chain_lag_ms(host, recipe, probe=8, seconds=3.0):
    """Worst lag of the whole chain on silence, minus the model's own latency, in ms."""
    rs_in, rs_out = Stream(host, MODEL_RATE, recipe), Stream(MODEL_RATE, host, recipe)
    fed = out = at_model = done = worst = 0
    zeros = np.zeros(probe, np.float32)
    for _ in range(int(seconds * host) // probe):
        fed += probe
        at_model += rs_in.chunk(zeros).shape[0]
        ready = max(0, at_model // HOP * HOP - SYNTHESIS_DELAY)
        if ready > done:
            out += rs_out.chunk(np.zeros(ready - done, np.float32)).shape[0]
            done = ready
        worst = max(worst, fed - out)
    model_lag = (HOP - 1 + SYNTHESIS_DELAY) * host / MODEL_RATE
    return 1e3 * (worst + probe - model_lag) / host


def oneshot(x, rate_in, rate_out, recipe):
    return Stream(rate_in, rate_out, recipe).chunk(x, last=True)


def snr_db(ref, y, skip):
    n = min(len(ref), len(y))
    r, y = ref[skip:n - skip], y[skip:n - skip]
    return 10 * np.log10(np.sum(r ** 2) / max(np.sum((r - y) ** 2), 1e-30))


def band_limited_noise(n, rate, top, rng):
    spec = np.fft.rfft(rng.standard_normal(n))
    spec[np.fft.rfftfreq(n, 1 / rate) > top] = 0
    return (np.fft.irfft(spec, n) * 0.1).astype(np.float32)


def measure(host, recipe):
    rng = np.random.default_rng(0)
    n, skip = 4 * host, host // 2
    t = np.arange(n) / host
    back = lambda x: oneshot(oneshot(x, host, MODEL_RATE, recipe), MODEL_RATE, host, recipe)
    sine = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    row = {"lag_ms": chain_lag_ms(host, recipe), "sine1k": snr_db(sine, back(sine), skip)}
    for top in (16000, 20000):
        if top < min(host, MODEL_RATE) / 2:
            x = band_limited_noise(n, host, top, rng)
            row[f"noise{top // 1000}k"] = snr_db(x, back(x), skip)
    if host > MODEL_RATE:
        tone = (0.5 * np.sin(2 * np.pi * 23000 * t)).astype(np.float32)
        left = oneshot(tone, host, MODEL_RATE, recipe)[skip:-skip]
    else:
        tone = (0.5 * np.sin(2 * np.pi * 10000 * t)).astype(np.float32)
        up = oneshot(tone, host, MODEL_RATE, recipe)[skip:-skip]
        spec = np.fft.rfft(up)
        spec[np.fft.rfftfreq(len(up), 1 / MODEL_RATE) <= host / 2] = 0
        left = np.fft.irfft(spec, len(up))
    row["alias"] = 10 * np.log10(np.mean(left ** 2) / np.mean(tone ** 2) + 1e-30)
    return row


if __name__ == "__main__":
    rates = [int(r) for r in (sys.argv[1] if len(sys.argv) > 1 else "22050,48000").split(",")]
    names = sys.argv[2].split(",") if len(sys.argv) > 2 else list(RECIPES)
    for host in rates:
        for name in names:
            row = measure(host, RECIPES[name])
            print(f"{host} {name:<16} " + "  ".join(f"{k} {v:7.1f}" for k, v in row.items()),
                  flush=True)
