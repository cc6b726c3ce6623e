"""Atomic file output: write a temporary file beside the target, then rename it into place.

An existing file is never left half-written, and a failed write leaves no temporary behind.
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


#: Marker in our temporary names: ``.NAME.star-PID-RANDOM.tmp[SUFFIX]``. The writer's PID
#: lets a later run tell its own crashed leftovers (kill -9, power loss) from a live write.
TEMP_MARK = ".star-"


def _temp_name(target: Path, suffix: str) -> Path:
    return target.parent / f".{target.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(6)}.tmp{suffix}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # alive under another user / not a real PID
        return pid > 0
    return True


def remove_stale_temps(target) -> int:
    """Delete temporaries of our own naming for ``target`` left by a process that is gone
    (killed mid-write); returns how many were removed. Others' files are never touched."""
    target = Path(os.fspath(target))
    prefix = f".{target.name}{TEMP_MARK}"
    removed = 0
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or ".tmp" not in name:
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            try:
                entry.unlink()
                removed += 1
            except OSError:
                pass
    return removed


@contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s directory (created if needed); when the block
    succeeds, flush it to disk and ``os.replace`` it onto ``path`` (keeping the permissions of a
    file being replaced); when it fails, delete it. ``suffix`` ends the temporary name (for
    writers that pick the format from the extension). Stale temporaries of a killed earlier
    write to the same target are removed first."""
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = _temp_name(target, suffix)
    # O_EXCL: never clobber anything; mode 0o666 & ~umask like an ordinary new file.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def same_file(a, b) -> bool:
    """True when ``a`` and ``b`` name one file: the same inode when both exist (hard links,
    symlinks), else the same fully resolved path."""
    try:
        if os.path.samefile(a, b):
            return True
    except OSError:  # one of them does not exist (yet)
        pass
    return Path(os.fspath(a)).resolve() == Path(os.fspath(b)).resolve()


def refuse_overwriting_input(output, inputs, option: str = "-o/--output") -> None:
    """Raise a one-line error when ``output`` is one of ``inputs`` (None entries skipped):
    an atomic write would otherwise replace the input with its own processed copy."""
    from .errors import AudioFileError

    for src in inputs:
        if src is not None and same_file(output, src):
            raise AudioFileError(f"{option} '{output}' is the input file '{src}' (same file); "
                            "choose another output name")
