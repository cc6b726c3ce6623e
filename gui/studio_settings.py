"""The studio's memory between sessions (``QSettings``): window geometry, the panels' state
and the recent files (with their "Open recent" menu). No model work here."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List

from PyQt6.QtCore import QSettings

from star_plugin.errors import StarError

MAX_RECENT = 10


class StudioSettings:
    """Reads and writes one ``QSettings``; ``open_files(paths)`` opens a recent file."""

    def __init__(self, settings: QSettings, recent_menu, open_files: Callable):
        self.settings, self.recent_menu, self.open_files = settings, recent_menu, open_files

    # ----------------------------------------------------------------- files
    def last_dir(self) -> str:
        return str(self.settings.value("files/last_dir", str(Path.home())))

    def recent_files(self) -> List[str]:
        value = self.settings.value("files/recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def remember_file(self, path: str) -> None:
        files = [path] + [f for f in self.recent_files() if f != path]
        self.settings.setValue("files/recent", files[:MAX_RECENT])
        self.settings.setValue("files/last_dir", str(Path(path).parent))
        self.refresh_recent()

    def forget_file(self, path: str) -> None:
        self.settings.setValue("files/recent", [f for f in self.recent_files() if f != path])
        self.refresh_recent()

    def refresh_recent(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        for path in files:
            a = self.recent_menu.addAction(path)
            a.triggered.connect(lambda _=False, p=path: self.open_files([p]))
        self.recent_menu.setEnabled(bool(files))

    # ----------------------------------------------------------------- the window
    def restore(self, window) -> None:
        """Geometry, splitter, tab and the panels' state; anything unreadable (settings of
        another version) keeps the defaults."""
        s = self.settings
        geometry = s.value("window/geometry")
        if geometry is not None:
            window.restoreGeometry(geometry)
        else:
            window.resize(1280, 820)
        splitter = s.value("window/splitter")
        if splitter is not None:
            window.splitter.restoreState(splitter)
        window.tabs.setCurrentIndex(int(s.value("window/tab", 0) or 0))
        for key, apply in (("generate/settings", window.generate_panel.apply_settings),
                           ("morph/state", window.morph_panel.restore_state),
                           ("chain/state", window.chain_panel.restore_state)):
            try:
                value = json.loads(s.value(key, "") or "null")
                if isinstance(value, dict):
                    apply(value)
            except (ValueError, KeyError, TypeError, StarError):
                pass  # settings from another version: keep the defaults

    def save(self, window) -> None:
        s = self.settings
        s.setValue("window/geometry", window.saveGeometry())
        s.setValue("window/splitter", window.splitter.saveState())
        s.setValue("window/tab", window.tabs.currentIndex())
        s.setValue("generate/settings", json.dumps(window.generate_panel.settings()))
        s.setValue("morph/state", json.dumps(window.morph_panel.state()))
        s.setValue("chain/state", json.dumps(window.chain_panel.state()))
        s.sync()
