"""Screenshots of each STAR Studio panel, for the README:

    QT_QPA_PLATFORM=offscreen python -m star_plugin.gui.screenshots [DIR]

Opens the bundled examples, generates with the bundled generator, renders a morph through an
effect chain, and saves one PNG per panel to DIR (default docs/screenshots). Uses throw-away
settings, never the user's."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "a hip hop drum pattern at 90 BPM played loudly on the HardElectro1 kit"


def _wait(app, done, what: str, timeout: float = 300.0) -> None:
    from PyQt6.QtCore import QEventLoop

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def _save(window, path: Path) -> Path:
    from star_plugin.atomic import atomic_path

    with atomic_path(path) as tmp:
        if not window.grab().save(str(tmp), "PNG"):
            raise RuntimeError(f"could not write {path}")
    return path


def capture(out_dir, model: str = "default", generator: str = "default") -> list:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from star_plugin.bundled import presets_dir

    from .main_window import StudioWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "studio.ini"), QSettings.Format.IniFormat)
        w = StudioWindow(model, generator, settings)
        w.resize(1440, 900)
        w.show()
        _wait(app, lambda: w.model is not None and not w.tasks.busy, "the models")
        examples = presets_dir() / "examples"
        w.open_files([examples / "speech.flac"], w.morph_panel.content)
        w.open_files([examples / "melody.flac"], w.morph_panel.texture_source)
        _wait(app, lambda: len(w.clips) == 2, "the example clips")

        w.generate_panel.prompt.setText(PROMPT)
        w.generate_panel.seconds.setValue(4.0)
        w.generate_panel.variations.setValue(2)
        w.generate()
        _wait(app, lambda: w.generation is None, "generation")
        w.clip_list.setCurrentRow(2)
        w.tabs.setCurrentIndex(0)
        shots = [_save(w, out / "generate.png")]

        w.chain_panel.add_effect("before", "HighpassFilter")
        w.chain_panel.add_effect("after", "Reverb")
        w.morph_panel.load_preset_from("timbre-transfer")
        w.render()
        _wait(app, lambda: w.render_task is None, "the render")
        w.clip_list.setCurrentRow(len(w.clips) - 1)
        w.tabs.setCurrentIndex(1)
        shots.append(_save(w, out / "morph.png"))
        w.tabs.setCurrentIndex(2)
        shots.append(_save(w, out / "chain.png"))
        w.tabs.setCurrentIndex(1)
        w.ab_action.setChecked(True)  # A/B on the original: the views show the content clip
        shots.append(_save(w, out / "ab-original.png"))
        w.close()
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/screenshots")
    parser.add_argument("--model", default="default")
    parser.add_argument("--generator", default="default")
    args = parser.parse_args(argv)
    for path in capture(args.out, args.model, args.generator):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
