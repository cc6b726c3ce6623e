"""``star bench studio``: does STAR Studio's window stay responsive while the model works?

A 10 ms timer ticks on the GUI thread. The gaps between its ticks show how long the event loop
was held up: idle, while the bundled generator makes sounds, and while a morph renders through
an effect chain. Runs offscreen with throw-away settings. Also times start-up (window shown ->
models ready) and each job."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TICK_MS = 10
FROZEN_MS = 100  # a gap longer than this is a visible stall


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="default")
    parser.add_argument("--generator", default="default")
    parser.add_argument("--seconds", type=float, default=10.0, help="length to generate")
    parser.add_argument("--variations", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--markdown", help="write a Markdown table here")


class _Ticks:
    def __init__(self, app):
        from PyQt6.QtCore import QTimer

        self.app, self.times = app, []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.times.append(time.perf_counter()))

    def run_until(self, done, timeout: float = 600.0) -> dict:
        from PyQt6.QtCore import QEventLoop

        self.times = [time.perf_counter()]
        self.timer.start()
        start = time.perf_counter()
        while not done():
            if time.perf_counter() - start > timeout:
                raise RuntimeError("timed out")
            self.app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        self.timer.stop()
        gaps = np.diff(self.times) * 1000 if len(self.times) > 1 else np.zeros(1)
        return {"seconds": round(time.perf_counter() - start, 3), "ticks": len(gaps),
                "median_gap_ms": round(float(np.median(gaps)), 1),
                "p99_gap_ms": round(float(np.percentile(gaps, 99)), 1),
                "max_gap_ms": round(float(gaps.max()), 1),
                "stalls_over_100ms": int((gaps > FROZEN_MS).sum())}


def run(args) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from ..bundled import presets_dir
    from ..gui.main_window import StudioWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ticks = _Ticks(app)
    results = {"tick_ms": TICK_MS, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat)
        w = StudioWindow(args.model, args.generator, settings)
        w.resize(1280, 820)
        w.show()
        results["startup"] = ticks.run_until(lambda: w.model is not None and not w.tasks.busy)
        examples = presets_dir() / "examples"
        w.open_files([examples / "speech.flac"], w.morph_panel.content)
        w.open_files([examples / "texture.flac"], w.morph_panel.texture_source)
        results["open_two_files"] = ticks.run_until(lambda: not w.tasks.busy)
        end = time.perf_counter() + 3.0
        results["idle"] = ticks.run_until(lambda: time.perf_counter() > end)
        if w.generator is not None:
            p = w.generate_panel
            p.seconds.setValue(args.seconds)
            p.variations.setValue(args.variations)
            w.generate()
            results["generate"] = ticks.run_until(lambda: w.generation is None)
            results["generate"]["what"] = (f"{args.variations} x {args.seconds:g} s, "
                                           f"{p.steps.value()} steps")
        w.chain_panel.add_effect("before", "HighpassFilter")
        w.chain_panel.add_effect("after", "Reverb")
        w.render()
        results["render"] = ticks.run_until(lambda: w.render_task is None)
        results["render"]["what"] = "3 s speech, texture from a file, highpass + reverb"
        w.close()
    return results


def markdown(results: dict) -> str:
    rows = ["| phase | what | seconds | ticks | median gap (ms) | p99 gap (ms) | max gap (ms) "
            "| gaps > 100 ms |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for phase in ("startup", "open_two_files", "idle", "generate", "render"):
        r = results.get(phase)
        if r:
            rows.append(f"| {phase} | {r.get('what', '')} | {r['seconds']} | {r['ticks']} | "
                        f"{r['median_gap_ms']} | {r['p99_gap_ms']} | {r['max_gap_ms']} | "
                        f"{r['stalls_over_100ms']} |")
    return (f"GUI-thread timer every {results['tick_ms']} ms, torch threads "
            f"{results['threads']}.\n\n" + "\n".join(rows) + "\n")


def run_from_args(args) -> None:
    from ..atomic import write_bytes_atomic
    from .report import guard_report_files

    guard_report_files(args)  # the output rule, before any measuring
    results = run(args)
    text = markdown(results)
    print(text)
    if args.json:
        write_bytes_atomic(args.json, (json.dumps(results, indent=2) + "\n").encode())
    if args.markdown:
        write_bytes_atomic(args.markdown, text.encode())
