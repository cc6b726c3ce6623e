"""The studio's clip list: the session's clips (opened, generated, rendered) and the list
widget they are dragged from onto a source slot. Selecting a clip shows it in the views and
resets the transport; no model work here."""
from __future__ import annotations

from typing import List, Optional

from PyQt6.QtCore import QMimeData, Qt
from PyQt6.QtWidgets import QListWidget, QListWidgetItem

from .clips import Clip
from .morph_panel import CLIP_MIME


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


class ClipListController:
    """Owns the clips and their ``ClipList`` (``widget``); keeps the Morph panel's source slots
    offering every clip; asks ``window`` for the transport and the views."""

    def __init__(self, window):
        self.window = window
        self.clips: List[Clip] = []
        self.widget = ClipList()
        self.widget.setMaximumHeight(150)
        self.widget.currentRowChanged.connect(lambda _: self.selection_changed())
        self.widget.itemDoubleClicked.connect(lambda _: window.transport.play_selected())

    def clip_by_id(self, clip_id) -> Optional[Clip]:
        return next((c for c in self.clips if c.id == clip_id), None)

    def selected_clip(self) -> Optional[Clip]:
        item = self.widget.currentItem()
        return self.clip_by_id(item.data(Qt.ItemDataRole.UserRole)) if item else None

    def add_clip(self, clip: Clip, select: bool = True) -> None:
        self.clips.append(clip)
        item = QListWidgetItem(f"{clip.name}   [{clip.origin}, {clip.seconds:.1f} s]")
        item.setData(Qt.ItemDataRole.UserRole, clip.id)
        item.setToolTip(str(clip.path) if clip.path else clip.name)
        self.widget.addItem(item)
        self.refresh_slots()
        if select:
            self.widget.setCurrentItem(item)

    def remove_selected_clip(self) -> None:
        clip = self.selected_clip()
        if clip is None:
            return
        self.window.player.stop()
        self.clips.remove(clip)
        self.widget.takeItem(self.widget.currentRow())
        self.refresh_slots()
        self.selection_changed()

    def refresh_slots(self) -> None:
        panel = self.window.morph_panel
        for slot in (panel.content, panel.texture_source):
            slot.set_clips(self.clips)

    def selection_changed(self) -> None:
        clip = self.selected_clip()
        self.window.transport.selection_changed(clip)
        self.window.views.show_clip(clip)
