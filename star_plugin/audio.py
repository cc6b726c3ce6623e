"""Audio in/out and conversions that never silently do the wrong thing.

Contract (DESIGN.md section 3): audio is a numpy float32 array shaped ``(channels, samples)`` --
the Pedalboard convention. Every function here accepts any sample rate and channel count.

* :func:`read_audio`      -- soundfile first, ``pedalboard.io.AudioFile`` as a fallback for
                             formats libsndfile cannot open. Truncated files are detected
                             (WAV data chunk shorter than declared, OGG without an end-of-stream
                             page, FLAC/MP3 that stop decoding early): what could be decoded is
                             returned with a :class:`TruncatedAudioWarning` (``strict=True``:
                             :class:`AudioFileError`). Nothing decodable -> AudioFileError.
* :func:`write_audio`     -- format from the extension, atomic (temp file + ``os.replace``).
* :func:`sanitize`        -- NaN/Inf -> 0, with a count.
* :func:`resample`        -- soxr, very high quality, exact output length.
* :func:`convert_channels`-- documented up/down-mix rules.
* :func:`as_channels_first` -- normalise a user array to float32 ``(channels, samples)``.
* :func:`conform`         -- one sound mixed to a model's channel count and rate (analyses,
                             texture sources, corpus clips; ``convert.py`` folds channels into
                             the batch instead, for rendering every channel).
* :func:`load_for_model`  -- read + sanitize + :func:`conform`, with an info dict.
"""
from __future__ import annotations

import math
import numbers
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_path, write_failure
from .errors import AudioFileError

__all__ = [
    "MAX_CHANNELS", "WRITE_FORMATS", "TruncatedAudioWarning",
    "read_audio", "write_audio", "sanitize", "resample", "convert_channels",
    "as_channels_first", "conform", "load_for_model",
]

#: Largest channel count accepted on the first axis of a 2-D array. A larger first axis almost
#: always means a ``(samples, channels)`` array was passed by mistake.
MAX_CHANNELS = 64

#: extension -> (libsndfile format, default subtype). Float subtypes store any value; the
#: integer/lossy ones (FLAC's PCM_24, Vorbis, MP3) clip to [-1, 1] and write_audio warns first.
WRITE_FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "FLOAT"),
    ".w64": ("W64", "FLOAT"),
    ".aif": ("AIFF", "FLOAT"),
    ".aiff": ("AIFF", "FLOAT"),
    ".caf": ("CAF", "FLOAT"),
    ".flac": ("FLAC", "PCM_24"),
    ".ogg": ("OGG", "VORBIS"),
    ".mp3": ("MP3", "MPEG_LAYER_III"),
}
_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
_READ_BLOCK = 65536  # frames per soundfile read
_SALVAGE_BLOCK = 256  # frames per read when recovering what precedes a decoder error
# MP3 lengths in headers can be estimates: a shortfall of up to two MPEG frames is not taken
# as truncation.
_MP3_SLACK = 2 * 1152
_NARROW_LIMIT = 1e30  # float64 samples beyond float32's range are brought to this first


class TruncatedAudioWarning(UserWarning):
    """A file ended before the length its header declares; the decodable part was returned."""


# ----------------------------------------------------------------------------- helpers

