"""STAR Studio's main window: the Generate, Morph and Effect chain panels on the left, the clip
list and the views on the right, transport (play, A/B, live; ``transport.Transport``) on the
toolbar, settings and recent files in ``studio_settings.StudioSettings``. All model work goes
through one ``TaskQueue`` (never on the GUI thread); every failure becomes a dialog."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from PyQt6.QtCore import QMimeData, QSettings, Qt
from PyQt6.QtGui import QAction, QKeySequence, QUndoStack
from PyQt6.QtWidgets import (QFileDialog, QLabel, QListWidget, QListWidgetItem, QMainWindow,
                             QMessageBox, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from star_plugin.errors import StarError

from .chain_panel import ChainPanel
from .clips import Clip, generate_clips, open_clip, render_morph
from .generate_panel import GeneratePanel
from .morph_panel import CLIP_MIME, MorphPanel, SourceSlot, dropped_files
from .studio_settings import StudioSettings
from .tasks import Task, TaskQueue
from .transport import Transport
from .views import ClipViews

AUDIO_FILTER = ("Audio files (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.w64 *.caf *.opus);;"
                "All files (*)")
EXPORT_FILTER = "WAV, 32-bit float (*.wav);;FLAC, 24-bit (*.flac)"
SHORTCUTS = [("Ctrl+O", "open audio files"), ("Ctrl+E", "export the selected clip"),
             ("Ctrl+G", "generate"), ("Ctrl+R", "render the morph"), ("Esc", "cancel"),
             ("Space", "play / stop the selected clip"), ("Ctrl+B", "A/B: original / output"),
             ("Ctrl+L", "live mode on / off"), ("Ctrl+Z / Ctrl+Shift+Z", "undo / redo"),
             ("Ctrl+1 / 2 / 3", "Generate / Morph / Effect chain panel"),
             ("Delete", "remove the selected clip"), ("F1", "this list")]


class ClipList(QListWidget):
    """The session's clips; drag one onto a source slot. Files dropped here go on to the
    window, which opens them (the list itself takes no drops)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDragEnabled(True)
        self.setAcceptDrops(False)

    def mimeData(self, items):
        mime = QMimeData()
        if items:
            mime.setData(CLIP_MIME, str(items[0].data(Qt.ItemDataRole.UserRole)).encode())
        return mime

    def mimeTypes(self):
        return [CLIP_MIME]


