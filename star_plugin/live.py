"""Live input -> chain -> output through ``pedalboard.io.AudioStream``.

Pedalboard's stream can only host its own C++ plugins, so the chain runs here: one stream
records from the input device (``read``), the chain processes each block (``reset=False``),
and a second stream plays the result (``write`` blocks until played, which paces the loop).
"""
from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from .errors import StarError


class NoAudioDeviceError(StarError):
    """No usable audio input or output device."""


def audio_devices() -> Tuple[List[str], List[str]]:
    """(input device names, output device names) as Pedalboard sees them."""
    from pedalboard.io import AudioStream

    try:
        return list(AudioStream.input_device_names), list(AudioStream.output_device_names)
    except Exception:  # no audio backend at all (headless machines, containers)
        return [], []


def _pick(kind: str, wanted: Optional[str], names: List[str], default: Optional[str]) -> str:
    if not names:
        raise NoAudioDeviceError(
            f"no audio {kind} device was found on this machine, so live mode cannot run. "
            f"Connect or enable an {kind} device (on Linux, check that PulseAudio/PipeWire or "
            "ALSA sees it), or process files instead: 'star chain IN -o OUT --chain ...'")
    if wanted is None:
        return default if default in names else names[0]
    if wanted not in names:
        raise NoAudioDeviceError(f"audio {kind} device {wanted!r} not found; available: "
                                 + ", ".join(repr(n) for n in names))
    return wanted


def pick_devices(input_device: Optional[str] = None,
                 output_device: Optional[str] = None) -> Tuple[str, str]:
    """The (input, output) device names to use; a clear error when there are none."""
    from pedalboard.io import AudioStream

    inputs, outputs = audio_devices()
    return (_pick("input", input_device, inputs,
                  getattr(AudioStream, "default_input_device_name", None)),
            _pick("output", output_device, outputs,
                  getattr(AudioStream, "default_output_device_name", None)))


def run_live(chain, input_device: Optional[str] = None, output_device: Optional[str] = None,
             sample_rate: int = 48000, buffer_size: int = 512, channels: int = 1,
             seconds: Optional[float] = None,
             on_block: Optional[Callable[[np.ndarray, float], None]] = None,
             stop: Optional[threading.Event] = None) -> dict:
    """Run until ``seconds`` pass, ``stop`` is set (a GUI's Stop button) or Ctrl-C.
    ``on_block(output, compute_seconds)`` is called after each block (meters, GUIs). Returns
    blocks, seconds and dropped input frames."""
    from pedalboard.io import AudioStream

    from .chain import StarChain

    if not isinstance(chain, StarChain):
        chain = StarChain([chain])
    source, sink = pick_devices(input_device, output_device)
    chain.reset()
    blocks, dropped, start = 0, 0, time.monotonic()
    try:
        with AudioStream(input_device_name=source, sample_rate=sample_rate,
                         buffer_size=buffer_size, num_input_channels=channels) as rec, \
                AudioStream(output_device_name=sink, sample_rate=sample_rate,
                            buffer_size=buffer_size, num_output_channels=channels) as play:
            rec.ignore_dropped_input = True
            while (seconds is None or time.monotonic() - start < seconds) and \
                    not (stop is not None and stop.is_set()):
                block = rec.read(buffer_size)
                t0 = time.perf_counter()
                out = chain.process_channels_first(block, sample_rate, buffer_size, reset=False)
                compute = time.perf_counter() - t0
                if out.shape[1]:
                    play.write(out, sample_rate)
                dropped += rec.dropped_input_frame_count
                blocks += 1
                if on_block is not None:
                    on_block(out, compute)
    except KeyboardInterrupt:
        pass
    except NoAudioDeviceError:
        raise
    except Exception as exc:
        raise NoAudioDeviceError(f"the audio devices ({source!r} -> {sink!r}) could not be "
                                 f"opened at {sample_rate} Hz, {buffer_size}-sample buffers: "
                                 f"{exc}") from None
    return {"blocks": blocks, "seconds": time.monotonic() - start, "dropped_input": dropped,
            "input": source, "output": sink}
