"""The studio's long jobs: Generate (text -> clips, on the Generate panel) and Render (the
Morph panel's morph with the effect chain around it), each at most one at a time on the
window's task queue, with progress, Cancel, and a dialog when one fails."""
from __future__ import annotations

from typing import List, Optional

from star_plugin.errors import StarError

from .clips import Clip, generate_clips, render_morph
from .tasks import Task


class JobController:
    """``generation`` and ``render_task`` are the running tasks (``None`` when idle); asks
    ``window`` for the models, the panels, the clips and its dialogs."""

    def __init__(self, window):
        self.window = window
        self.generation: Optional[Task] = None
        self.render_task: Optional[Task] = None

    # ----------------------------------------------------------------- generate
    def generate(self, values: Optional[dict] = None) -> Optional[Task]:
        w = self.window
        panel = w.generate_panel
        if w.generator is None:
            w.show_error("Generation is unavailable", panel.status.text() or
                         "No generator is loaded; start the studio with --generator DIR.")
            return None
        if self.generation is not None:
            return None
        v = values or panel.settings()
        task = Task("generate", lambda t: generate_clips(
            w.generator, v["prompt"], v["seconds"], v["steps"], v["cfg"], v["seed"],
            v["variations"], progress=t.report))
        task.signals.progress.connect(panel.set_progress)
        task.signals.finished.connect(self._generated)
        task.signals.cancelled.connect(lambda: panel.status.setText("Generation cancelled."))
        task.signals.failed.connect(lambda msg: w.show_error("Generation failed", msg))
        task.signals.ended.connect(self._generation_ended)
        panel.set_running(True)
        panel.status.setText(f"Generating {v['variations']} x {v['seconds']:.1f} s...")
        self.generation = w.tasks.submit(task)
        return task

    def _generated(self, clips: List[Clip]) -> None:
        for i, clip in enumerate(clips):
            self.window.add_clip(clip, select=i == 0)
        self.window.generate_panel.status.setText(f"Generated {len(clips)} clip(s).")

    def _generation_ended(self) -> None:
        self.generation = None
        self.window.generate_panel.set_running(False)

    # ----------------------------------------------------------------- render
    def render(self) -> Optional[Task]:
        w = self.window
        if self.render_task is not None:
            return None
        if w.model is None:
            w.show_info("The model is not ready", "The model is still loading, or it failed "
                        "to load (see the earlier message). Try again in a moment.")
            return None
        panel = w.morph_panel
        content = w.clip_by_id(panel.content.clip_id())
        if content is None:
            w.show_error("Nothing to morph", "Choose a content sound first: open a file "
                         "(Ctrl+O), drop one on 'Content', or generate one.")
            return None
        texture = w.clip_by_id(panel.texture_source.clip_id())
        try:
            params = panel.params()
        except StarError as exc:
            w.show_error("Bad morph parameters", str(exc))
            return None
        before, after = w.chain_panel.stages("before"), w.chain_panel.stages("after")
        task = Task("render", lambda t: render_morph(w.need_model(), content, texture, params,
                                                     before, after, progress=t.report))
        task.signals.progress.connect(panel.set_progress)
        task.signals.finished.connect(self._rendered)
        task.signals.failed.connect(lambda msg: w.show_error("Render failed", msg))
        task.signals.cancelled.connect(lambda: panel.status.setText("Render cancelled."))
        task.signals.ended.connect(self._render_ended)
        panel.set_running(True)
        panel.status.setText(f"Rendering '{content.name}'...")
        self.render_task = w.tasks.submit(task)
        return task

    def _rendered(self, clip: Clip) -> None:
        self.window.add_clip(clip)
        self.window.morph_panel.status.setText(f"Rendered '{clip.name}'. Ctrl+B compares it "
                                               "with the original.")

    def _render_ended(self) -> None:
        self.render_task = None
        self.window.morph_panel.set_running(False)

    def cancel(self) -> None:
        for task in (self.generation, self.render_task):
            if task is not None:
                task.cancel()
