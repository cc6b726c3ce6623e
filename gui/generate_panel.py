"""The Generate panel: a prompt and STAR-Gen's settings; the window runs the generation on the
worker thread and this panel shows its progress and the Cancel button."""
from __future__ import annotations

import random

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                             QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from star_plugin.gen.generator import DEFAULT_CFG, DEFAULT_STEPS, MAX_VARIATIONS

MAX_STEPS = 500
EXAMPLE_PROMPT = "a soft flute playing a slow melody in the middle register"


class GeneratePanel(QWidget):
    generate_requested = pyqtSignal(dict)
    cancel_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("describe a sound, e.g. '" + EXAMPLE_PROMPT + "'")
        self.prompt.setText(EXAMPLE_PROMPT)
        self.prompt.returnPressed.connect(self.request)
        self.seconds = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=30.0, value=4.0,
                                      singleStep=0.5, suffix=" s")
        self.steps = QSpinBox(minimum=1, maximum=MAX_STEPS, value=DEFAULT_STEPS)
        self.steps.setToolTip("ODE steps: more is slower and usually a little cleaner")
        self.cfg = QDoubleSpinBox(decimals=1, minimum=0.0, maximum=20.0, value=DEFAULT_CFG,
                                  singleStep=0.5)
        self.cfg.setToolTip("classifier-free guidance: how strongly the prompt is followed")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.dice = QPushButton("Random")
        self.dice.setToolTip("a new random seed")
        self.dice.clicked.connect(lambda: self.seed.setValue(random.randrange(2**31 - 1)))
        self.variations = QSpinBox(minimum=1, maximum=MAX_VARIATIONS, value=2)
        self.variations.setToolTip("sounds per prompt, generated together")

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.dice)
        form = QFormLayout()
        form.addRow("Prompt", self.prompt)
        form.addRow("Duration", self.seconds)
        form.addRow("Steps", self.steps)
        form.addRow("CFG", self.cfg)
        form.addRow("Seed", seed_row)
        form.addRow("Variations", self.variations)

        self.generate_button = QPushButton("Generate  (Ctrl+G)")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.request)
        self.cancel_button = QPushButton("Cancel  (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m steps")
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

    # ----------------------------------------------------------------- window interface
    def settings(self) -> dict:
        return {"prompt": self.prompt.text(), "seconds": self.seconds.value(),
                "steps": self.steps.value(), "cfg": self.cfg.value(), "seed": self.seed.value(),
                "variations": self.variations.value()}

    def apply_settings(self, values: dict) -> None:
        """Restore remembered settings; values of the wrong type are ignored."""
        for key, widget in (("seconds", self.seconds), ("steps", self.steps), ("cfg", self.cfg),
                            ("seed", self.seed), ("variations", self.variations)):
            try:
                widget.setValue(type(widget.value())(values[key]))
            except (KeyError, TypeError, ValueError):
                pass
        if isinstance(values.get("prompt"), str) and values["prompt"].strip():
            self.prompt.setText(values["prompt"])

    def set_generator(self, generator, message: str = "") -> None:
        """The loaded generator (None: generation unavailable, ``message`` says why)."""
        self.generate_button.setEnabled(generator is not None)
        if generator is not None:
            self.seconds.setMaximum(round(generator.max_seconds - 0.05, 1))
        self.status.setText(message)

    def request(self) -> None:
        if self.generate_button.isEnabled():
            self.generate_requested.emit(self.settings())

    def set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, self.steps.value())
            self.progress.setValue(0)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
