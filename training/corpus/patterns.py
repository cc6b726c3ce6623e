"""Drum patterns on a 16-step (sixteenth-note) grid, shared by the GM kit and hydrogen kits.

A pattern maps a role (kick, snare, hat, ...) to a 16-character string: ``x`` accent,
``o`` normal hit, ``g`` ghost note, ``.`` rest. :func:`random_groove` picks a style, a tempo
in the style's range and small variations, all from the given Generator.
"""
from __future__ import annotations

import numpy as np

ROLES = ("kick", "snare", "hat", "open_hat", "ride", "crash", "tom_hi", "tom_lo", "clap", "perc")

STYLES: dict[str, dict] = {
    "rock": dict(bpm=(90, 150), kick="x.....o.x.......", snare="....x.......x...",
                 hat="o.o.o.o.o.o.o.o."),
    "funk": dict(bpm=(90, 115), kick="x..o..o...x..o..", snare="....x..g.g..x..g",
                 hat="ooooxoooooooxooo"),
    "hip hop": dict(bpm=(80, 100), kick="x......ox.x.....", snare="....x.......x...",
                    hat="o.o.o.o.o.o.o.oo"),
    "disco": dict(bpm=(110, 130), kick="x...x...x...x...", snare="....x.......x...",
                  hat="..o...o...o...o.", open_hat="..x...x...x...x."),
    "house": dict(bpm=(118, 130), kick="x...x...x...x...", clap="....x.......x...",
                  hat="..o...o...o...o."),
    "half-time": dict(bpm=(70, 95), kick="x.........o.....", snare="........x.......",
                      hat="o.o.o.o.o.o.o.o."),
    "breakbeat": dict(bpm=(130, 175), kick="x.x.......x.....", snare="....x..o.o..x...",
                      hat="oooooooooooooooo"),
    "reggae": dict(bpm=(65, 85), kick="........x.......", snare="........x.......",
                   hat="o.o.o.o.o.o.o.o.", perc="..o...o...o...o."),
    "shuffle": dict(bpm=(85, 120), kick="x.....x.x.......", snare="....x.......x...",
                    hat="x.ox.ox.ox.ox.o."),
    "jazz": dict(bpm=(100, 180), ride="x..ox...x..ox...", hat="....o.......o...",
                 kick="x...........g...", snare="......g.......g."),
}

_VELOCITY = {"x": 1.0, "o": 0.72, "g": 0.35}


def tempo_word(bpm: float) -> str:
    return "slow" if bpm < 90 else ("fast" if bpm > 130 else "moderate")


def random_groove(rng: np.random.Generator, style: str | None = None):
    """-> (style, bpm, hits) with hits a list of (time_in_beats, role, velocity 0..1)."""
    if style is None:
        style = str(rng.choice(sorted(STYLES)))
    spec = STYLES[style]
    lo, hi = spec["bpm"]
    bpm = int(rng.integers(lo, hi + 1))
    grid = {role: spec[role] for role in ROLES if role in spec}
    if "hat" in grid and style not in ("jazz", "shuffle") and rng.random() < 0.3:
        grid["hat"] = "o" * 16 if rng.random() < 0.5 else "o.o.o.o.o.o.o.o."
    if rng.random() < 0.3 and "ride" not in grid:
        grid["ride"], grid["hat"] = grid.get("hat", "o.o.o.o.o.o.o.o."), "................"
    hits = []
    for bar in range(8):  # enough bars for any clip; the renderer stops at the clip's end
        fill = bar % 4 == 3 and rng.random() < 0.5
        for role, steps in grid.items():
            for i, c in enumerate(steps):
                if c == ".":
                    continue
                if fill and i >= 12 and role in ("hat", "ride", "snare"):
                    continue
                vel = _VELOCITY[c] * float(rng.uniform(0.85, 1.0))
                hits.append((bar * 4 + i / 4, role, vel))
        if bar % 4 == 0 and rng.random() < 0.4:
            hits.append((bar * 4, "crash", 0.9))
        if fill:
            for i, role in zip(range(12, 16), ("snare", "tom_hi", "tom_hi", "tom_lo")):
                hits.append((bar * 4 + i / 4, role, float(rng.uniform(0.7, 1.0))))
    hits.sort(key=lambda h: (h[0], h[1]))
    return style, bpm, hits