def _check_rate(name: str, value: Any) -> int:
    """A positive integer sample rate (integral floats such as 44100.0 are accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive integer number of Hz, got {value!r}")
    if isinstance(value, numbers.Integral):
        rate = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        rate = int(value)
    else:
        raise ValueError(f"{name} must be a positive integer number of Hz, got {value!r}")
    if rate <= 0:
        raise ValueError(f"{name} must be a positive integer number of Hz, got {value!r}")
    return rate


def _check_channels(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def as_channels_first(audio: Any) -> np.ndarray:
    """Return ``audio`` as a C-contiguous float32 array shaped ``(channels, samples)``.

    * 1-D input is mono: ``(samples,)`` -> ``(1, samples)``.
    * 2-D input must already be ``(channels, samples)`` with 1 <= channels <= ``MAX_CHANNELS``
      (64). A larger first axis raises ValueError suggesting ``audio.T`` -- the array is never
      transposed behind your back. (A tiny ``(samples, channels)`` array with <= 64 samples
      cannot be told apart and is taken as channels-first.)
    * dtype: floats are cast to float32 (values kept as they are); integer PCM is scaled to
      [-1, 1): int8 / 128, uint8 (8-bit WAV) (x - 128) / 128, int16 / 32768, int32 / 2**31.
      Other dtypes (int64, bool, complex, ...) are ambiguous and raise ValueError.

    The result may share memory with the input when no conversion was needed.
    """
    arr = np.asarray(audio)
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim != 2:
        raise ValueError(f"audio must be 1-D (mono) or 2-D (channels, samples), got an array "
                         f"with shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"audio must have at least one channel, got shape {arr.shape}")
    if arr.shape[0] > MAX_CHANNELS:
        raise ValueError(
            f"audio has shape {arr.shape}: expected (channels, samples) with at most "
            f"{MAX_CHANNELS} channels. If this is (samples, channels) (e.g. from soundfile), "
            f"pass audio.T"
        )
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f":
        out = arr.astype(np.float32, copy=False)
    elif kind == "i" and size in (1, 2, 4):
        out = arr.astype(np.float32) / np.float32(2 ** (8 * size - 1))
    elif kind == "u" and size == 1:
        out = (arr.astype(np.float32) - 128.0) / np.float32(128.0)
    else:
        raise ValueError(
            f"audio has dtype {arr.dtype}; expected float, or integer PCM int8/uint8/int16/int32 "
            f"(convert other types to float32 in [-1, 1] first)"
        )
    return np.ascontiguousarray(out, dtype=np.float32)


def sanitize(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN and +-Inf by 0. Returns ``(float32 copy, number of samples replaced)``.

    The input is never modified; callers should warn when the count is non-zero.
    """
    out = np.array(audio, dtype=np.float32, copy=True)
    bad = ~np.isfinite(out)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        out[bad] = 0.0
    return out, n_bad


# ----------------------------------------------------------------------------- reading

def wav_truncation(path: Path, file_size: int) -> tuple[int, int] | None:
    """For a RIFF/WAVE file whose data chunk is shorter than declared: (declared, available)
    frame counts. None when complete, not a RIFF WAV, or the header cannot tell (streamed
    files declare 0 or 0xFFFFFFFF bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            pos, block_align = 12, 0
            for _ in range(4096):  # bounded walk over the chunk list
                f.seek(pos)
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(16)
                    if len(fmt) >= 14:
                        block_align = struct.unpack("<H", fmt[12:14])[0]
                elif cid == b"data":
                    available = file_size - (pos + 8)
                    if size in (0, 0xFFFFFFFF) or size <= available or block_align == 0:
                        return None
                    return size // block_align, max(available, 0) // block_align
                pos += 8 + size + (size & 1)
                if pos >= file_size:
                    return None
    except OSError:
        return None
    return None


def _ogg_unterminated(path: Path, file_size: int) -> bool:
    """True when the last Ogg page in the file lacks the end-of-stream flag (file cut short)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, file_size - 65536 - 27))
            tail = f.read()
    except OSError:
        return False
    i = tail.rfind(b"OggS")
    if i < 0 or i + 5 >= len(tail):
        return False
    return not (tail[i + 5] & 0x04)


def narrow_float64(data: np.ndarray) -> np.ndarray:
    """float64 samples as float32 without overflow: finite values beyond float32's range
    (a float64 file of 1e300) become +-1e30, so the guard clamps them to +-1e4 as it does
    any loud sample, instead of a cast turning them into Inf (and then 0)."""
    data = np.asarray(data)
    if data.dtype != np.float64:
        return data.astype(np.float32, copy=False)
    finite = np.isfinite(data)
    return np.where(finite, np.clip(data, -_NARROW_LIMIT, _NARROW_LIMIT), data).astype(np.float32)


