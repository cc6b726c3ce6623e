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


class _WriteFailed(Exception):
    """The writer refused a block (carries the library's exception)."""


def _open_input(path: Path):
    from pedalboard.io import AudioFile

    if not path.is_file():
        raise AudioFileError(f"input file '{path}' does not exist")
    try:
        reader = AudioFile(str(path))
    except Exception as exc:
        raise AudioFileError(f"cannot read '{path}': {exc}") from None
    rate, channels = reader.samplerate, reader.num_channels
    if not channels or not (np.isfinite(rate) and rate > 0):  # a truncated MP3 reports 0
        reader.close()
        raise AudioFileError(f"cannot read '{path}': it reports {channels} channels at "
                             f"{rate:g} Hz (corrupt or truncated)")
    return reader


def _chunks(reader, path: Path, total: int):
    """The input as float32 chunks of at most CHUNK frames. Float64 files are read with
    soundfile as float64 and narrowed without overflow (Pedalboard's float32 would turn 1e300
    into Inf, and the guard Inf into 0, where the rule is: clamp to 1e4)."""
    from .audio import narrow_float64

    done = 0
    wide = None
    if str(reader.file_dtype) == "float64":
        import soundfile as sf

        try:
            wide = sf.SoundFile(str(path))
        except Exception:  # a format only Pedalboard reads
            wide = None
    try:
        while done < total:
            step = min(CHUNK, total - done)
            try:
                if wide is not None:
                    chunk = narrow_float64(wide.read(step, dtype="float64", always_2d=True).T)
                else:
                    chunk = reader.read(step)
            except Exception as exc:
                raise AudioFileError(f"reading '{path}' failed after {done} frames: "
                                     f"{exc}") from None
            if chunk.shape[1] == 0:
                return
            done += chunk.shape[1]
            yield np.ascontiguousarray(chunk, dtype=np.float32)
    finally:
        if wide is not None:
            wide.close()


def _open_output(temp: str, rate: float, channels: int, bit_depth: int, final: Path):
    from pedalboard.io import AudioFile

    from .atomic import write_failure

    errors = []
    for depth in dict.fromkeys((bit_depth, 24, 16)):  # the input's depth if the format has it
        try:
            return AudioFile(temp, "w", rate, channels, bit_depth=depth)
        except Exception as exc:
            errors.append(exc)
    raise write_failure(final, errors[-1], temp)


def _check_complete(temp: Path, written: int, final: Path) -> None:
    """Pedalboard's writer drops a failed write at close without a word (a full disk, a
    file-size limit): the file must hold every frame written, or it is an error naming the
    OS reason."""
    import soundfile as sf

    from .atomic import write_failure

    slack = 2 * 1152 if final.suffix.lower() == ".mp3" else 0  # MP3 lengths are estimates
    try:
        frames = sf.info(str(temp)).frames
    except Exception:  # a format this libsndfile does not read: ask Pedalboard
        from pedalboard.io import AudioFile

        try:
            with AudioFile(str(temp)) as again:
                frames = again.frames
        except Exception as exc:
            raise write_failure(final, RuntimeError(f"the written file cannot be read back "
                                                    f"({exc})"), temp) from None
    if frames + slack < written:
        raise write_failure(final, RuntimeError(f"only {frames} of {written} frames reached "
                                                "the file"), temp)


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
    from .atomic import atomic_path, refuse_overwriting_input, write_failure
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
        if total == 0:
            raise AudioFileError(f"'{src}' has no samples (a valid but empty file); nothing "
                                 "to process")
        depth = _BIT_DEPTHS.get(str(reader.file_dtype), 24)
        with atomic_path(dst, suffix=dst.suffix) as temp:
            with _open_output(str(temp), rate, channels, depth, dst) as writer:
                chain.reset()
                try:
                    written = _stream(chain, _chunks(reader, src, total), writer, rate,
                                      channels, total, buffer_size, progress)
                except _NonFiniteOutput as exc:
                    where = chain.nonfinite_stage or "one of its stages"
                    raise AudioFileError(f"the chain produced {exc.args[0]} NaN/Inf samples "
                                         f"from '{src}' at {where}; '{dst}' was not "
                                         "written") from None
                except _WriteFailed as exc:
                    raise write_failure(dst, exc.args[0], temp) from None
            _check_complete(temp, written, dst)
    return {"frames": written, "sample_rate": rate, "channels": channels,
            "seconds": written / rate}


def _stream(chain, chunks, writer, rate, channels, total, buffer_size, progress) -> int:
    written = 0
    done = 0
    for chunk in chunks:
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
        try:
            writer.write(np.ascontiguousarray(block))
        except Exception as exc:  # Pedalboard: "Unable to write data" (disk full, ...)
            raise _WriteFailed(exc) from None
    return block.shape[1]