class StudioWindow(QMainWindow):
    def __init__(self, model: str = "default", generator: Optional[str] = "default",
                 settings: Optional[QSettings] = None):
        super().__init__()
        self.setWindowTitle("STAR Studio")
        self.settings = settings or QSettings("STAR plugin", "STAR Studio")
        self.model_name, self.generator_name = str(model), generator
        self.model = self.generator = None
        self.clips: List[Clip] = []
        self.last_error: Optional[tuple] = None  # (title, message) of the latest dialog
        self.undo_stack = QUndoStack(self)
        self.tasks = TaskQueue(self)
        self.generation: Optional[Task] = None
        self.render_task: Optional[Task] = None
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

        self.clip_list = ClipList()
        self.clip_list.setMaximumHeight(150)
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
        self.morph_panel.load_button.clicked.connect(self._load_preset_dialog)
        self.morph_panel.save_button.clicked.connect(self._save_preset_dialog)
        for slot in (self.morph_panel.content, self.morph_panel.texture_source):
            slot.open_requested.connect(lambda s=slot: self.open_dialog(s))
            slot.files_dropped.connect(lambda files, s=slot: self.open_files(files, s))
        self.morph_panel.state_changed.connect(self.transport.push_live_params)
        self.clip_list.currentRowChanged.connect(lambda _: self._selection_changed())
        self.clip_list.itemDoubleClicked.connect(lambda _: self.transport.play_selected())
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
        action(file, "&Export clip...", self._export_dialog, "Ctrl+E")
        action(file, "Save effect chain as...", self._save_chain_dialog)
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

    # ================================================================= clips
    def clip_by_id(self, clip_id) -> Optional[Clip]:
        return next((c for c in self.clips if c.id == clip_id), None)

    def selected_clip(self) -> Optional[Clip]:
        item = self.clip_list.currentItem()
        return self.clip_by_id(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def add_clip(self, clip: Clip, select: bool = True) -> None:
        self.clips.append(clip)
        item = QListWidgetItem(f"{clip.name}   [{clip.origin}, {clip.seconds:.1f} s]")
        item.setData(Qt.ItemDataRole.UserRole, clip.id)
        item.setToolTip(str(clip.path) if clip.path else clip.name)
        self.clip_list.addItem(item)
        self._refresh_slots()
        if select:
            self.clip_list.setCurrentItem(item)

    def remove_selected_clip(self) -> None:
        clip = self.selected_clip()
        if clip is None:
            return
        self.player.stop()
        self.clips.remove(clip)
        self.clip_list.takeItem(self.clip_list.currentRow())
        self._refresh_slots()
        self._selection_changed()

    def _refresh_slots(self) -> None:
        for slot in (self.morph_panel.content, self.morph_panel.texture_source):
            slot.set_clips(self.clips)

    def _selection_changed(self) -> None:
        clip = self.selected_clip()
        self.transport.selection_changed(clip)
        self.views.show_clip(clip)

    def shown_clip(self) -> Optional[Clip]:
        """The selected clip, or its original while A/B is on A."""
        return self.transport.shown_clip()

    # ================================================================= open / export
    def open_dialog(self, slot: Optional[SourceSlot] = None) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open audio", self._last_dir(), AUDIO_FILTER)
        if files:
            self.open_files(files, slot)

    def open_files(self, paths, slot: Optional[SourceSlot] = None) -> List[Task]:
        """Read and analyse each file on the worker; the clip appears when it is ready (and
        goes into ``slot`` when given). An unreadable file gives a dialog naming it."""
        tasks = []
        for path in paths:
            path = str(path)
            task = Task(f"open {path}", lambda t, p=path: open_clip(p, self.need_model()))
            task.signals.finished.connect(lambda clip, s=slot: self._opened(clip, s))
            task.signals.failed.connect(lambda msg, p=path: self._open_failed(p, msg))
            tasks.append(self.tasks.submit(task))
        self.statusBar().showMessage(f"Opening {len(paths)} file(s)...", 3000)
        return tasks

    def _opened(self, clip: Clip, slot: Optional[SourceSlot]) -> None:
        self.add_clip(clip)
        if slot is not None:
            slot.select(clip.id)
        self.statusBar().showMessage(f"Opened {clip.path}", 3000)
        self.studio_settings.remember_file(str(clip.path))

    def _open_failed(self, path: str, message: str) -> None:
        if not Path(path).exists():
            self.studio_settings.forget_file(path)
        self.show_error("Cannot open audio file", f"{message}\n\nChoose a readable audio file "
                        "(WAV, FLAC, OGG, MP3, AIFF...).")

    def export_clip(self, clip: Clip, path) -> Optional[Path]:
        """WAV (32-bit float) or FLAC (24-bit), written atomically."""
        from star_plugin.audio import write_audio

        path = Path(path)
        if path.suffix.lower() not in (".wav", ".flac"):
            self.show_error("Cannot export", f"'{path.name}': export writes .wav or .flac; "
                            "give the file one of those extensions.")
            return None
        try:
            out = write_audio(path, clip.audio, clip.sample_rate)
        except (StarError, OSError, ValueError, RuntimeError) as exc:
            self.show_error("Cannot export", f"'{path}' could not be written: {exc}\n\n"
                            "Choose a folder you can write to.")
            return None
        self.statusBar().showMessage(f"Exported '{clip.name}' to {out}", 5000)
        return out

    def _export_dialog(self) -> None:
        clip = self.shown_clip()
        if clip is None:
            self.show_error("Nothing to export", "Select a clip in the clip list first.")
            return
        name = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in clip.name)[:60]
        path, chosen = QFileDialog.getSaveFileName(self, "Export clip",
                                                   str(Path(self._last_dir()) / f"{name}.wav"),
                                                   EXPORT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".flac" if "FLAC" in chosen else ".wav"
            self.export_clip(clip, path)

    def save_chain_to(self, path) -> Optional[Path]:
        """The effect chain with the STAR stage, in ``star chain --chain-file`` format."""
        from star_plugin.atomic import write_bytes_atomic
        from star_plugin.chain import chain_data, chain_json, star_stage

        texture = self.clip_by_id(self.morph_panel.texture_source.clip_id())
        star = star_stage(self.morph_panel.state(), texture_source=(
            str(texture.path) if texture is not None and texture.path else None))
        chain = self.chain_panel.state()
        data = chain_data(chain["before"] + [star] + chain["after"])
        try:
            saved = write_bytes_atomic(path, chain_json(data))
        except OSError as exc:
            self.show_error("Cannot save the chain", f"'{path}': {exc}")
            return None
        if texture is not None and not texture.path:  # a generated or rendered clip
            self.show_info("Chain saved without its texture", f"'{texture.name}' is not a file, "
                           "so the chain refers to no texture source. Export the clip "
                           "(Ctrl+E) and set the star stage's \"texture_source\" to that "
                           "file.")
        return saved

    def _save_chain_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save effect chain", self._last_dir(),
                                              "STAR chain (*.json)")
        if path and self.save_chain_to(path):
            self.statusBar().showMessage(f"Chain saved: star chain IN -o OUT --chain-file {path}",
                                         8000)

    def _load_preset_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", self._last_dir(),
                                              "STAR morph preset (*.json)")
        if path:
            self.morph_panel.load_preset_from(path)

    def _save_preset_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", self._last_dir(),
                                              "STAR morph preset (*.json)")
        if path:
            self.morph_panel.save_preset_to(path)

    # ================================================================= generate / render
    def generate(self, values: Optional[dict] = None) -> Optional[Task]:
        if self.generator is None:
            self.show_error("Generation is unavailable", self.generate_panel.status.text() or
                            "No generator is loaded; start the studio with --generator DIR.")
            return None
        if self.generation is not None:
            return None
        v = values or self.generate_panel.settings()
        panel = self.generate_panel
        task = Task("generate", lambda t: generate_clips(
            self.generator, v["prompt"], v["seconds"], v["steps"], v["cfg"], v["seed"],
            v["variations"], progress=t.report))
        task.signals.progress.connect(panel.set_progress)
        task.signals.finished.connect(self._generated)
        task.signals.cancelled.connect(lambda: panel.status.setText("Generation cancelled."))
        task.signals.failed.connect(lambda msg: self.show_error("Generation failed", msg))
        task.signals.ended.connect(self._generation_ended)
        panel.set_running(True)
        panel.status.setText(f"Generating {v['variations']} x {v['seconds']:.1f} s...")
        self.generation = self.tasks.submit(task)
        return task

    def _generated(self, clips: List[Clip]) -> None:
        for i, clip in enumerate(clips):
            self.add_clip(clip, select=i == 0)
        self.generate_panel.status.setText(f"Generated {len(clips)} clip(s).")

    def _generation_ended(self) -> None:
        self.generation = None
        self.generate_panel.set_running(False)

    def render(self) -> Optional[Task]:
        if self.render_task is not None:
            return None
        if self.model is None:
            self.show_info("The model is not ready", "The model is still loading, or it failed "
                           "to load (see the earlier message). Try again in a moment.")
            return None
        panel = self.morph_panel
        content = self.clip_by_id(panel.content.clip_id())
        if content is None:
            self.show_error("Nothing to morph", "Choose a content sound first: open a file "
                            "(Ctrl+O), drop one on 'Content', or generate one.")
            return None
        texture = self.clip_by_id(panel.texture_source.clip_id())
        try:
            params = panel.params()
        except StarError as exc:
            self.show_error("Bad morph parameters", str(exc))
            return None
        before, after = self.chain_panel.stages("before"), self.chain_panel.stages("after")
        task = Task("render", lambda t: render_morph(self.need_model(), content, texture, params,
                                                     before, after, progress=t.report))
        task.signals.progress.connect(panel.set_progress)
        task.signals.finished.connect(self._rendered)
        task.signals.failed.connect(lambda msg: self.show_error("Render failed", msg))
        task.signals.cancelled.connect(lambda: panel.status.setText("Render cancelled."))
        task.signals.ended.connect(self._render_ended)
        panel.set_running(True)
        panel.status.setText(f"Rendering '{content.name}'...")
        self.render_task = self.tasks.submit(task)
        return task

    def _rendered(self, clip: Clip) -> None:
        self.add_clip(clip)
        self.morph_panel.status.setText(f"Rendered '{clip.name}'. Ctrl+B compares it with the "
                                        "original.")

    def _render_ended(self) -> None:
        self.render_task = None
        self.morph_panel.set_running(False)

    def cancel(self) -> None:
        for task in (self.generation, self.render_task):
            if task is not None:
                task.cancel()

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
    def _last_dir(self) -> str:
        return self.studio_settings.last_dir()

    def recent_files(self) -> List[str]:
        return self.studio_settings.recent_files()

    def save_settings(self) -> None:
        self.studio_settings.save(self)

    def closeEvent(self, event):
        self.save_settings()
        self.transport.stop()
        self.tasks.shutdown()
        super().closeEvent(event)
