"""STAR Studio's main window: the layout, the menus, the models and the dialogs. The Generate,
Morph and Effect chain panels are on the left, the clip list and the views on the right; each
part of the window's work has its own controller, which the window builds and delegates to:

* ``clip_list.ClipListController``: the clips and their list (selection, drag, remove);
* ``file_actions.FileController``: open (dialog, drops, recent files), export, save the chain,
  preset dialogs;
* ``jobs.JobController``: Generate and Render (one of each at a time), Cancel;
* ``transport.Transport``: play, A/B, live mode (the toolbar);
* ``studio_settings.StudioSettings``: settings and recent files between sessions.

All model work goes through one ``TaskQueue`` (never on the GUI thread); every failure becomes
a dialog."""
from __future__ import annotations

from typing import List, Optional

from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QAction, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget,
                             QVBoxLayout, QWidget)

from star_plugin.errors import StarError

from .chain_panel import ChainPanel
from .clip_list import ClipListController
from .clips import Clip
from .file_actions import FileController
from .generate_panel import GeneratePanel
from .jobs import JobController
from .morph_panel import MorphPanel, SourceSlot, dropped_files
from .studio_settings import StudioSettings
from .tasks import Task, TaskQueue
from .transport import Transport
from .views import ClipViews

SHORTCUTS = [("Ctrl+O", "open audio files"), ("Ctrl+E", "export the selected clip"),
             ("Ctrl+G", "generate"), ("Ctrl+R", "render the morph"), ("Esc", "cancel"),
             ("Space", "play / stop the selected clip"), ("Ctrl+B", "A/B: original / output"),
             ("Ctrl+L", "live mode on / off"), ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
             ("Ctrl+1 / 2 / 3", "Generate / Morph / Effect chain panel"),
             ("Delete", "remove the selected clip"), ("F1", "this list")]


