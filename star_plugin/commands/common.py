"""What several ``star`` commands do around their work: load the model, read and guard input
files, refuse outputs that would overwrite an input or cannot be written, report progress."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import StarError


def load_model(name):
    """A bundled name or model directory -> the ``StarVAE``."""
    from ..model_io import load_vae

    return load_vae(name)


def read_for_model(model, path):
    """An audio file, guarded, and as the model's batch -> (audio, torch batch, Layout)."""
    from ..convert import to_model_batch

    audio, rate = read_guarded(path, "; nothing to encode")
    batch, layout = to_model_batch(audio, rate, model.sample_rate, model.config.audio_channels)
    return audio, batch, layout


def read_guarded(path, doing: str = ""):
    """An audio file past the guard -> (audio, rate); an empty file is refused."""
    from ..audio import read_audio

    audio, rate = read_audio(path)
    if audio.shape[1] == 0:
        raise StarError(f"'{path}' has no samples (a valid but empty file){doing}")
    return guarded(audio, path), rate


def guarded(audio, path):
    """A file's samples past the streaming guard (NaN/Inf -> 0, |x| clamped to 1e4, a
    warning naming the file), so a file of 1e30 values cannot turn the output into NaN."""
    import numpy as np

    from ..guard import SAMPLE_LIMIT, clean_block

    nonfinite = int(np.count_nonzero(~np.isfinite(audio)))
    audio, fixed = clean_block(audio)
    if nonfinite:
        print(f"warning: '{path}': replaced {nonfinite} NaN/Inf samples with 0", file=sys.stderr)
    if fixed - nonfinite:
        print(f"warning: '{path}': clamped {fixed - nonfinite} samples beyond "
              f"+-{SAMPLE_LIMIT:g} (the input is far out of range)", file=sys.stderr)
    return audio


def guard_outputs(files=(), directories=(), inputs=()):
    """The output rule (``star_plugin.atomic.OutputGuard``: not an input, a writable place,
    stale temporaries removed, ``together()``), applied before anything is read or computed.
    ``files``/``directories``: (option, path) pairs; None paths are skipped."""
    from ..atomic import OutputGuard

    return OutputGuard(files, directories, inputs)


def guard_file_output(args, *inputs):
    """``-o`` of a command that writes one file from ``args.input`` (and ``inputs``, and the
    model's files)."""
    return guard_outputs(files=[("-o/--output", args.output)],
                         inputs=[args.input, *inputs, *model_files(args.model)])


def model_files(name, bundled_prefix: str = "") -> list:
    """The files of the model (or generator: ``bundled_prefix="gen-"``) named on the command
    line, found as ``load_vae`` finds them: inputs that no output may replace."""
    from ..bundled import presets_dir, resolve_name_or_path

    if name is None:
        return []
    path = Path(name).expanduser()
    if path.is_file():
        path = path.parent
    found = resolve_name_or_path(path, presets_dir() / "models" / f"{bundled_prefix}{name}")
    if found is None:
        return []
    return [p for p in found.iterdir() if p.is_file()]


def preset_file(name) -> list:
    """``--preset`` when it names a file (an input), else nothing (a bundled name)."""
    return [name] if name is not None and Path(name).is_file() else []


def check_audio_output(path, subtype=None) -> None:
    """Refuse an audio extension (or ``--subtype``) we cannot write before any rendering
    (``out.m4a`` used to fail only after the whole render)."""
    import soundfile as sf

    from ..audio import WRITE_FORMATS

    ext = Path(path).suffix.lower()
    if ext not in WRITE_FORMATS:
        what = ext or "files without an extension"
        raise StarError(f"-o/--output '{path}': cannot write {what}; use one of "
                        f"{', '.join(WRITE_FORMATS)}")
    fmt = WRITE_FORMATS[ext][0]
    if subtype is not None and not sf.check_format(fmt, subtype.upper()):
        raise StarError(f"--subtype {subtype} is not available for {ext} files; choose one of "
                        f"{', '.join(sf.available_subtypes(fmt))}")


def finite_or_error(audio, what: str):
    """Refuse to write NaN/Inf output (``morph``, ``stream``, ``recon``, ``chain`` alike)."""
    import numpy as np

    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise StarError(f"{what}: the model produced {bad} NaN/Inf samples; nothing written")
    return audio


def progress(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on stderr; off when stderr is not a terminal (pipes, logs, tests)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit in ("sample", "frame"),
                leave=False, disable=None, file=sys.stderr, dynamic_ncols=True)


def one_line(exc: BaseException) -> str:
    """An exception as one line (OSError: its reason and file)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"'{exc.filename}': {exc.strerror}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def write_json(path, data) -> None:
    """``data`` as indented JSON, written atomically."""
    import json

    from ..atomic import write_bytes_atomic

    write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
