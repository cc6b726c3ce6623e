"""Undo for parameter changes. A panel's parameters are one plain-data state; every change
pushes (before, after) onto the window's ``QUndoStack``. Changes of the same control in a row
(a slider drag) merge into one step."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtGui import QUndoCommand, QUndoStack


class StateCommand(QUndoCommand):
    MERGE_ID = 4242

    def __init__(self, target: "UndoableState", before: dict, after: dict, key: Optional[str],
                 text: str):
        super().__init__(text)
        self.target, self.before, self.after, self.key = target, before, after, key
        self._applied = True  # the widgets already show ``after`` when this is pushed

    def id(self) -> int:
        return self.MERGE_ID if self.key else -1

    def mergeWith(self, other) -> bool:
        if not isinstance(other, StateCommand) or other.target is not self.target or \
                other.key != self.key:
            return False
        self.after = other.after
        return True

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.target.restore_state(self.after)

    def undo(self) -> None:
        self.target.restore_state(self.before)


class UndoableState:
    """Mix into a panel that has ``state() -> dict``, ``apply_state(dict)`` and a
    ``state_changed`` signal; call ``init_undo`` once its widgets exist and ``changed(key)``
    from every control."""

    undo_label = "parameters"

    def init_undo(self, stack: QUndoStack) -> None:
        self._undo_stack = stack
        self._restoring = False
        self._state = self.state()

    def changed(self, key: Optional[str] = None) -> None:
        if self._restoring:
            return
        new = self.state()
        if new == self._state:
            return
        old, self._state = self._state, new
        self._undo_stack.push(StateCommand(self, old, new, key, f"change {key or self.undo_label}"))
        self.state_changed.emit()

    def restore_state(self, state: dict) -> None:
        self._restoring = True
        try:
            self.apply_state(state)
        finally:
            self._restoring = False
        self._state = self.state()
        self.state_changed.emit()

    def set_state(self, state: dict, text: str) -> None:
        """Apply ``state`` as one undoable step (a preset, a reset)."""
        old = self._state
        self.restore_state(state)
        if self._state != old:
            self._undo_stack.push(StateCommand(self, old, self._state, None, text))
