"""Run a chain over an audio file chunk by chunk, in constant memory, for any file length.

The file is read with ``pedalboard.io.AudioFile`` a chunk at a time, streamed through the
chain (``reset=False``), and written as it goes to a temporary file next to the output, which
replaces the output only when everything succeeded (a failed run never leaves a half-written
or clobbered file). The chain's latencies are compensated: the output has the input's length
and is aligned with it, like a one-shot ``chain(audio, sr)``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import AudioFileError

CHUNK = 65536  # frames read per step: memory is a few of these, whatever the file's length
_BIT_DEPTHS = {"int8": 16, "int16": 16, "int24": 24, "int32": 24, "float32": 32, "float64": 32}


def _open_input(path: Path):
    from pedalboard.io import AudioFile

    if not path.is_file():
        raise AudioFileError(f"input file '{path}' does not exist")
    try:
        return AudioFile(str(path))
    except Exception as exc:
        raise AudioFileError(f"cannot read '{path}': {exc}") from None


def _open_output(temp: str, rate: float, channels: int, bit_depth: int, final: Path):
    from pedalboard.io import AudioFile

    errors = []
    for depth in dict.fromkeys((bit_depth, 24, 16)):  # the input's depth if the format has it
        try:
            return AudioFile(temp, "w", rate, channels, bit_depth=depth)
        except Exception as exc:
            errors.append(str(exc))
    raise AudioFileError(f"cannot write '{final}': {errors[-1]}")


def process_file(chain, input_path, output_path, buffer_size: int = 8192,
                 progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """``chain`` (a ``StarChain``, ``StarEffect`` or Pedalboard plugin) over a file.

    Returns facts about the run: frames, sample_rate, channels, seconds. ``progress(done,
    total)`` is called after every chunk."""
    from .chain import StarChain

    if not isinstance(chain, StarChain):
        chain = StarChain([chain])
    src, dst = Path(input_path), Path(output_path)
    if dst.exists() and dst.is_dir():
        raise AudioFileError(f"output '{dst}' is a directory")
    if dst.resolve() == src.resolve():
        raise AudioFileError(f"output '{dst}' is the input file; choose another name")
    dst.parent.mkdir(parents=True, exist_ok=True)
    reader = _open_input(src)
    with reader:
        rate, channels, total = reader.samplerate, reader.num_channels, reader.frames
        depth = _BIT_DEPTHS.get(str(reader.file_dtype), 24)
        fd, temp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix, dir=dst.parent)
        os.close(fd)
        try:
            with _open_output(temp, rate, channels, depth, dst) as writer:
                chain.reset()
                written = _stream(chain, reader, writer, rate, channels, total, buffer_size,
                                  progress)
            os.replace(temp, dst)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return {"frames": written, "sample_rate": rate, "channels": channels,
            "seconds": written / rate}


def _stream(chain, reader, writer, rate, channels, total, buffer_size, progress) -> int:
    written = 0
    done = 0
    while done < total:
        try:
            chunk = reader.read(min(CHUNK, total - done))
        except Exception as exc:
            raise AudioFileError(f"reading '{reader.name}' failed after {done} frames: {exc}") from None
        if chunk.shape[1] == 0:
            break
        done += chunk.shape[1]
        written += _write(writer, chain.process_channels_first(chunk, rate, buffer_size, reset=False),
                          total - written)
        if progress is not None:
            progress(done, total)
    written += _write(writer, chain.drain(done - written, channels, rate, buffer_size),
                      done - written)
    return written


def _write(writer, block: np.ndarray, room: int) -> int:
    block = np.asarray(block, np.float32)
    if block.ndim == 1:
        block = block[None]
    block = block[:, :max(room, 0)]
    if block.shape[1]:
        writer.write(np.ascontiguousarray(block))
    return block.shape[1]
