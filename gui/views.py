"""The three views of a clip: waveform, spectrogram, and the STAR latent (heatmap with the
structure/texture boundary, and the per-channel KL profile beside it). They paint data the
worker already computed (``clips.Analysis``); nothing here touches the model."""
from __future__ import annotations

from typing import Optional

import numpy as np
from PyQt6.QtCore import QLineF, QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QImage, QPainter, QPen
from PyQt6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from .clips import Clip

BACKGROUND = QColor(24, 26, 31)
GRID = QColor(70, 74, 84)
TEXT = QColor(200, 204, 212)
WAVE = QColor(94, 186, 255)
STRUCTURE = QColor(255, 196, 84)
TEXTURE = QColor(120, 220, 160)
PLAYHEAD = QColor(255, 90, 90)


def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


# Built when the studio starts: importing matplotlib on the first paint would stall the GUI.
_LUTS = {name: _lut(name) for name in ("magma", "coolwarm")}


def colour_image(values: np.ndarray, lo: float, hi: float, cmap: str) -> QImage:
    """(rows, cols) values -> RGB image, row 0 at the top."""
    index = np.clip((values - lo) / max(hi - lo, 1e-9) * 255, 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(_LUTS[cmap][index])
    h, w = index.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class _View(QWidget):
    """A dark panel with a title and an optional playhead (seconds)."""

    title = ""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.clip: Optional[Clip] = None
        self.playhead: Optional[float] = None

    def set_clip(self, clip: Optional[Clip]) -> None:
        self.clip = clip
        self.prepare()
        self.update()

    def set_playhead(self, seconds: Optional[float]) -> None:
        self.playhead = seconds
        self.update()

    def prepare(self) -> None:
        """Turn the clip into what ``draw`` paints (once per clip, not per paint)."""

    def plot_rect(self) -> QRectF:
        return QRectF(44, 18, max(1, self.width() - 52), max(1, self.height() - 24))

    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        p.setPen(TEXT)
        p.drawText(QPointF(6, 13), self.title if self.clip is None else
                   f"{self.title}: {self.clip.name}")
        if self.clip is not None:
            self.draw(p, self.plot_rect())
            if self.playhead is not None and self.clip.seconds > 0:
                r = self.plot_rect()
                x = r.left() + r.width() * min(1.0, self.playhead / self.clip.seconds)
                p.setPen(QPen(PLAYHEAD, 1.5))
                p.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        else:
            p.setPen(GRID)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no clip selected")
        p.end()

    def draw(self, p: QPainter, r: QRectF) -> None:
        raise NotImplementedError


class WaveformView(_View):
    title = "Waveform"

    def prepare(self):
        self._env = None
        if self.clip is not None:
            mono = self.clip.audio.mean(axis=0)
            cols = 2048
            if mono.size == 0:
                self._env = np.zeros((2, 1), np.float32)
                return
            pad = (-mono.size) % cols
            blocks = np.pad(mono, (0, pad)).reshape(cols, -1)
            self._env = np.stack([blocks.min(axis=1), blocks.max(axis=1)])

    def draw(self, p, r):
        p.setPen(GRID)
        p.drawLine(QPointF(r.left(), r.center().y()), QPointF(r.right(), r.center().y()))
        p.drawText(QPointF(4, r.top() + 10), "+1")
        p.drawText(QPointF(4, r.bottom()), "-1")
        env = self._env
        cols, width = env.shape[1], max(1, int(r.width()))
        starts = np.minimum(np.arange(width) * cols // width, cols - 1)  # one column per pixel
        lo = np.minimum.reduceat(env[0], starts).clip(-1, 1)
        hi = np.maximum.reduceat(env[1], starts).clip(-1, 1)
        mid, half = r.center().y(), r.height() / 2
        y0, y1 = mid - hi * half, mid - lo * half
        p.setPen(QPen(WAVE, 1))
        p.drawLines([QLineF(r.left() + x, a, r.left() + x, max(b, a + 0.5))
                     for x, (a, b) in enumerate(zip(y0.tolist(), y1.tolist()))])
        p.setPen(TEXT)
        p.drawText(QPointF(r.right() - 60, r.bottom() - 2), f"{self.clip.seconds:.2f} s")


class SpectrogramView(_View):
    title = "Spectrogram"

    def prepare(self):
        self._image = None
        if self.clip is not None and self.clip.analysis is not None:
            spec = self.clip.analysis.spectrogram[::-1]  # high frequencies on top
            self._image = colour_image(spec, -80.0, 20.0, "magma")

    def draw(self, p, r):
        if self._image is None:
            return
        p.drawImage(r, self._image)
        p.setPen(TEXT)
        nyquist = self.clip.sample_rate / 2000
        p.drawText(QPointF(4, r.top() + 10), f"{nyquist:.0f}k")
        p.drawText(QPointF(4, r.bottom()), "0 Hz")


class LatentView(_View):
    """Heatmap of the posterior mean (channel 0, the most structural, at the top) with the
    structure/texture boundary, and the KL (nats per frame) of each channel as bars."""

    title = "STAR latent"
    KL_WIDTH = 110

    def prepare(self):
        self._image = None
        if self.clip is not None and self.clip.analysis is not None:
            self._image = colour_image(self.clip.analysis.latent, -3.0, 3.0, "coolwarm")

    def draw(self, p, r):
        a = self.clip.analysis
        if a is None or self._image is None:
            return
        heat = QRectF(r.left(), r.top(), r.width() - self.KL_WIDTH - 8, r.height())
        bars = QRectF(heat.right() + 8, r.top(), self.KL_WIDTH, r.height())
        p.drawImage(heat, self._image)
        channels = a.latent.shape[0]
        row = heat.height() / max(1, channels)
        y_boundary = heat.top() + a.structure_channels * row
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawLine(QPointF(heat.left(), y_boundary), QPointF(bars.right(), y_boundary))
        p.setPen(STRUCTURE)
        p.drawText(QPointF(2, heat.top() + 10), "struct")
        p.setPen(TEXTURE)
        p.drawText(QPointF(2, heat.bottom()), "texture")
        p.setPen(TEXT)
        p.drawText(QPointF(2, y_boundary + 4), f"{a.structure_channels}")
        top = float(a.kl.max()) if a.kl.size and a.kl.max() > 0 else 1.0
        for c in range(channels):
            w = bars.width() * float(a.kl[c]) / top
            colour = STRUCTURE if c < a.structure_channels else TEXTURE
            p.fillRect(QRectF(bars.left(), heat.top() + c * row + row * 0.1, w, row * 0.8),
                       colour)
        p.setPen(TEXT)
        p.drawText(QPointF(bars.left(), r.top() - 4), f"KL/frame <= {top:.1f}")


class ClipViews(QWidget):
    """The three views stacked; ``show_clip`` updates all of them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.info = QLabel("Open, generate or render a clip to see it here.")
        self.info.setObjectName("clipInfo")
        self.waveform, self.spectrogram, self.latent = WaveformView(), SpectrogramView(), LatentView()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info)
        for view, stretch in ((self.waveform, 2), (self.spectrogram, 3), (self.latent, 3)):
            layout.addWidget(view, stretch)
        self.clip: Optional[Clip] = None

    def show_clip(self, clip: Optional[Clip]) -> None:
        self.clip = clip
        for view in (self.waveform, self.spectrogram, self.latent):
            view.set_clip(clip)
        if clip is None:
            self.info.setText("No clip selected.")
            return
        peak = float(np.abs(clip.audio).max()) if clip.audio.size else 0.0
        text = (f"{clip.name}  |  {clip.origin}  |  {clip.seconds:.2f} s, {clip.audio.shape[0]} ch, "
                f"{clip.sample_rate} Hz, peak {20 * np.log10(max(peak, 1e-9)):.1f} dBFS")
        if clip.analysis is not None and clip.analysis.seconds < clip.seconds - 1e-6:
            text += f"  (views show the first {clip.analysis.seconds:.0f} s)"
        self.info.setText(text)

    def set_playhead(self, seconds: Optional[float]) -> None:
        for view in (self.waveform, self.spectrogram, self.latent):
            view.set_playhead(seconds)
