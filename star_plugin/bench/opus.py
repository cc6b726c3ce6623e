"""Opus reference rows for ``star bench recon``: encode with ``opusenc``, decode with ``opusdec``.

Settings (docs/METRICS.md): ``opusenc --bitrate K --serial 0 --quiet`` (VBR, complexity 10,
automatic music/speech tuning: the opus-tools defaults), input a 32-bit float WAV of the clip at
its own rate and channel count; ``opusdec --float --rate <clip rate> --quiet`` to a float WAV.
opusdec removes the encoder's pre-skip, so the output is time-aligned with the input (checked by
cross-correlation in tests/test_bench_recon.py); it is trimmed or zero-padded to the input
length. The measured lag is recorded anyway.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import StarError

INSTALL_HINT = "install them with 'apt-get install opus-tools' (Debian/Ubuntu)"


class OpusError(StarError):
    """opusenc/opusdec missing or failing."""


def opus_tools() -> Optional[Tuple[str, str]]:
    """Paths of (opusenc, opusdec), or None when either is not on PATH."""
    enc, dec = shutil.which("opusenc"), shutil.which("opusdec")
    return (enc, dec) if enc and dec else None


def require_opus_tools() -> Tuple[str, str]:
    tools = opus_tools()
    if tools is None:
        raise OpusError(f"opusenc/opusdec not found on PATH; {INSTALL_HINT}")
    return tools


def parse_bitrates(text: str) -> list:
    """'6,12,24' -> [6.0, 12.0, 24.0] (kbit/s); opusenc accepts 6..256 kbit/s per channel."""
    from .report import BenchError

    try:
        rates = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise BenchError(f"--opus must be comma-separated kbit/s values such as 6,12,24, "
                         f"got {text!r}") from None
    if not rates or any(not (6 <= r <= 512) for r in rates):
        raise BenchError(f"--opus bitrates must be in 6..512 kbit/s, got {text!r}")
    return list(dict.fromkeys(rates))  # duplicates removed, order kept


def _run(cmd, what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise OpusError(f"{what} failed (exit {proc.returncode}): {' / '.join(tail)}")


def opus_roundtrip(audio: np.ndarray, rate: int, kbps: float, workdir,
                   tools: Optional[Tuple[str, str]] = None) -> Tuple[np.ndarray, int]:
    """Encode ``audio`` (channels, samples) at ``kbps`` and decode it at ``rate``.

    Returns (decoded audio of the input's shape, bytes of Opus audio packets: the file
    without the Ogg page headers and the OpusHead/OpusTags header packets).
    """
    from ..audio import read_audio, write_audio

    enc, dec = tools or require_opus_tools()
    work = Path(workdir)
    src, coded, out = work / "in.wav", work / "coded.opus", work / "out.wav"
    write_audio(src, audio, rate)  # 32-bit float WAV: no quantisation before the codec
    _run([enc, "--quiet", "--serial", "0", "--bitrate", f"{kbps:g}", str(src), str(coded)],
         f"opusenc --bitrate {kbps:g}")
    _run([dec, "--quiet", "--float", "--rate", str(int(rate)), str(coded), str(out)],
         f"opusdec --rate {rate}")
    decoded, out_rate = read_audio(out)
    if out_rate != rate:
        raise OpusError(f"opusdec wrote {out_rate} Hz, asked for {rate} Hz")
    size = ogg_audio_bytes(coded)
    for p in (src, coded, out):
        try:
            os.remove(p)
        except OSError:
            pass
    return match_length(decoded, audio.shape[-1]), size


def ogg_audio_bytes(path) -> int:
    """Total size of the audio packets of an Ogg Opus file (every packet after the first two,
    OpusHead and OpusTags; Ogg page headers excluded)."""
    data = Path(path).read_bytes()
    pos, packets, current, total = 0, 0, 0, 0
    while pos + 27 <= len(data):
        if data[pos:pos + 4] != b"OggS":
            raise OpusError(f"'{path}': not an Ogg stream at byte {pos}")
        n_seg = data[pos + 26]
        lacing = data[pos + 27: pos + 27 + n_seg]
        pos += 27 + n_seg
        for value in lacing:
            current += value
            pos += value
            if value < 255:  # a packet ends here
                if packets >= 2:
                    total += current
                packets, current = packets + 1, 0
    return total


def match_length(audio: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``n`` samples."""
    if audio.shape[-1] >= n:
        return np.ascontiguousarray(audio[..., :n])
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n - audio.shape[-1])]
    return np.pad(audio, pad)


def best_lag(estimate: np.ndarray, reference: np.ndarray, max_lag: int = 2048) -> int:
    """Lag (samples) maximising the cross-correlation of ``estimate`` against ``reference``
    (channels summed); positive means the estimate is late. FFT-based, |lag| <= max_lag."""
    e = np.atleast_2d(estimate).astype(np.float64)
    r = np.atleast_2d(reference).astype(np.float64)
    n = min(e.shape[-1], r.shape[-1])
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = (np.fft.rfft(e[:, :n], size) * np.conj(np.fft.rfft(r[:, :n], size))).sum(axis=0)
    cc = np.fft.irfft(spec, size)
    max_lag = min(max_lag, n - 1)
    window = np.concatenate([cc[size - max_lag:], cc[: max_lag + 1]])
    return int(np.argmax(window)) - max_lag
