"""Atomic file output, and the one rule for every path a command writes.

Atomic: ``atomic_path`` writes a temporary file beside the target and renames it into place
when complete, so an existing file is never left half-written and a failed write leaves no
temporary behind.

The output rule (``OutputGuard``), applied by every ``star`` command that writes, before it
reads or computes anything:

1. no output names an input of the run (also through ``./``, ``sub/..``, a symlink or a hard
   link), nor another output of the same run;
2. a file output is not a directory and its name fits the file system, a directory output is
   not a file, and the place accepts a new file (probed: a temporary is created and removed);
3. temporaries of an earlier run that was killed (``.NAME.star-PID-*.tmp*``, PID gone) beside
   each output are removed, and the removal is reported;
4. ``guard.together()``: the outputs written in the block are renamed into place only when the
   whole block succeeded, so a failed run writes nothing.

Write failures name the user's path and the OS reason (``cannot write 'OUT': No space left
on device``), never the temporary.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional, Tuple

from .errors import OutputError

#: Marker in our temporary names: ``.NAME.star-PID-RANDOM.tmp[SUFFIX]``. The writer's PID
#: lets a later run tell its own crashed leftovers (kill -9, power loss) from a live write.
TEMP_MARK = ".star-"
_TEMP_RE = re.compile(r"^\.(?P<name>.*)\.star-(?P<pid>\d+)-[0-9a-f]+\.tmp")
NAME_MAX = 255  # bytes per file name on Linux file systems; pathconf may say otherwise

#: The ``together()`` block in force (None outside one): writes to its paths wait for its end.
_GROUP: ContextVar[Optional["_Group"]] = ContextVar("star_output_group", default=None)


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def _temp_name(target: Path, suffix: str) -> Path:
    """Beside ``target``; the target's name is shortened so that the temporary's name stays
    within NAME_MAX even when the target's own name is near it."""
    tail = f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(6)}.tmp{suffix}"
    room = max(0, _name_max(target.parent) - 1 - len(os.fsencode(tail)))
    name = os.fsdecode(os.fsencode(target.name)[:room])
    return target.parent / f".{name}{tail}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # alive under another user / not a real PID
        return pid > 0
    return True


def _stale_temps(directory: Path, name: Optional[str] = None) -> List[Path]:
    """Our temporaries in ``directory`` whose writer is gone (for ``name`` only, if given:
    a shortened temporary name holds a prefix of it)."""
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    stale = []
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if match and (name is None or name.startswith(match["name"])) \
                and not _pid_alive(int(match["pid"])):
            stale.append(entry)
    return stale


def _unlink_all(paths: Iterable[Path]) -> List[Path]:
    removed = []
    for path in paths:
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def remove_stale_temps(target) -> int:
    """Delete temporaries of our own naming for ``target`` left by a process that is gone
    (killed mid-write); returns how many were removed. Others' files are never touched."""
    target = Path(os.fspath(target))
    return len(_unlink_all(_stale_temps(target.parent, target.name)))


# ----------------------------------------------------------------------------- write errors

def _reason(exc: OSError) -> str:
    if exc.errno == errno.EFBIG:
        return f"{exc.strerror} (over the file-size limit, ulimit -f)"
    return exc.strerror or str(exc)


def _probe_write(tmp: Path) -> Optional[str]:
    """Why writing ``tmp`` failed, asked of the OS: libsndfile says only "System error." and
    Pedalboard "Unable to write data". When the disk is full or a size limit was reached,
    one more write to the same file fails the same way (the file is deleted afterwards)."""
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
    except OSError:  # gone already: nothing to learn from it
        return None
    try:
        block = bytes(65536)
        for _ in range(16):  # a short write first, then the error
            os.write(fd, block)
    except OSError as exc:
        return _reason(exc)
    finally:
        os.close(fd)
    return None


def write_failure(target, exc: Optional[BaseException] = None, tmp=None) -> OutputError:
    """The one-line error for a failed write of ``target``: the OS reason (from ``exc``, or
    probed on ``tmp`` when a library hid it), naming the user's path, never the temporary."""
    reason = _reason(exc) if isinstance(exc, OSError) and exc.strerror else None
    if reason is None and tmp is not None:
        reason = _probe_write(Path(tmp))
    if reason is None:
        text = " ".join(str(exc).split()) if exc is not None else ""
        if tmp is not None:
            text = text.replace(os.fspath(tmp), os.fspath(target))
        reason = text or (type(exc).__name__ if exc is not None else "the write failed")
    return OutputError(f"cannot write '{target}': {reason}")


def _about_temp(exc: BaseException, tmp: Path) -> bool:
    """An OSError from writing the temporary (not from some other file the block touched)."""
    return isinstance(exc, OSError) and exc.filename in (None, os.fspath(tmp), tmp)


