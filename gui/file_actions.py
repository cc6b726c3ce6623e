"""The studio's files: open audio (dialog, drops, recent files; read and analysed on the
worker), export a clip, save the effect chain (written by ``star_plugin.chain``), and the
Morph panel's preset dialogs. Every failure becomes a dialog naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from PyQt6.QtWidgets import QFileDialog

from star_plugin.errors import StarError

from .clips import Clip, open_clip
from .morph_panel import SourceSlot
from .tasks import Task

AUDIO_FILTER = ("Audio files (*.wav *.flac *.ogg *.mp3 *.aif *.aiff *.w64 *.caf *.opus);;"
                "All files (*)")
EXPORT_FILTER = "WAV, 32-bit float (*.wav);;FLAC, 24-bit (*.flac)"
PRESET_FILTER = "STAR morph preset (*.json)"


class FileController:
    """Asks ``window`` for the model, the task queue, the clips, the panels, the settings
    (last folder, recent files) and its dialogs."""

    def __init__(self, window):
        self.window = window

    def _last_dir(self) -> str:
        return self.window.studio_settings.last_dir()

    # ----------------------------------------------------------------- open
    def open_dialog(self, slot: Optional[SourceSlot] = None) -> None:
        files, _ = QFileDialog.getOpenFileNames(self.window, "Open audio", self._last_dir(),
                                                AUDIO_FILTER)
        if files:
            self.open_files(files, slot)

    def open_files(self, paths, slot: Optional[SourceSlot] = None) -> List[Task]:
        """Read and analyse each file on the worker; the clip appears when it is ready (and
        goes into ``slot`` when given). An unreadable file gives a dialog naming it."""
        w = self.window
        tasks = []
        for path in paths:
            path = str(path)
            task = Task(f"open {path}", lambda t, p=path: open_clip(p, w.need_model()))
            task.signals.finished.connect(lambda clip, s=slot: self._opened(clip, s))
            task.signals.failed.connect(lambda msg, p=path: self._open_failed(p, msg))
            tasks.append(w.tasks.submit(task))
        w.statusBar().showMessage(f"Opening {len(paths)} file(s)...", 3000)
        return tasks

    def _opened(self, clip: Clip, slot: Optional[SourceSlot]) -> None:
        w = self.window
        w.add_clip(clip)
        if slot is not None:
            slot.select(clip.id)
        w.statusBar().showMessage(f"Opened {clip.path}", 3000)
        w.studio_settings.remember_file(str(clip.path))

    def _open_failed(self, path: str, message: str) -> None:
        if not Path(path).exists():
            self.window.studio_settings.forget_file(path)
        self.window.show_error("Cannot open audio file", f"{message}\n\nChoose a readable audio "
                               "file (WAV, FLAC, OGG, MP3, AIFF...).")

    # ----------------------------------------------------------------- export
    def export_clip(self, clip: Clip, path) -> Optional[Path]:
        """WAV (32-bit float) or FLAC (24-bit), written atomically."""
        from star_plugin.audio import write_audio

        w = self.window
        path = Path(path)
        if path.suffix.lower() not in (".wav", ".flac"):
            w.show_error("Cannot export", f"'{path.name}': export writes .wav or .flac; "
                         "give the file one of those extensions.")
            return None
        try:
            out = write_audio(path, clip.audio, clip.sample_rate)
        except (StarError, OSError, ValueError, RuntimeError) as exc:
            w.show_error("Cannot export", f"'{path}' could not be written: {exc}\n\n"
                         "Choose a folder you can write to.")
            return None
        w.statusBar().showMessage(f"Exported '{clip.name}' to {out}", 5000)
        return out

    def export_dialog(self) -> None:
        clip = self.window.shown_clip()
        if clip is None:
            self.window.show_error("Nothing to export", "Select a clip in the clip list first.")
            return
        name = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in clip.name)[:60]
        path, chosen = QFileDialog.getSaveFileName(self.window, "Export clip",
                                                   str(Path(self._last_dir()) / f"{name}.wav"),
                                                   EXPORT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".flac" if "FLAC" in chosen else ".wav"
            self.export_clip(clip, path)

    # ----------------------------------------------------------------- chain
    def save_chain_to(self, path) -> Optional[Path]:
        """The effect chain with the STAR stage, in ``star chain --chain-file`` format."""
        from star_plugin.atomic import write_bytes_atomic
        from star_plugin.chain import chain_data, chain_json, star_stage

        w = self.window
        texture = w.clip_by_id(w.morph_panel.texture_source.clip_id())
        star = star_stage(w.morph_panel.state(), texture_source=(
            str(texture.path) if texture is not None and texture.path else None))
        chain = w.chain_panel.state()
        data = chain_data(chain["before"] + [star] + chain["after"])
        try:
            saved = write_bytes_atomic(path, chain_json(data))
        except OSError as exc:
            w.show_error("Cannot save the chain", f"'{path}': {exc}")
            return None
        if texture is not None and not texture.path:  # a generated or rendered clip
            w.show_info("Chain saved without its texture", f"'{texture.name}' is not a file, "
                        "so the chain refers to no texture source. Export the clip "
                        "(Ctrl+E) and set the star stage's \"texture_source\" to that file.")
        return saved

    def save_chain_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save effect chain", self._last_dir(),
                                              "STAR chain (*.json)")
        if path and self.save_chain_to(path):
            self.window.statusBar().showMessage(
                f"Chain saved: star chain IN -o OUT --chain-file {path}", 8000)

    # ----------------------------------------------------------------- presets
    def load_preset_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Load preset", self._last_dir(),
                                              PRESET_FILTER)
        if path:
            self.window.morph_panel.load_preset_from(path)

    def save_preset_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save preset", self._last_dir(),
                                              PRESET_FILTER)
        if path:
            self.window.morph_panel.save_preset_to(path)
