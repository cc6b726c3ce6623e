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


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s directory (created if needed); when the block
    succeeds, flush it to disk and ``os.replace`` it onto ``path`` (keeping the permissions of a
    file being replaced); when it fails, delete it."""
    target = Path(os.fspath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
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
