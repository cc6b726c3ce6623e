"""A tiny standard MIDI file writer (format 0, one track): enough for fluidsynth.

Events are ``(time_seconds, status_bytes)``; the file uses 480 ticks per quarter note at the
default tempo (120 BPM), i.e. 960 ticks per second, so times are rounded to about 1 ms.
"""
from __future__ import annotations

import struct

TICKS_PER_QUARTER = 480
TICKS_PER_SECOND = 960  # at the MIDI default tempo of 500000 us per quarter


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


class MidiTrack:
    def __init__(self):
        self._events: list[tuple[int, int, int, bytes]] = []  # (tick, priority, order, data)

    def _add(self, t: float, priority: int, data: bytes) -> None:
        tick = max(0, int(round(t * TICKS_PER_SECOND)))
        self._events.append((tick, priority, len(self._events), data))

    def control(self, t: float, channel: int, controller: int, value: int) -> None:
        self._add(t, 0, bytes([0xB0 | channel, controller & 0x7F, value & 0x7F]))

    def program(self, t: float, channel: int, program: int) -> None:
        self._add(t, 1, bytes([0xC0 | channel, program & 0x7F]))

    def note(self, t: float, duration: float, channel: int, pitch: int, velocity: int) -> None:
        pitch = min(127, max(0, int(pitch)))
        velocity = min(127, max(1, int(velocity)))
        self._add(t, 3, bytes([0x90 | channel, pitch, velocity]))
        # a note-off sorts before a note-on at the same tick (priority 2 < 3)
        self._add(t + max(duration, 0.002), 2, bytes([0x80 | channel, pitch, 0]))

    def to_bytes(self, end: float) -> bytes:
        body = bytearray()
        last = 0
        for tick, _, _, data in sorted(self._events):
            body += _vlq(tick - last) + data
            last = tick
        end_tick = max(last, int(round(end * TICKS_PER_SECOND)))
        body += _vlq(end_tick - last) + b"\xff\x2f\x00"
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
        return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)