def _read_blocks(snd: sf.SoundFile, block: int, blocks: list[np.ndarray]) -> str | None:
    """Append blocks read from ``snd`` until the end; returns the decoder error, if any."""
    wide = snd.subtype == "DOUBLE"  # read as float64: a float32 cast would overflow to Inf
    try:
        while True:
            data = snd.read(block, dtype="float64" if wide else "float32", always_2d=True)
            if data.shape[0] == 0:
                return None
            blocks.append(narrow_float64(data))
    except Exception as exc:  # libsndfile decoder error part-way (e.g. FLAC lost sync)
        return str(exc).strip() or type(exc).__name__


def _read_soundfile(path: Path, snd: sf.SoundFile) -> tuple[np.ndarray, int, str | None]:
    """Read every decodable frame; returns (audio (channels, n), declared frames, error).

    Large blocks for speed; after a decoder error the file is reopened at the last good frame
    and read in small blocks, so a damaged file loses as little as the decoder allows."""
    declared, channels = snd.frames, snd.channels
    blocks: list[np.ndarray] = []
    error = _read_blocks(snd, _READ_BLOCK, blocks)
    if error is not None:
        good = sum(b.shape[0] for b in blocks)
        try:
            with sf.SoundFile(str(path)) as again:
                if good:
                    again.seek(good)
                _read_blocks(again, _SALVAGE_BLOCK, blocks)
        except Exception:
            pass
    data = np.concatenate(blocks, axis=0) if blocks else np.zeros((0, channels), np.float32)
    return np.ascontiguousarray(data.T), declared, error


def _read_pedalboard(path: Path) -> tuple[np.ndarray, float]:
    from pedalboard.io import AudioFile  # imported lazily: only needed for exotic formats

    with AudioFile(str(path)) as f:
        frames = int(f.frames)
        rate = float(f.samplerate)
        channels = int(f.num_channels)
        data = f.read(frames) if frames > 0 else np.zeros((channels, 0), np.float32)
    return np.ascontiguousarray(data, dtype=np.float32), rate


def read_audio(path: str | os.PathLike, *, strict: bool = False) -> tuple[np.ndarray, int]:
    """Read an audio file -> ``(audio float32 (channels, samples), sample_rate)``.

    soundfile (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...) is tried first;
    ``pedalboard.io.AudioFile`` only when libsndfile cannot open the file at all (it is *not*
    used to "rescue" a file libsndfile opened but could not decode: on a truncated FLAC it
    returns silence of the declared length). A valid file with 0 samples gives
    ``(channels, 0)``.

    Truncated files: the decodable part is returned with a :class:`TruncatedAudioWarning`;
    with ``strict=True`` an :class:`AudioFileError` is raised instead. A truncated file from
    which nothing can be decoded always raises.

    Every failure raises :class:`AudioFileError` naming the path and the problem.
    """
    p = Path(os.fspath(path))
    prefix = f"cannot read audio file '{p}'"
    if not p.exists():
        raise AudioFileError(f"{prefix}: file does not exist")
    if p.is_dir():
        raise AudioFileError(f"{prefix}: it is a directory, not a file")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise AudioFileError(f"{prefix}: {exc.strerror or exc}") from exc
    if size == 0:
        raise AudioFileError(f"{prefix}: file is empty (0 bytes)")

    try:
        snd = sf.SoundFile(str(p))
    except Exception as sf_exc:
        sf_msg = str(sf_exc).replace(f"Error opening {str(p)!r}: ", "").strip()
        try:
            audio, rate = _read_pedalboard(p)
        except Exception as pb_exc:
            pb_msg = str(pb_exc).strip() or type(pb_exc).__name__
            # libsndfile code 1 = SF_ERR_UNRECOGNISED_FORMAT; anything else means it knew the
            # format but the file is damaged (malformed header, truncated, ...).
            what = ("not a recognised audio format" if getattr(sf_exc, "code", 1) == 1
                    else "the file is corrupt, truncated or malformed")
            raise AudioFileError(
                f"{prefix}: {what} (soundfile: {sf_msg}; pedalboard: {pb_msg})"
            ) from sf_exc
        if not (math.isfinite(rate) and rate > 0):
            raise AudioFileError(f"{prefix}: invalid sample rate {rate!r} in the file")
        return audio, int(round(rate))

    with snd:
        rate = int(snd.samplerate)
        fmt = snd.format
        if rate <= 0:
            raise AudioFileError(f"{prefix}: invalid sample rate {rate} in the header")
        audio, declared, error = _read_soundfile(p, snd)
    got = audio.shape[1]

    problem = None
    if error is not None:
        problem = f"decoding stopped after {got} of {declared} frames ({error})"
    elif got < declared - (_MP3_SLACK if fmt == "MP3" else 0):
        problem = f"only {got} of the {declared} frames in the header could be decoded"
    elif fmt in ("WAV", "WAVEX"):
        trunc = wav_truncation(p, size)
        if trunc is not None:
            problem = (f"the WAV data chunk declares {trunc[0]} frames but the file holds only "
                       f"{trunc[1]}")
    elif fmt == "OGG" and _ogg_unterminated(p, size):
        problem = f"the Ogg stream has no end-of-stream page ({got} frames could be decoded)"

    if problem is not None:
        if got == 0:
            raise AudioFileError(f"{prefix}: the file is corrupt or truncated: {problem}")
        if strict:
            raise AudioFileError(f"{prefix}: the file is truncated or corrupt: {problem}")
        warnings.warn(
            f"audio file '{p}' is truncated or corrupt: {problem}; using the {got} frames "
            f"that could be read",
            TruncatedAudioWarning,
            stacklevel=2,
        )
    return audio, rate


