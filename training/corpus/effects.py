"""Effect variations of a dry item, with Pedalboard.

Each variation is a fresh Pedalboard chain (no state carried between items, so a variation
is a pure function of the dry audio and its parameters) applied to the dry clip, cropped back
to the clip length. Its caption is the dry caption plus a phrase naming the effect.
"""
from __future__ import annotations

import numpy as np

EFFECTS = ("reverb", "distortion", "chorus", "lowpass", "highpass", "bitcrush", "delay")


def plan_variation(rng: np.random.Generator, effect: str) -> dict:
    if effect == "reverb":
        size = float(rng.uniform(0.2, 0.95))
        return {"effect": effect, "room_size": size, "wet": float(rng.uniform(0.25, 0.5)),
                "damping": float(rng.uniform(0.2, 0.8)),
                "words": ("with a large hall reverb" if size > 0.7 else
                          "with a medium room reverb" if size > 0.45 else
                          "with a small room reverb")}
    if effect == "distortion":
        drive = float(rng.uniform(10, 40))
        return {"effect": effect, "drive_db": drive,
                "words": "with heavy distortion" if drive > 25 else "with mild distortion"}
    if effect == "chorus":
        depth = float(rng.uniform(0.2, 0.8))
        return {"effect": effect, "rate_hz": float(rng.uniform(0.3, 3.0)), "depth": depth,
                "mix": float(rng.uniform(0.4, 0.7)),
                "words": "with a deep chorus" if depth > 0.5 else "with a light chorus"}
    if effect == "lowpass":
        cutoff = float(np.exp(rng.uniform(np.log(300), np.log(3000))))
        return {"effect": effect, "cutoff_hz": cutoff,
                "words": ("muffled by a low-pass filter" if cutoff < 1000 else
                          "softened by a low-pass filter")}
    if effect == "highpass":
        cutoff = float(np.exp(rng.uniform(np.log(300), np.log(3000))))
        return {"effect": effect, "cutoff_hz": cutoff,
                "words": ("thin and tinny through a high-pass filter" if cutoff > 1000 else
                          "with the bass cut by a high-pass filter")}
    if effect == "bitcrush":
        depth = float(rng.uniform(4, 9))
        return {"effect": effect, "bit_depth": depth,
                "words": ("heavily bitcrushed and lo-fi" if depth < 6 else
                          "with a gritty bitcrushed sound")}
    if effect == "delay":
        seconds = float(rng.uniform(0.08, 0.5))
        return {"effect": effect, "delay_s": seconds, "feedback": float(rng.uniform(0.2, 0.6)),
                "mix": float(rng.uniform(0.25, 0.5)),
                "words": ("with a short slapback echo" if seconds < 0.15 else
                          "with an echoing delay")}
    raise ValueError(f"unknown effect {effect!r}")


def plan_variations(rng: np.random.Generator, count: int) -> list[dict]:
    chosen = rng.choice(len(EFFECTS), size=count, replace=False) if count else []
    return [plan_variation(rng, EFFECTS[int(i)]) for i in chosen]


def _board(v: dict):
    import pedalboard as pb
    e = v["effect"]
    if e == "reverb":
        return pb.Pedalboard([pb.Reverb(room_size=v["room_size"], damping=v["damping"],
                                        wet_level=v["wet"], dry_level=1 - v["wet"] / 2)])
    if e == "distortion":
        return pb.Pedalboard([pb.Distortion(drive_db=v["drive_db"])])
    if e == "chorus":
        return pb.Pedalboard([pb.Chorus(rate_hz=v["rate_hz"], depth=v["depth"], mix=v["mix"])])
    if e == "lowpass":
        return pb.Pedalboard([pb.LowpassFilter(cutoff_frequency_hz=v["cutoff_hz"])])
    if e == "highpass":
        return pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=v["cutoff_hz"])])
    if e == "bitcrush":
        return pb.Pedalboard([pb.Bitcrush(bit_depth=v["bit_depth"])])
    if e == "delay":
        return pb.Pedalboard([pb.Delay(delay_seconds=v["delay_s"], feedback=v["feedback"],
                                       mix=v["mix"])])
    raise ValueError(f"unknown effect {e!r}")


def apply(v: dict, mono: np.ndarray, sample_rate: int) -> np.ndarray:
    board = _board(v)
    x = np.ascontiguousarray(mono[None, :], dtype=np.float32)
    y = board(x, sample_rate, reset=True)
    out = np.asarray(y[0], dtype=np.float32)
    if out.size < mono.size:
        out = np.concatenate([out, np.zeros(mono.size - out.size, np.float32)])
    return np.nan_to_num(out[: mono.size])