class StudioWindow(QMainWindow):
    def __init__(self, model: str = "default", generator: Optional[str] = "default",
                 settings: Optional[QSettings] = None):
        super().__init__()
        self.setWindowTitle("STAR Studio")
        self.settings = settings or QSettings("STAR plugin", "STAR Studio")
        self.model_name, self.generator_name = str(model), generator
        self.model = self.generator = None
        self.last_error: Optional[tuple] = None  # (title, message) of the latest dialog
        self.undo_stack = QUndoStack(self)
        self.tasks = TaskQueue(self)
        self.files = FileController(self)
        self.jobs = JobController(self)
        self._build()
        self._menus()
        self.studio_settings = StudioSettings(self.settings, self.recent_menu, self.open_files)
        self.studio_settings.refresh_recent()
        self.studio_settings.restore(self)
        self.undo_stack.clear()  # restored settings are not an undo step
        self._load_models()

    # ================================================================= layout
    def _build(self) -> None:
        self.generate_panel = GeneratePanel()
        self.morph_panel = MorphPanel(self.undo_stack)
        self.chain_panel = ChainPanel(self.undo_stack)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.generate_panel, "Generate")
        self.tabs.addTab(self.morph_panel, "Morph")
        self.tabs.addTab(self.chain_panel, "Effect chain")
        self.tabs.setMinimumWidth(400)

        self.clip_control = ClipListController(self)
        self.clip_list = self.clip_control.widget
        self.views = ClipViews()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("Clips (drag one onto a source; drop audio files here)"))
        rl.addWidget(self.clip_list)
        rl.addWidget(self.views, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self.setAcceptDrops(True)

        bar = self.addToolBar("Transport")
        bar.setObjectName("transport")
        self.transport = Transport(self, bar)
        t = self.transport
        self.player, self.live = t.player, t.live
        self.play_action, self.ab_action, self.live_action = (t.play_action, t.ab_action,
                                                              t.live_action)
        self.level = t.level
        self.model_label = QLabel("loading model...")
        self.statusBar().addPermanentWidget(self.model_label)

        self.generate_panel.generate_requested.connect(self.generate)
        self.generate_panel.cancel_requested.connect(self.cancel)
        self.morph_panel.render_requested.connect(self.render)
        self.morph_panel.error.connect(self.show_error)
        self.morph_panel.load_button.clicked.connect(self.files.load_preset_dialog)
        self.morph_panel.save_button.clicked.connect(self.files.save_preset_dialog)
        for slot in (self.morph_panel.content, self.morph_panel.texture_source):
            slot.open_requested.connect(lambda s=slot: self.open_dialog(s))
            slot.files_dropped.connect(lambda files, s=slot: self.open_files(files, s))
        self.morph_panel.state_changed.connect(self.transport.push_live_params)
        for panel in (self.generate_panel.generate_button, self.morph_panel.render_button):
            panel.setEnabled(False)  # until the models are loaded

    def _menus(self) -> None:
        def action(menu, text, slot, shortcut=None):
            a = QAction(text, self)
            a.triggered.connect(slot)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
            menu.addAction(a)
            return a

        file = self.menuBar().addMenu("&File")
        action(file, "&Open audio...", lambda: self.open_dialog(), QKeySequence.StandardKey.Open)
        self.recent_menu = file.addMenu("Open &recent")
        action(file, "&Export clip...", self.files.export_dialog, "Ctrl+E")
        action(file, "Save effect chain as...", self.files.save_chain_dialog)
        file.addSeparator()
        action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        # Kept on the window: PyQt hands the created actions to Python, so without a
        # reference they were garbage-collected (an empty Edit menu and a dead Ctrl+Z).
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"),
                                       QKeySequence(QKeySequence.StandardKey.Redo)])
        for a in (self.undo_action, self.redo_action):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(a)  # active while any widget of the window has focus
        edit.addActions([self.undo_action, self.redo_action])
        edit.addSeparator()
        action(edit, "Remove clip", self.remove_selected_clip, QKeySequence.StandardKey.Delete)
        run = self.menuBar().addMenu("&Run")
        action(run, "&Generate", self.generate_panel.request, "Ctrl+G")
        action(run, "&Render morph", self.render, "Ctrl+R")
        action(run, "&Cancel", self.cancel, "Esc")
        run.addActions([self.play_action, self.ab_action, self.live_action])
        view = self.menuBar().addMenu("&View")
        for i, name in enumerate(("Generate", "Morph", "Effect chain")):
            action(view, name, lambda _=False, i=i: self.tabs.setCurrentIndex(i), f"Ctrl+{i + 1}")
        helpm = self.menuBar().addMenu("&Help")
        action(helpm, "Keyboard shortcuts", self._show_shortcuts, "F1")

    # ================================================================= dialogs
    def show_error(self, title: str, message: str) -> QMessageBox:
        """A window-modal dialog that does not block the event loop (workers keep running)."""
        return self._message(QMessageBox.Icon.Warning, title, message)

    def show_info(self, title: str, message: str) -> QMessageBox:
        return self._message(QMessageBox.Icon.Information, title, message)

    def _message(self, icon, title, message) -> QMessageBox:
        self.last_error = (title, message) if icon == QMessageBox.Icon.Warning else self.last_error
        box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 8000)
        return box

    def _show_shortcuts(self) -> None:
        self.show_info("Keyboard shortcuts", "\n".join(f"{k}\t{v}" for k, v in SHORTCUTS))

    # ================================================================= models
    def _load_models(self) -> None:
        def work(task):
            from star_plugin.model_io import load_vae

            generator, note = None, ""
            if self.generator_name:
                try:
                    from star_plugin.gen.store import load_generator

                    generator = load_generator(self.generator_name, vae=self.model_name)
                except StarError as exc:
                    note = f"Generation is unavailable: {exc}"
            # Set here, on the worker: the tasks queued behind this one need them.
            self.model = generator.vae if generator is not None else load_vae(self.model_name)
            self.generator = generator
            return note

        task = Task("load models", work)
        task.signals.finished.connect(self._models_loaded)
        task.signals.failed.connect(self._models_failed)
        self.statusBar().showMessage(f"Loading model '{self.model_name}'...")
        self.tasks.submit(task)

    def _models_loaded(self, note: str) -> None:
        c = self.model.config
        self.model_label.setText(
            f"model {self.model_name}: {c.family}+{c.backbone}, {self.model.sample_rate} Hz, "
            f"{c.latent_channels} ch (structure {c.structure_channels})  |  generator: "
            f"{self.generator_name if self.generator else 'none'}")
        self.generate_panel.set_generator(self.generator, note or
                                          "Ready: describe a sound and press Generate.")
        self.morph_panel.render_button.setEnabled(True)
        self.statusBar().showMessage("Ready", 3000)

    def _models_failed(self, message: str) -> None:
        self.model_label.setText("no model")
        self.show_error("Cannot load the model", f"{message}\n\nStart the studio with --model "
                        "naming a bundled model or a STAR model directory ('star info' "
                        "describes one).")

    def need_model(self):
        if self.model is None:
            raise StarError("no model is loaded; restart the studio with a working --model")
        return self.model

    # ================================================================= clips (ClipListController)
    @property
    def clips(self) -> List[Clip]:
        return self.clip_control.clips

    def clip_by_id(self, clip_id) -> Optional[Clip]:
        return self.clip_control.clip_by_id(clip_id)

    def selected_clip(self) -> Optional[Clip]:
        return self.clip_control.selected_clip()

    def add_clip(self, clip: Clip, select: bool = True) -> None:
        self.clip_control.add_clip(clip, select)

    def remove_selected_clip(self) -> None:
        self.clip_control.remove_selected_clip()

    def shown_clip(self) -> Optional[Clip]:
        """The selected clip, or its original while A/B is on A."""
        return self.transport.shown_clip()

    # ================================================================= files (FileController)
    def open_dialog(self, slot: Optional[SourceSlot] = None) -> None:
        self.files.open_dialog(slot)

    def open_files(self, paths, slot: Optional[SourceSlot] = None) -> List[Task]:
        """Read and analyse each file on the worker (``FileController.open_files``)."""
        return self.files.open_files(paths, slot)

    def export_clip(self, clip: Clip, path):
        """WAV (32-bit float) or FLAC (24-bit), written atomically; None (and a dialog) when
        it cannot be written."""
        return self.files.export_clip(clip, path)

    def save_chain_to(self, path):
        """The effect chain with the STAR stage, in ``star chain --chain-file`` format."""
        return self.files.save_chain_to(path)

    # ================================================================= jobs (JobController)
    @property
    def generation(self) -> Optional[Task]:
        return self.jobs.generation

    @property
    def render_task(self) -> Optional[Task]:
        return self.jobs.render_task

    def generate(self, values: Optional[dict] = None) -> Optional[Task]:
        return self.jobs.generate(values)

    def render(self) -> Optional[Task]:
        return self.jobs.render()

    def cancel(self) -> None:
        self.jobs.cancel()

    # ================================================================= transport
    def toggle_play(self) -> None:
        self.transport.toggle_play()

    def live_chain(self):
        """The effect chain with a STAR stage for live mode (``Transport.live_chain``)."""
        return self.transport.live_chain()

    # ================================================================= drag and drop
    def dragEnterEvent(self, event):
        if dropped_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        files = dropped_files(event.mimeData())
        if files:
            self.open_files(files)
            event.acceptProposedAction()

    # ================================================================= settings
    def recent_files(self) -> List[str]:
        return self.studio_settings.recent_files()

    def save_settings(self) -> None:
        self.studio_settings.save(self)

    def closeEvent(self, event):
        self.save_settings()
        self.transport.stop()
        self.tasks.shutdown()
        super().closeEvent(event)
