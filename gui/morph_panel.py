"""The Morph panel: content and texture sources (a file or any clip, picked or dropped), the
morph parameters with undo, presets, and Render."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QProgressBar, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from star_plugin.errors import StarError
from star_plugin.morph import MODES, MorphParams, rename_legacy_keys
from star_plugin.morph_presets import MorphPreset, list_presets, load_preset, save_preset

from .undo import UndoableState

CLIP_MIME = "application/x-star-clip"
MODE_HELP = {"loop": "the source's frames, repeated", "hold": "time-aligned, last frame held",
             "mean": "the source's average frame (a frozen texture)",
             "match": "the input's motion with the source's colour"}


def dropped_clip_id(mime) -> Optional[int]:
    if mime.hasFormat(CLIP_MIME):
        try:
            return int(bytes(mime.data(CLIP_MIME)).decode())
        except ValueError:
            return None
    return None


def dropped_files(mime) -> List[str]:
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class SourceSlot(QWidget):
    """A clip picker that also takes files and clips dropped on it."""

    open_requested = pyqtSignal()
    files_dropped = pyqtSignal(list)

    def __init__(self, none_label: Optional[str] = None, parent=None):
        super().__init__(parent)
        self.none_label = none_label
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(18)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.open_button = QPushButton("Open...")
        self.open_button.clicked.connect(self.open_requested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.open_button)
        self.setAcceptDrops(True)
        self.setToolTip("pick a clip, open a file, or drop an audio file or a clip here")
        self.set_clips([])

    def set_clips(self, clips) -> None:
        """Refill, keeping the current choice when it still exists."""
        keep = self.clip_id()
        self.combo.blockSignals(True)
        self.combo.clear()
        if self.none_label:
            self.combo.addItem(self.none_label, None)
        for clip in clips:
            self.combo.addItem(f"{clip.name}  [{clip.origin}]", clip.id)
        index = self.combo.findData(keep) if keep is not None else -1
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(False)

    def clip_id(self) -> Optional[int]:
        return self.combo.currentData()

    def select(self, clip_id: Optional[int]) -> None:
        index = self.combo.findData(clip_id)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def dragEnterEvent(self, event):
        mime = event.mimeData()
        if dropped_clip_id(mime) is not None or dropped_files(mime):
            event.acceptProposedAction()

    def dropEvent(self, event):
        mime = event.mimeData()
        clip_id = dropped_clip_id(mime)
        if clip_id is not None:
            self.select(clip_id)
        elif dropped_files(mime):
            self.files_dropped.emit(dropped_files(mime))
        event.acceptProposedAction()


class _AmountSlider(QWidget):
    """A slider over [bottom, top] in steps of 1/scale with its value shown beside it."""

    def __init__(self, top: float, scale: int, parent=None, bottom: float = 0.0):
        super().__init__(parent)
        self.scale = scale
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(round(bottom * scale)), int(round(top * scale)))
        self.label = QLabel()
        self.label.setMinimumWidth(36)
        self.slider.valueChanged.connect(lambda v: self.label.setText(f"{self.value():.2f}"))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        self.label.setText(f"{self.value():.2f}")

    def value(self) -> float:
        return self.slider.value() / self.scale

    def set_value(self, value: float) -> None:
        self.slider.setValue(int(round(value * self.scale)))


class MorphPanel(QWidget, UndoableState):
    render_requested = pyqtSignal()
    error = pyqtSignal(str, str)  # title, message
    state_changed = pyqtSignal()
    undo_label = "morph parameters"

    def __init__(self, undo_stack, parent=None):
        super().__init__(parent)
        self.content = SourceSlot()
        self.texture_source = SourceSlot("(none: temperature only)")
        sources = QGroupBox("Sources")
        form = QFormLayout(sources)
        form.addRow("Content (A)", self.content)
        form.addRow("Texture from", self.texture_source)

        self.structure_amount = _AmountSlider(1.0, 100)
        self.structure_amount.setToolTip("0: keep the content's structure; 1: take the texture "
                                         "source's structure (pitch, rhythm)")
        self.texture_amount = _AmountSlider(1.0, 100)
        self.texture_amount.setToolTip("0: keep the content's texture; 1: take the texture "
                                       "source's texture")
        self.temperature = _AmountSlider(4.0, 100)
        self.temperature.setToolTip("resample the texture channels around the posterior")
        self.mix = _AmountSlider(1.0, 100)
        self.mix.setToolTip("dry/wet: 0 the content as it is (latency-aligned), 1 STAR only")
        self.output_gain = _AmountSlider(24.0, 10, bottom=-60.0)
        self.output_gain.setToolTip("output level in dB, after the mix")
        self.mode = QComboBox()
        for mode in MODES:
            self.mode.addItem(f"{mode}: {MODE_HELP[mode]}", mode)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1)
        params = QGroupBox("Morph")
        pform = QFormLayout(params)
        pform.addRow("Structure amount", self.structure_amount)
        pform.addRow("Texture amount", self.texture_amount)
        pform.addRow("Temperature", self.temperature)
        pform.addRow("Mode", self.mode)
        pform.addRow("Seed", self.seed)
        pform.addRow("Mix (dry/wet)", self.mix)
        pform.addRow("Output gain (dB)", self.output_gain)

        self.preset = QComboBox()
        self.preset.addItem("(choose a preset)", None)
        for preset in list_presets():
            self.preset.addItem(preset.name, preset.name)
            self.preset.setItemData(self.preset.count() - 1, preset.description,
                                    Qt.ItemDataRole.ToolTipRole)
        self.preset.activated.connect(self._preset_chosen)
        self.load_button = QPushButton("Load...")
        self.save_button = QPushButton("Save...")
        presets = QHBoxLayout()
        presets.addWidget(QLabel("Preset"))
        presets.addWidget(self.preset, 1)
        presets.addWidget(self.load_button)
        presets.addWidget(self.save_button)

        self.render_button = QPushButton("Render  (Ctrl+R)")
        self.render_button.clicked.connect(self.render_requested)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(sources)
        layout.addWidget(params)
        layout.addLayout(presets)
        layout.addWidget(self.render_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self._gains: list = []  # per-channel gains come from presets; no control of their own
        self.apply_state(MorphParams(texture_amount=0.8).to_dict())
        self.init_undo(undo_stack)
        for key, widget in (("structure_amount", self.structure_amount),
                            ("texture_amount", self.texture_amount),
                            ("temperature", self.temperature), ("mix", self.mix),
                            ("output_gain_db", self.output_gain)):
            widget.slider.valueChanged.connect(lambda _, k=key: self.changed(k))
        self.mode.currentIndexChanged.connect(lambda _: self.changed("mode"))
        self.seed.valueChanged.connect(lambda _: self.changed("seed"))

    # ----------------------------------------------------------------- parameters
    def state(self) -> dict:
        return {"structure_amount": self.structure_amount.value(),
                "texture_amount": self.texture_amount.value(),
                "temperature": self.temperature.value(), "mode": self.mode.currentData(),
                "seed": self.seed.value(), "gains": list(self._gains),
                "mix": self.mix.value(), "output_gain_db": self.output_gain.value()}

    def apply_state(self, state: dict) -> None:
        """Show ``state`` (MorphParams fields); settings saved by an earlier version, with
        ``structure``/``texture`` for the amounts, load the same."""
        state = rename_legacy_keys(state, "morph panel state")
        self.structure_amount.set_value(float(state["structure_amount"]))
        self.texture_amount.set_value(float(state["texture_amount"]))
        self.temperature.set_value(float(state["temperature"]))
        self.mode.setCurrentIndex(max(0, self.mode.findData(state["mode"])))
        self.seed.setValue(int(state["seed"]))
        self._gains = list(state.get("gains") or [])
        # presets saved before mix and output gain existed load as fully wet, 0 dB
        self.mix.set_value(float(state.get("mix", 1.0)))
        self.output_gain.set_value(float(state.get("output_gain_db", 0.0)))

    def params(self) -> MorphParams:
        return MorphParams.from_dict(self.state())

    # ----------------------------------------------------------------- presets
    def _preset_chosen(self, index: int) -> None:
        name = self.preset.itemData(index)
        if name:
            self.load_preset_from(name)

    def load_preset_from(self, name_or_path) -> bool:
        """A bundled preset name or a preset file; a bad one gives an error dialog."""
        try:
            preset = load_preset(name_or_path)
        except StarError as exc:
            self.error.emit("Cannot load preset", f"{exc}\n\nChoose a preset saved by STAR "
                            "(Save... in this panel, or 'star presets list' for the bundled ones).")
            return False
        self.set_state(preset.params.to_dict(), f"preset '{preset.name}'")
        self.preset.setCurrentIndex(max(0, self.preset.findData(preset.name)))
        self.status.setText(f"Preset '{preset.name}': {preset.description}")
        return True

    def save_preset_to(self, path, description: str = "") -> Optional[Path]:
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        try:
            saved = save_preset(MorphPreset(path.stem, description or
                                            f"saved from STAR Studio ({path.stem})",
                                            self.params()), path)
        except (StarError, OSError) as exc:
            self.error.emit("Cannot save preset", f"'{path}' could not be written: {exc}\n\n"
                            "Choose a folder you can write to.")
            return None
        self.status.setText(f"Preset saved to {saved}")
        return saved

    # ----------------------------------------------------------------- rendering
    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def set_running(self, running: bool) -> None:
        self.render_button.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)  # busy
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
