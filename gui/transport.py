"""The studio's transport on the toolbar: play / stop, A/B (original / output) and live mode
(input -> effect chain with the Morph panel's STAR stage -> output) with its level meter."""
from __future__ import annotations

from typing import Optional

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QKeySequence
from PyQt6.QtWidgets import QProgressBar

from star_plugin.errors import StarError

from .clips import Clip
from .playback import LiveRunner, Player

AB_OUTPUT, AB_ORIGINAL = "A/B: hearing output (B)", "A/B: hearing original (A)"


def _set_checked_quietly(action, checked: bool) -> None:
    action.blockSignals(True)
    action.setChecked(checked)
    action.blockSignals(False)


class Transport:
    """Owns the player, the live runner and their toolbar actions; asks ``window`` for the
    selected clip, the panels, the model and its dialogs."""

    def __init__(self, window, bar):
        self.window = window
        self.player = Player(window)
        self.live = LiveRunner(window)
        self.play_action = bar.addAction("Play", self.toggle_play)
        self.play_action.setShortcut(QKeySequence(Qt.Key.Key_Space))
        self.ab_action = bar.addAction(AB_OUTPUT)
        self.ab_action.setCheckable(True)
        self.ab_action.setShortcut(QKeySequence("Ctrl+B"))
        self.ab_action.toggled.connect(self._ab_toggled)
        self.ab_action.setEnabled(False)
        self.live_action = bar.addAction("Live")
        self.live_action.setCheckable(True)
        self.live_action.setShortcut(QKeySequence("Ctrl+L"))
        self.live_action.toggled.connect(self._live_toggled)
        self.level = QProgressBar()
        self.level.setRange(0, 100)
        self.level.setMaximumWidth(120)
        self.level.setTextVisible(False)
        self.level.setToolTip("live output level")
        bar.addWidget(self.level)
        self.player.position.connect(window.views.set_playhead)
        self.player.playing_changed.connect(self._playing_changed)
        self.live.stopped.connect(self._live_stopped)
        self.live.level.connect(lambda peak: self.level.setValue(int(min(1.0, peak) * 100)))

    # ----------------------------------------------------------------- playback
    def shown_clip(self) -> Optional[Clip]:
        """The selected clip, or its original while A/B is on A."""
        clip = self.window.selected_clip()
        if clip is not None and self.ab_action.isChecked() and clip.original is not None:
            return clip.original
        return clip

    def selection_changed(self, clip: Optional[Clip]) -> None:
        """A new selection starts on B (the output) and stops playback."""
        _set_checked_quietly(self.ab_action, False)
        self.ab_action.setText(AB_OUTPUT)
        self.ab_action.setEnabled(clip is not None and clip.original is not None)
        self.player.stop()

    def toggle_play(self) -> None:
        if self.player.playing:
            self.player.stop()
            return
        self.play_selected()

    def play_selected(self) -> None:
        clip = self.shown_clip()
        if clip is None:
            self.window.show_info("Nothing to play", "Select a clip in the clip list first.")
            return
        self._play(clip, 0.0)

    def _play(self, clip: Clip, start_s: float) -> None:
        try:
            self.player.play(clip.audio, clip.sample_rate, start_s)
        except StarError as exc:
            self.window.show_info("No audio output", str(exc))

    def _playing_changed(self, playing: bool) -> None:
        self.play_action.setText("Stop" if playing else "Play")
        if not playing:
            self.window.views.set_playhead(None)

    def _ab_toggled(self, original: bool) -> None:
        self.ab_action.setText(AB_ORIGINAL if original else AB_OUTPUT)
        clip = self.shown_clip()
        self.window.views.show_clip(clip)
        if self.player.playing and clip is not None:  # same position, other version
            self._play(clip, self.player.current_seconds())

    # ----------------------------------------------------------------- live
    def live_chain(self):
        """The effect chain with a STAR stage for live mode (the Morph panel's settings and
        texture source)."""
        from star_plugin.chain import StarChain
        from star_plugin.effects import StarEffect

        from .clips import build_chain, texture_latent

        w = self.window
        model = w.need_model()
        texture = w.clip_by_id(w.morph_panel.texture_source.clip_id())
        source = texture_latent(model, texture) if texture is not None else None
        star = StarEffect(model, w.morph_panel.params(), texture_source=source)
        chain = w.chain_panel.state()
        return StarChain(list(build_chain(chain["before"]).stages) + [star] +
                         list(build_chain(chain["after"]).stages))

    def _live_toggled(self, on: bool) -> None:
        if not on:
            self.live.stop()
            self.level.setValue(0)
            return
        try:
            self.live.start(self.live_chain())
        except StarError as exc:
            _set_checked_quietly(self.live_action, False)
            self.window.show_info("Live mode is unavailable", str(exc))
            return
        self.window.statusBar().showMessage("Live: input -> chain -> output (Ctrl+L stops)")

    def push_live_params(self) -> None:
        """Morph changes reach the running live chain (smoothed by the engine: no clicks)."""
        if self.live.running and self.live.chain is not None:
            try:
                for effect in self.live.chain.star_effects():
                    effect.set(**self.window.morph_panel.state())
            except StarError as exc:
                self.window.show_error("Bad morph parameters", str(exc))

    def _live_stopped(self, message: str) -> None:
        _set_checked_quietly(self.live_action, False)
        self.level.setValue(0)
        if message:
            self.window.show_error("Live mode stopped", message)

    def stop(self) -> None:
        """Playback and live mode off (the window is closing)."""
        self.player.stop()
        self.live.stop()
