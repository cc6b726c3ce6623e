"""Model work off the GUI thread. One worker thread runs tasks in order (they share the VAE);
a task reports progress, can be cancelled between steps, and ends in exactly one of
``finished(result)``, ``failed(message)`` or ``cancelled()``, delivered on the GUI thread."""
from __future__ import annotations

import sys
import threading
import traceback
from typing import Callable

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from star_plugin.errors import StarError


class Cancelled(Exception):
    """Raised inside a task when its Cancel was pressed."""


class TaskSignals(QObject):
    progress = pyqtSignal(int, int)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    ended = pyqtSignal()  # after any of the three above


class Task(QRunnable):
    """``work(task)`` runs on the worker thread; it calls ``task.report(done, total)``, which
    raises ``Cancelled`` once ``cancel()`` was called."""

    def __init__(self, name: str, work: Callable[["Task"], object]):
        super().__init__()
        self.setAutoDelete(False)
        self.name, self.work = name, work
        self.signals = TaskSignals()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def report(self, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled()
        self.signals.progress.emit(int(done), int(total))

    def run(self) -> None:
        try:
            if self._cancel.is_set():
                raise Cancelled()
            result = self.work(self)
            if self._cancel.is_set():
                raise Cancelled()
        except Cancelled:
            self.signals.cancelled.emit()
        except StarError as exc:  # our own errors already say what to do
            self.signals.failed.emit(str(exc))
        except MemoryError:
            self.signals.failed.emit("out of memory; try a shorter clip or fewer variations")
        except Exception as exc:  # anything else: a dialog, never a crash; details on stderr
            traceback.print_exc(file=sys.stderr)
            self.signals.failed.emit(f"unexpected error ({type(exc).__name__}: {exc}). The details "
                                     "are on the terminal; please report them.")
        else:
            self.signals.finished.emit(result)
        finally:
            self.signals.ended.emit()


class TaskQueue(QObject):
    """One worker thread; ``busy`` says whether anything is queued or running."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.active: list = []

    def submit(self, task: Task) -> Task:
        self.active.append(task)
        task.signals.ended.connect(lambda: self._ended(task))
        self.pool.start(task)
        return task

    def _ended(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)

    @property
    def busy(self) -> bool:
        return bool(self.active)

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel everything and wait for the worker (on close: no signal outlives the UI)."""
        for task in list(self.active):
            task.cancel()
        self.pool.clear()
        self.pool.waitForDone(timeout_ms)
