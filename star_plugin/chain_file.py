"""Run a chain over an audio file chunk by chunk, in constant memory, for any file length.

The file is read with ``pedalboard.io.AudioFile`` a chunk at a time, streamed through the
chain (``reset=False``), and written as it goes to a temporary file next to the output, which
replaces the output only when everything succeeded (a failed run never leaves a half-written
or clobbered file). The chain's latencies are compensated: the output has the input's length
and is aligned with it, like a one-shot ``chain(audio, sr)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import AudioFileError

CHUNK = 65536  # frames read per step: memory is a few of these, whatever the file's length
_BIT_DEPTHS = {"int8": 16, "int16": 16, "int24": 24, "int32": 24, "float32": 32, "float64": 32}


class _NonFiniteOutput(Exception):
    """A chain stage produced NaN/Inf (carries the count)."""


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


def _available_frames(path: Path, declared: int) -> int:
    """Frames really in the file: a truncated WAV (data chunk shorter than its header says)
    is read by Pedalboard as zeros up to the declared length, so ask libsndfile and the WAV
    header instead, and warn as ``star recon`` does."""
    import warnings

    from .audio import TruncatedAudioWarning, wav_truncation

    available = declared
    trunc = wav_truncation(path, path.stat().st_size)
    if trunc is not None:
        available = min(available, trunc[1])
    else:
        try:
            import soundfile as sf

            available = min(available, sf.info(str(path)).frames)
        except Exception:  # a format libsndfile cannot open: trust Pedalboard
            pass
    if available < declared:
        warnings.warn(f"audio file '{path}' is truncated or corrupt: its header declares "
                      f"{declared} frames but only {available} are there; using those (not "
                      "padding with silence)", TruncatedAudioWarning, stacklevel=3)
    return available


def process_file(chain, input_path, output_path, buffer_size: int = 8192,
                 progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """``chain`` (a ``StarChain``, ``StarEffect`` or Pedalboard plugin) over a file.

    Returns facts about the run: frames, sample_rate, channels, seconds. ``progress(done,
    total)`` is called after every chunk. The output is written to a temporary file of our
    own naming beside it (mode from the umask) and renamed into place; temporaries left by a
    killed earlier run are removed. A chain that produces NaN/Inf is refused, nothing is
    written."""
    from .atomic import atomic_path, refuse_overwriting_input
    from .chain import StarChain
    from .effects import check_buffer_size

    buffer_size = check_buffer_size(buffer_size)
    if not isinstance(chain, StarChain):
        chain = StarChain([chain])
    src, dst = Path(input_path), Path(output_path)
    if dst.exists() and dst.is_dir():
        raise AudioFileError(f"output '{dst}' is a directory")
    refuse_overwriting_input(dst, [src], "output")
    reader = _open_input(src)
    with reader:
        rate, channels = reader.samplerate, reader.num_channels
        total = _available_frames(src, reader.frames)
        depth = _BIT_DEPTHS.get(str(reader.file_dtype), 24)
        with atomic_path(dst, suffix=dst.suffix) as temp:
            with _open_output(str(temp), rate, channels, depth, dst) as writer:
                chain.reset()
                try:
                    written = _stream(chain, reader, writer, rate, channels, total,
                                      buffer_size, progress)
                except _NonFiniteOutput as exc:
                    raise AudioFileError(f"the chain produced {exc.args[0]} NaN/Inf samples "
                                         f"from '{src}'; '{dst}' was not written") from None
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
    """Write at most ``room`` samples; NaN/Inf from a stage is refused (as ``morph``,
    ``stream`` and ``recon`` refuse), never written as a silent all-NaN file."""
    block = np.asarray(block, np.float32)
    if not np.isfinite(block).all():
        raise _NonFiniteOutput(int(np.count_nonzero(~np.isfinite(block))))
    if block.ndim == 1:
        block = block[None]
    block = block[:, :max(room, 0)]
    if block.shape[1]:
        writer.write(np.ascontiguousarray(block))
    return block.shape[1]
