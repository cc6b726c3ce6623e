"""The Effect chain panel: Pedalboard effects before and after the STAR stage, each with its
parameters. The chain is plain data ({"type", "params"} per stage, the ``StarChain`` format), so
it undoes, saves and renders like everything else."""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, List, Optional

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                             QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton, QSpinBox,
                             QVBoxLayout, QWidget)

from star_plugin.chain import builtin_plugins, plugin_parameters
from star_plugin.errors import StarError

from .undo import UndoableState

SECTIONS = ("before", "after")


@lru_cache(maxsize=1)
def available_effects() -> Dict[str, type]:
    """Display name -> Pedalboard class, for the built-ins that need no constructor argument
    (Convolution needs an impulse-response file: use ``star chain`` for it)."""
    out = {}
    for cls in builtin_plugins().values():
        try:
            cls()
        except Exception:
            continue
        out[cls.__name__] = cls
    return dict(sorted(out.items()))


def default_parameters(name: str) -> dict:
    return plugin_parameters(available_effects()[name]())


def check_stage(stage: dict) -> Optional[str]:
    """None when Pedalboard accepts the stage, else the reason."""
    from .clips import build_chain

    try:
        build_chain([stage])
    except StarError as exc:
        return str(exc)
    return None


class ChainPanel(QWidget, UndoableState):
    state_changed = pyqtSignal()
    undo_label = "effect chain"

    def __init__(self, undo_stack, parent=None):
        super().__init__(parent)
        self.effects = available_effects()
        self._chain: Dict[str, List[dict]] = {s: [] for s in SECTIONS}
        self.effect_combo = QComboBox()
        self.effect_combo.addItems(list(self.effects))
        if "Reverb" in self.effects:
            self.effect_combo.setCurrentText("Reverb")
        add_before, add_after = QPushButton("Add before STAR"), QPushButton("Add after STAR")
        add_before.clicked.connect(lambda: self.add_effect("before", self.effect_combo.currentText()))
        add_after.clicked.connect(lambda: self.add_effect("after", self.effect_combo.currentText()))
        adder = QHBoxLayout()
        adder.addWidget(self.effect_combo, 1)
        adder.addWidget(add_before)
        adder.addWidget(add_after)

        self.lists = {s: QListWidget() for s in SECTIONS}
        for section, widget in self.lists.items():
            widget.setMaximumHeight(110)
            widget.currentRowChanged.connect(lambda row, s=section: self._selected(s, row))
        star = QLabel("STAR morph  (the Morph panel's settings)")
        star.setAlignment(Qt.AlignmentFlag.AlignCenter)
        star.setStyleSheet("padding: 6px; border: 1px solid #c89b3c; border-radius: 4px;")
        self.remove_button, self.up_button, self.down_button = (QPushButton("Remove"),
                                                                QPushButton("Up"), QPushButton("Down"))
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        edit = QHBoxLayout()
        for b in (self.remove_button, self.up_button, self.down_button):
            edit.addWidget(b)

        self.editor = QGroupBox("Parameters")
        self.editor_form = QFormLayout(self.editor)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #d04040")
        self.problem.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(adder)
        layout.addWidget(QLabel("Before the STAR stage"))
        layout.addWidget(self.lists["before"])
        layout.addWidget(star)
        layout.addWidget(QLabel("After the STAR stage"))
        layout.addWidget(self.lists["after"])
        layout.addLayout(edit)
        layout.addWidget(self.editor)
        layout.addWidget(self.problem)
        layout.addStretch(1)
        self._selection = None  # (section, row)
        self.init_undo(undo_stack)
        self._refresh()

    # ----------------------------------------------------------------- state (undo, settings)
    def state(self) -> dict:
        return {s: [{"type": e["type"], "params": dict(e["params"])} for e in self._chain[s]]
                for s in SECTIONS}

    def apply_state(self, state: dict) -> None:
        chain = {s: [] for s in SECTIONS}
        for section in SECTIONS:
            for stage in state.get(section) or []:
                if isinstance(stage, dict) and stage.get("type") in self.effects:
                    chain[section].append({"type": stage["type"],
                                           "params": dict(stage.get("params") or {})})
        self._chain = chain
        self._refresh()

    def stages(self, section: str) -> List[dict]:
        return self.state()[section]

    # ----------------------------------------------------------------- editing
    def add_effect(self, section: str, name: str) -> None:
        self._chain[section].append({"type": name, "params": default_parameters(name)})
        self._selection = (section, len(self._chain[section]) - 1)
        self._refresh()
        self.changed(None)

    def remove_selected(self) -> None:
        if self._selection is None:
            return
        section, row = self._selection
        del self._chain[section][row]
        self._selection = None
        self._refresh()
        self.changed(None)

    def move_selected(self, step: int) -> None:
        if self._selection is None:
            return
        section, row = self._selection
        stages = self._chain[section]
        new = row + step
        if 0 <= new < len(stages):
            stages[row], stages[new] = stages[new], stages[row]
            self._selection = (section, new)
            self._refresh()
            self.changed(None)

    def set_parameter(self, section: str, row: int, name: str, value) -> bool:
        """Change one parameter; a value Pedalboard refuses is shown and not kept."""
        stage = self._chain[section][row]
        trial = {"type": stage["type"], "params": {**stage["params"], name: value}}
        problem = check_stage(trial)
        self.problem.setText(problem or "")
        if problem:  # rebuilt after this signal returns (its sender is in the editor)
            QTimer.singleShot(0, self._refresh_editor)
            return False
        stage["params"][name] = value
        self._refresh_list_texts()
        self.changed(f"{section}.{row}.{name}")
        return True

    # ----------------------------------------------------------------- display
    def _selected(self, section: str, row: int) -> None:
        if row < 0:
            return
        other = self.lists["after" if section == "before" else "before"]
        other.blockSignals(True)
        other.clearSelection()
        other.setCurrentRow(-1)
        other.blockSignals(False)
        self._selection = (section, row)
        self._refresh_editor()

    def _label(self, stage: dict) -> str:
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in list(stage["params"].items())[:3])
        return f"{stage['type']}({shown})"

    def _refresh_list_texts(self) -> None:
        for section in SECTIONS:
            for row, stage in enumerate(self._chain[section]):
                item = self.lists[section].item(row)
                if item is not None:
                    item.setText(self._label(stage))

    def _refresh(self) -> None:
        if self._selection is not None:
            section, row = self._selection
            if row >= len(self._chain[section]):
                self._selection = None
        for section in SECTIONS:
            widget = self.lists[section]
            widget.blockSignals(True)
            widget.clear()
            widget.addItems([self._label(s) for s in self._chain[section]])
            if self._selection and self._selection[0] == section:
                widget.setCurrentRow(self._selection[1])
            widget.blockSignals(False)
        has = self._selection is not None
        for b in (self.remove_button, self.up_button, self.down_button):
            b.setEnabled(has)
        self._refresh_editor()

    def _refresh_editor(self) -> None:
        while self.editor_form.rowCount():
            self.editor_form.removeRow(0)
        if self._selection is None:
            self.editor.setTitle("Parameters (select an effect)")
            return
        section, row = self._selection
        stage = self._chain[section][row]
        self.editor.setTitle(f"{stage['type']} ({section} STAR)")
        for name, value in stage["params"].items():
            self.editor_form.addRow(name.replace("_", " "),
                                    self._editor_for(section, row, name, value))

    def _editor_for(self, section, row, name, value) -> QWidget:
        commit = lambda v: self.set_parameter(section, row, name, v)  # noqa: E731
        if isinstance(value, bool):
            w = QCheckBox()
            w.setChecked(value)
            w.toggled.connect(commit)
        elif isinstance(value, int):
            w = QSpinBox(minimum=-1_000_000, maximum=1_000_000, value=value)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(commit)
        elif isinstance(value, float):
            w = QDoubleSpinBox(decimals=3, minimum=-1e6, maximum=1e6, value=value)
            w.setSingleStep(max(0.01, abs(value) / 10) if value else 0.05)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(commit)
        else:
            w = QLineEdit(str(value))
            w.editingFinished.connect(lambda: commit(w.text()))
        w.setObjectName(f"param_{name}")
        return w
