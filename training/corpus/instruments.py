"""General MIDI instruments rendered by fluidsynth from fluid-soundfont-gm.

Every item is a random phrase (melody, chords, arpeggio or sustained notes) for one of the 128
GM programs, or a groove on the GM drum kit (channel 10). Programs are dealt from a
seed-shuffled deck of all 129 choices, so any build with at least 129 dry items holds every
program and the drum kit. Items are rendered 16 to a MIDI file (one fluidsynth start): each
sits in its own time slot, opened by a controller reset and closed by "all sound off", so an
item sounds the same whatever slot or file it lands in. Reverb and chorus are off (``-R 0
-C 0``): effects come only from the corpus' own variations.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common
from .midi import MidiTrack
from .patterns import random_groove, tempo_word

NAME = "instruments"
PREFIX = "gm"
PACKAGE = "fluid-soundfont-gm"
BATCH = 16
_GAP = 1.0  # seconds of silence between slots
_DECK = 129  # 128 programs + the drum kit

SF2_CANDIDATES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

GM_FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings",
               "ensemble", "brass", "reed", "pipe", "synth lead", "synth pad", "synth effects",
               "ethnic", "percussive", "sound effects")

# caption names of the 128 GM programs, in program order
GM_NAMES = (
    "grand piano", "bright piano", "electric grand piano", "honky-tonk piano",
    "electric piano", "FM electric piano", "harpsichord", "clavinet",
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone",
    "tubular bells", "dulcimer",
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ",
    "accordion", "harmonica", "tango accordion",
    "nylon-string guitar", "steel-string guitar", "jazz guitar", "clean electric guitar",
    "muted electric guitar", "overdriven guitar", "distortion guitar", "guitar harmonics",
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass",
    "slap bass", "slap bass", "synth bass", "synth bass",
    "violin", "viola", "cello", "contrabass", "tremolo strings", "pizzicato strings",
    "orchestral harp", "timpani",
    "string ensemble", "slow string ensemble", "synth strings", "synth strings",
    "choir singing aahs", "voice singing oohs", "synth voice", "orchestra hit",
    "trumpet", "trombone", "tuba", "muted trumpet", "French horn", "brass section",
    "synth brass", "synth brass",
    "soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone", "oboe",
    "English horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle",
    "ocarina",
    "square-wave synth lead", "sawtooth synth lead", "calliope synth lead",
    "chiff synth lead", "charang synth lead", "voice synth lead", "fifths synth lead",
    "bass and lead synth",
    "new age synth pad", "warm synth pad", "polysynth pad", "choir synth pad",
    "bowed synth pad", "metallic synth pad", "halo synth pad", "sweep synth pad",
    "rain synth effect", "soundtrack synth effect", "crystal synth effect",
    "atmosphere synth effect", "brightness synth effect", "goblins synth effect",
    "echoes synth effect", "sci-fi synth effect",
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai",
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom",
    "synth drum", "reverse cymbal",
    "guitar fret noise", "breath noise", "seashore", "bird tweet", "telephone ring",
    "helicopter", "applause", "gunshot",
)
assert len(GM_NAMES) == 128

# typical centre (MIDI note) of each family's "middle" register
_FAMILY_CENTRE = (60, 72, 60, 55, 38, 62, 60, 60, 62, 76, 67, 60, 60, 62, 67, 60)
_PROGRAM_CENTRE = {40: 74, 41: 64, 42: 50, 43: 38, 45: 62, 46: 62, 47: 45, 56: 67, 57: 50,
                   58: 40, 59: 67, 60: 55, 64: 72, 65: 66, 66: 58, 67: 48, 68: 72, 69: 65,
                   70: 50, 71: 64, 72: 86, 73: 77, 74: 74, 9: 84, 10: 79, 12: 62, 13: 79,
                   105: 62, 106: 60, 113: 60, 114: 64, 115: 72, 116: 52, 117: 48, 118: 52}

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
           "pentatonic": (0, 2, 4, 7, 9), "dorian": (0, 2, 3, 5, 7, 9, 10)}
PHRASES = ("melody", "chords", "arpeggio", "sustained")
_PHRASE_WORDS = {"melody": "a {t} melody", "chords": "{t} chords", "arpeggio": "a {t} arpeggio",
                 "sustained": "sustained notes"}

GM_DRUMS = {"kick": 36, "snare": 38, "hat": 42, "open_hat": 46, "ride": 51, "crash": 49,
            "tom_hi": 48, "tom_lo": 43, "clap": 39, "perc": 56}


def prepare(options: dict, sample_rate: int) -> dict:
    tool = common.find_tool("fluidsynth", options.get("fluidsynth"), "STAR_CORPUS_FLUIDSYNTH",
                            NAME)
    sf2 = options.get("sf2") or __import__("os").environ.get("STAR_CORPUS_SF2")
    if not sf2:
        sf2 = next((c for c in SF2_CANDIDATES if Path(c).is_file()), SF2_CANDIDATES[0])
    if not Path(sf2).is_file():
        raise common.missing("a General MIDI SoundFont", sf2, PACKAGE, NAME)
    sf2 = str(Path(sf2).resolve())
    package = common.owning_package(sf2, PACKAGE)  # e.g. musescore-general-soundfont
    licence = common.package_licence(package, fallback="MIT")
    return {"tool": tool, "sf2": sf2, "package": package, "licence": licence, "warnings": []}


def _dynamics(velocity: int) -> str:
    return "soft" if velocity < 60 else ("loud" if velocity > 100 else "medium")


def plan(ctx: dict, rng: np.random.Generator, index: int, seed: int, clip: float) -> dict:
    deck = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x61D]).permutation(_DECK)
    # re-rolls (index already offset by the builder) keep the program of the first try
    program = int(deck[index % _DECK])
    if program == 128:
        style, bpm, hits = random_groove(rng)
        velocity = int(rng.integers(50, 128))
        return {"kind": "drums", "style": style, "bpm": bpm, "velocity": velocity,
                "hits": [(b, r, v) for b, r, v in hits]}
    family = program // 8
    phrase = str(rng.choice(PHRASES, p=(0.35, 0.25, 0.25, 0.15)))
    register = str(rng.choice(("low", "middle", "high"), p=(0.3, 0.4, 0.3)))
    centre = _PROGRAM_CENTRE.get(program, _FAMILY_CENTRE[family])
    centre += {"low": -12, "middle": 0, "high": 12}[register] + int(rng.integers(-2, 3))
    bpm = int(rng.integers(60, 181))
    velocity = int(rng.integers(30, 128))
    scale = _SCALES[str(rng.choice(sorted(_SCALES)))]
    root = centre - int(rng.integers(0, 12))
    beat = 60.0 / bpm
    end = clip - 0.35  # leave room for the release before "all sound off"
    notes = []  # (start, duration, pitch, velocity)

    def deg(d):  # scale degree -> MIDI pitch
        return root + 12 * (d // len(scale)) + scale[d % len(scale)]

    def vel():
        return int(np.clip(velocity + rng.integers(-8, 9), 1, 127))

    t = 0.05
    if phrase == "melody":
        d = int(rng.integers(0, len(scale)))
        while t < end - 0.1:
            dur = beat * float(rng.choice((0.5, 0.5, 1.0, 1.0, 1.5, 2.0)))
            notes.append((t, min(dur * 0.95, end - t), deg(d), vel()))
            d = int(np.clip(d + rng.choice((-2, -1, -1, 1, 1, 2, 3, -3)), -4, 2 * len(scale)))
            t += dur
    elif phrase in ("chords", "arpeggio"):
        step = beat * (0.5 if phrase == "arpeggio" and rng.random() < 0.6 else
                       (0.25 if phrase == "arpeggio" else float(rng.choice((1.0, 2.0)))))
        degrees = [int(x) for x in rng.choice((0, 3, 4, 5, 1), size=4)]
        k = 0
        while t < end - 0.1:
            base = degrees[(k // (4 if phrase == "arpeggio" else 1)) % 4]
            chord = [deg(base), deg(base + 2), deg(base + 4)]
            if rng.random() < 0.3:
                chord.append(deg(base + 6))
            if phrase == "chords":
                for p in chord:
                    notes.append((t, min(step * 0.95, end - t), p, vel()))
            else:
                p = chord[k % len(chord)] + (12 if (k // len(chord)) % 2 else 0)
                notes.append((t, min(step * 1.5, end - t), p, vel()))
            t += step
            k += 1
    else:  # sustained: one long note or a long interval / chord
        count = int(rng.integers(1, 4))
        half = rng.random() < 0.4
        for s in ((0.05,) if not half else (0.05, end / 2)):
            for j in range(count):
                notes.append((s, (end / 2 if half else end) - 0.05, deg(2 * j), vel()))
    return {"kind": "melodic", "program": program, "phrase": phrase, "register": register,
            "bpm": bpm, "velocity": velocity, "notes": notes}


def describe(ctx: dict, spec: dict) -> dict:
    if spec["kind"] == "drums":
        dyn = _dynamics(spec["velocity"])
        caption = (f"{common.with_article(spec['style'])} drum pattern at {spec['bpm']} BPM "
                   f"played {'softly ' if dyn == 'soft' else ('hard ' if dyn == 'loud' else '')}"
                   f"on a General MIDI drum kit")
        labels = {"source": "drums", "family": "drums", "instrument": "gm drum kit",
                  "register": None, "style": spec["style"], "tempo_bpm": spec["bpm"],
                  "dynamics": dyn}
        file = "FluidR3_GM.sf2 bank 128 (standard drum kit)"
    else:
        program = spec["program"]
        name, family = GM_NAMES[program], GM_FAMILIES[program // 8]
        dyn = _dynamics(spec["velocity"])
        tempo = tempo_word(spec["bpm"])
        phrase = _PHRASE_WORDS[spec["phrase"]].format(t=tempo)
        adj = "" if dyn == "medium" else dyn + " "
        if family == "sound effects":
            caption = (f"{common.with_article(adj + name)} sound effect played as {phrase} "
                       f"in the {spec['register']} register")
        else:
            caption = (f"{common.with_article(adj + name)} playing {phrase} "
                       f"in the {spec['register']} register")
        labels = {"source": "instrument", "family": family, "instrument": name,
                  "register": spec["register"], "program": program, "phrase": spec["phrase"],
                  "tempo_bpm": spec["bpm"], "dynamics": dyn}
        file = f"{Path(ctx['sf2']).name} program {program}"
    origin = {"package": ctx.get("package", PACKAGE), "licence": ctx["licence"], "file": file,
              "renderer": "fluidsynth"}
    return {"caption": caption, "labels": labels, "origin": origin}


def _write_slot(track: MidiTrack, spec: dict, t0: float, clip: float) -> None:
    for ch in (0, 9):
        track.control(t0, ch, 121, 0)  # reset all controllers
        track.control(t0, ch, 7, 100)
        track.control(t0, ch, 10, 64)
        track.control(t0, ch, 91, 0)
        track.control(t0, ch, 93, 0)
    if spec["kind"] == "drums":
        beat = 60.0 / spec["bpm"]
        for b, role, v in spec["hits"]:
            t = 0.05 + b * beat
            if t < clip - 0.3:
                track.note(t0 + t, 0.1, 9, GM_DRUMS[role],
                           int(np.clip(v * spec["velocity"], 1, 127)))
    else:
        track.program(t0, 0, spec["program"])
        for start, dur, pitch, vel in spec["notes"]:
            track.note(t0 + start, dur, 0, pitch, vel)
    for ch in (0, 9):
        track.control(t0 + clip, ch, 120, 0)  # all sound off
        track.control(t0 + clip, ch, 123, 0)  # all notes off


def render(ctx: dict, specs: list[dict], sample_rate: int, clip: float, tmpdir: Path,
           warn=None):
    """-> list of mono float32 arrays (one per spec), ``clip`` seconds each."""
    slot = clip + _GAP
    track = MidiTrack()
    for k, spec in enumerate(specs):
        _write_slot(track, spec, 0.5 + k * slot, clip)
    mid = Path(tmpdir) / "batch.mid"
    wav = Path(tmpdir) / "batch.wav"
    mid.write_bytes(track.to_bytes(0.5 + len(specs) * slot + 0.5))
    common.run_tool([ctx["tool"], "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
                     "-O", "float", "-T", "wav", "-F", str(wav), "-r", str(sample_rate),
                     ctx["sf2"], str(mid)], "fluidsynth")
    from star_plugin.audio import read_audio
    audio, _ = read_audio(wav)
    mono = common.to_mono(audio)
    n = int(round(clip * sample_rate))
    out = []
    for k in range(len(specs)):
        start = int(round((0.5 + k * slot) * sample_rate))
        out.append(common.fit_length(mono[start:start + n], n))
    return out