# ----------------------------------------------------------------------------- writing

def write_audio(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write ``audio`` (``(channels, samples)``, or 1-D mono) to ``path``; returns the path.

    The format comes from the extension (see ``WRITE_FORMATS``). Default subtypes:
    ``.wav/.w64/.aif(f)/.caf`` -> ``FLOAT`` (32-bit float: nothing clips, values above 1.0
    survive), ``.flac`` -> ``PCM_24``, ``.ogg`` -> ``VORBIS``, ``.mp3`` -> ``MPEG_LAYER_III``.
    Integer and lossy subtypes clip to [-1, 1]; a :class:`UserWarning` says so when the peak
    exceeds 1. Non-finite samples raise ValueError (call :func:`sanitize` first). Ogg Vorbis
    with 6 or 8 channels warns: Vorbis reads them as 5.1/7.1 in its own channel order and
    low-passes the last channel as an LFE (libsndfile does not reorder channels).

    The write is atomic: a temporary file in the same directory is written, flushed to disk
    and ``os.replace``-d onto ``path``, so an existing file is never left half-written and the
    temporary file is removed on failure. Parent directories are created.

    Errors: bad ``audio`` shape/dtype, ``sample_rate`` or ``subtype`` -> ValueError naming the
    argument; unknown extension or a failure of the encoder/file system -> AudioFileError
    naming the path.
    """
    p = Path(os.fspath(path))
    prefix = f"cannot write audio file '{p}'"
    ext = p.suffix.lower()
    if ext not in WRITE_FORMATS:
        raise AudioFileError(f"{prefix}: unknown extension {ext or '(none)'!r}; supported: "
                             f"{', '.join(WRITE_FORMATS)}")
    fmt, default_subtype = WRITE_FORMATS[ext]
    arr = as_channels_first(audio)
    rate = _check_rate("sample_rate", sample_rate)
    if subtype is None:
        subtype = default_subtype
    elif not isinstance(subtype, str) or not sf.check_format(fmt, subtype.upper()):
        raise ValueError(f"subtype {subtype!r} is not valid for {ext} files; choose one of "
                         f"{', '.join(sf.available_subtypes(fmt))}")
    subtype = subtype.upper()
    n_bad = int(np.count_nonzero(~np.isfinite(arr)))
    if n_bad:
        raise ValueError(f"audio contains {n_bad} NaN/Inf samples; clean it with "
                         f"star_plugin.audio.sanitize() before writing '{p}'")
    if arr.shape[1] == 0 and fmt in ("FLAC", "MP3"):
        raise AudioFileError(f"{prefix}: libsndfile cannot store an empty (0-sample) signal as "
                             f"{fmt}; use .wav")
    if subtype not in _FLOAT_SUBTYPES and arr.size:
        peak = float(np.abs(arr).max())
        if peak > 1.0:
            warnings.warn(f"writing '{p}' as {subtype}: peak {peak:.3f} > 1.0 will clip; use a "
                          f"float subtype ('.wav' default FLOAT) or normalise", stacklevel=2)

    if fmt == "OGG" and arr.shape[0] in (6, 8):
        warnings.warn(f"writing '{p}' as Ogg Vorbis with {arr.shape[0]} channels: Vorbis takes "
                      f"them as {'5.1' if arr.shape[0] == 6 else '7.1'} in Vorbis order (FL FC FR "
                      f"... LFE) and the encoder low-passes the last channel as the LFE; use .wav "
                      f"or .flac to keep multichannel audio intact", stacklevel=2)
    if p.is_dir():
        raise AudioFileError(f"{prefix}: it is a directory")
    with atomic_path(p) as tmp:
        try:
            with sf.SoundFile(str(tmp), "w", samplerate=rate, channels=arr.shape[0],
                              subtype=subtype, format=fmt) as snd:
                snd.write(np.ascontiguousarray(arr.T))
        except Exception as exc:  # arguments were checked above: an I/O/encoder error
            text = re.sub(r"Error opening '[^']*': ", "", str(exc)).strip()
            raise write_failure(p, RuntimeError(text), tmp) from None
    return p


# ----------------------------------------------------------------------------- conversions

def resample(audio: np.ndarray, sr_in: int, sr_out: int, quality: str = "VHQ") -> np.ndarray:
    """Resample with soxr (default quality ``"VHQ"``, linear phase). Returns float32.

    ``audio``: ``(channels, samples)`` or 1-D mono (the result has the same number of
    dimensions). Rates are positive integers in Hz (any value, 8 kHz..192 kHz and beyond).
    The output has exactly ``round(samples * sr_out / sr_in)`` samples (halves rounded up),
    which is what soxr produces; 0- and 1-sample inputs work. Equal rates return a copy.
    """
    sr_in = _check_rate("sr_in", sr_in)
    sr_out = _check_rate("sr_out", sr_out)
    one_d = np.ndim(audio) == 1
    arr = as_channels_first(audio)
    channels, n = arr.shape
    if sr_in == sr_out:
        out = arr.copy()
    else:
        n_out = (n * sr_out + sr_in // 2) // sr_in
        if n == 0 or n_out == 0:
            out = np.zeros((channels, n_out), np.float32)
        else:
            y = soxr.resample(np.ascontiguousarray(arr.T), sr_in, sr_out, quality=quality)
            y = np.asarray(y, dtype=np.float32).reshape(-1, channels)
            if y.shape[0] > n_out:  # guard against soxr rounding differently
                y = y[:n_out]
            elif y.shape[0] < n_out:
                y = np.concatenate([y, np.zeros((n_out - y.shape[0], channels), np.float32)])
            out = np.ascontiguousarray(y.T)
    return out[0] if one_d else out


_G = 1.0 / math.sqrt(2.0)  # -3 dB
#: Downmix to stereo from the standard WAVE / SMPTE channel orders (ITU-R BS.775 style: centre
#: and surrounds at -3 dB, LFE dropped), before row normalisation.
_STEREO_DOWNMIX = {
    3: [[1, 0, _G], [0, 1, _G]],                                           # L R C
    4: [[1, 0, _G, 0], [0, 1, 0, _G]],                                     # FL FR BL BR
    5: [[1, 0, _G, _G, 0], [0, 1, _G, 0, _G]],                             # L R C Ls Rs
    6: [[1, 0, _G, 0, _G, 0], [0, 1, _G, 0, 0, _G]],                       # L R C LFE Ls Rs
    8: [[1, 0, _G, 0, _G, 0, _G, 0], [0, 1, _G, 0, 0, _G, 0, _G]],         # 7.1
}


def _mix_matrix(m: int, n: int) -> np.ndarray | None:
    """(n, m) mixing matrix from m input to n output channels, or None for a plain copy."""
    if m == n:
        return None
    if n == 1:
        return np.full((1, m), 1.0 / m)
    if m < n:  # upmix: repeat the input channels in order (mono -> all, stereo -> L R L R ...)
        mat = np.zeros((n, m))
        mat[np.arange(n), np.arange(n) % m] = 1.0
        return mat
    if n == 2 and m in _STEREO_DOWNMIX:
        mat = np.array(_STEREO_DOWNMIX[m], dtype=np.float64)
    else:  # fold: output j = mean of inputs j, j+n, j+2n, ...
        mat = np.zeros((n, m))
        mat[np.arange(m) % n, np.arange(m)] = 1.0
    return mat / mat.sum(axis=1, keepdims=True)


def convert_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Convert ``(M, samples)`` audio to ``channels`` = N channels. Always returns a new array.

    Rules, chosen so that nothing gets louder (each output is a weighted *mean* of inputs, so
    the output peak never exceeds the input peak) and no input channel is silently dropped
    except an LFE:

    * N == M: a copy.
    * N == 1: mean of all channels.
    * M == 1, or any M < N: the input channels are repeated in order, output j = input j % M
      (mono -> every channel; stereo -> quad gives L R L R).
    * N == 2 from a standard surround layout (channel order as in WAV/SMPTE files):
      3 = L R C, 4 = FL FR BL BR, 5 = L R C Ls Rs, 6 = 5.1 L R C LFE Ls Rs, 8 = 7.1 ->
      ITU-R BS.775 style downmix: L = FL + 0.707 C + 0.707 (left surrounds), R likewise,
      LFE dropped, each output divided by the sum of its weights.
    * Any other M > N: fold, output j = mean of inputs j, j+N, j+2N, ...
    """
    n = _check_channels("channels", channels)
    arr = as_channels_first(audio)
    mat = _mix_matrix(arr.shape[0], n)
    if mat is None:
        return arr.copy()
    return np.ascontiguousarray((mat.astype(np.float32) @ arr).astype(np.float32))


# ----------------------------------------------------------------------------- model input

def conform(audio: np.ndarray, sample_rate: int, target_rate: int, channels: int) -> np.ndarray:
    """(channels, samples) float32 -> ``channels`` channels (mixed, :func:`convert_channels`)
    at ``target_rate``: one sound for one model input (an analysis, a texture source, a
    corpus clip). Downmixes before resampling and upmixes after (cheaper, same result)."""
    if channels < audio.shape[0]:
        audio = convert_channels(audio, channels)
    if sample_rate != target_rate:
        audio = resample(audio, sample_rate, target_rate)
    if channels > audio.shape[0]:
        audio = convert_channels(audio, channels)
    return audio


def load_for_model(
    path: str | os.PathLike, sample_rate: int, channels: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``path`` and convert it for a model: float32 ``(channels, samples)`` at
    ``sample_rate``.

    Steps: :func:`read_audio` -> :func:`sanitize` (NaN/Inf -> 0, with a UserWarning naming the
    file and the count) -> :func:`convert_channels` / :func:`resample` (downmixes before
    resampling and upmixes after, which is cheaper and gives the same result).

    ``info`` holds ``path``, the original ``sample_rate``, ``channels``, ``samples`` and
    ``duration_s``, ``n_bad_samples`` (NaN/Inf replaced), ``resampled`` and
    ``channels_converted`` (bools).
    """
    target_rate = _check_rate("sample_rate", sample_rate)
    target_ch = _check_channels("channels", channels)
    audio, rate = read_audio(path)
    orig_ch, orig_n = audio.shape
    audio, n_bad = sanitize(audio)
    if n_bad:
        warnings.warn(f"audio file '{os.fspath(path)}' contains {n_bad} NaN/Inf samples; "
                      f"replaced them with 0", stacklevel=2)
    audio = conform(audio, rate, target_rate, target_ch)
    info = {
        "path": os.fspath(path),
        "sample_rate": rate,
        "channels": orig_ch,
        "samples": orig_n,
        "duration_s": orig_n / rate,
        "n_bad_samples": n_bad,
        "resampled": rate != target_rate,
        "channels_converted": orig_ch != target_ch,
    }
    return audio, info