# ----------------------------------------------------------------------------- atomic writes

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s directory (created if needed); when the block
    succeeds, flush it to disk and ``os.replace`` it onto ``path`` (keeping the permissions of a
    file being replaced), or, inside a ``together()`` block covering ``path``, at that block's
    end; when it fails, delete it. ``suffix`` ends the temporary name (for writers that pick
    the format from the extension). Stale temporaries of a killed earlier write to the same
    target are removed first. OS errors name ``path`` (``OutputError``)."""
    target = Path(os.fspath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        tmp = _temp_name(target, suffix)
        # O_EXCL: never clobber anything; mode 0o666 & ~umask like an ordinary new file.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise write_failure(target, exc) from None
    try:
        yield tmp
        _fsync(tmp)
        if target.exists():
            shutil.copymode(target, tmp)
        group = _GROUP.get()
        if group is not None and group.covers(target):
            group.pending.append((tmp, target))
        else:
            os.replace(tmp, target)
    except BaseException as exc:
        failure = write_failure(target, exc, tmp) if _about_temp(exc, tmp) else None
        _unlink_all([tmp])
        if failure is not None:
            raise failure from None
        raise


def write_bytes_atomic(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# ----------------------------------------------------------------------------- the output rule

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
    for src in inputs:
        if src is not None and same_file(output, src):
            raise OutputError(f"{option} '{output}' is the input file '{src}' (same file); "
                              "choose another output name")


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _check_name(path: Path) -> None:
    """No part of ``path`` is longer than a file name may be (checked first: asking the OS
    anything about such a path fails with an error naming no option)."""
    if any(len(os.fsencode(p.name)) > NAME_MAX for p in (path, *path.parents)):
        raise OutputError(f"cannot write '{path}': {os.strerror(errno.ENAMETOOLONG)} (a "
                          f"name of more than {NAME_MAX} bytes)")


def _check_place(path: Path, directory_output: bool) -> None:
    """The place of ``path`` accepts a new file: the nearest existing folder is a folder and a
    temporary can be created there (read-only, /proc, permissions), without creating any
    folder yet."""
    start = path if directory_output else path.parent
    place = _existing_ancestor(start.absolute())
    if not place.is_dir():
        raise OutputError(f"cannot write '{path}': '{place}' is not a directory")
    probe = _temp_name(place / "probe", "")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {_reason(exc)}") from None
    _unlink_all([probe])


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


class _Group:
    """The paths a ``together()`` block covers and the finished temporaries waiting for it."""

    def __init__(self, files: Iterable[Path], directories: Iterable[Path]):
        self.files = {p.resolve() for p in files}
        self.directories = [d.resolve() for d in directories]
        self.pending: List[Tuple[Path, Path]] = []

    def covers(self, target: Path) -> bool:
        target = target.resolve()
        return target in self.files or any(d in target.parents for d in self.directories)


class OutputGuard:
    """The output rule (module docstring) for one run: checked when constructed.

    ``files`` and ``directories``: ``(option, path)`` pairs (None paths are skipped);
    ``inputs``: every file the run reads (None skipped). ``report`` gets one line per removed
    stale temporary (default: a ``note:`` on stderr). Raises ``OutputError`` naming the option
    and path."""

    def __init__(self, files: Iterable[Tuple[str, object]] = (),
                 directories: Iterable[Tuple[str, object]] = (), inputs: Iterable = (),
                 report: Optional[Callable[[str], None]] = _note):
        self.files = [(o, Path(os.fspath(p))) for o, p in files if p is not None]
        self.directories = [(o, Path(os.fspath(p))) for o, p in directories if p is not None]
        self.report = report or (lambda message: None)
        for option, path in self.files:
            _check_name(path)
            if path.is_dir():
                raise OutputError(f"{option} '{path}' is a directory; give a file name")
            _check_place(path, directory_output=False)
        for option, path in self.directories:
            _check_name(path)
            if path.exists() and not path.is_dir():
                raise OutputError(f"{option} '{path}' is an existing file; it must be a "
                                  "directory (this command writes several files into it)")
            _check_place(path, directory_output=True)
        for i, (option, path) in enumerate(self.files):
            for other_option, other in self.files[i + 1:]:
                if same_file(path, other):
                    raise OutputError(f"{option} '{path}' and {other_option} '{other}' name "
                                      "the same file; choose different names")
        self.check_inputs(inputs)
        self._remove_stale()

    def check_inputs(self, inputs: Iterable) -> None:
        """No file output names one of ``inputs`` (also for inputs found later, such as the
        files a chain reads)."""
        inputs = [i for i in inputs if i is not None]
        for option, path in self.files:
            refuse_overwriting_input(path, inputs, option)

    def _remove_stale(self) -> None:
        places = {p.parent for _, p in self.files} | {p for _, p in self.directories}
        for place in sorted(places):
            for path in _unlink_all(_stale_temps(place)):
                self.report(f"removed '{path}', a temporary file left by a killed run")

    @contextmanager
    def together(self) -> Iterator[None]:
        """Outputs written in the block (to the guarded files, or under the guarded
        directories) are renamed into place only when the block succeeds; otherwise none is."""
        group = _Group([p for _, p in self.files], [p for _, p in self.directories])
        token = _GROUP.set(group)
        try:
            yield
        except BaseException:
            _unlink_all(tmp for tmp, _ in group.pending)
            raise
        finally:
            _GROUP.reset(token)
        for i, (tmp, target) in enumerate(group.pending):
            try:
                os.replace(tmp, target)
            except OSError as exc:
                _unlink_all(t for t, _ in group.pending[i:])
                raise write_failure(target, exc) from None
