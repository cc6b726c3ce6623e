"""Drum patterns played with the recorded samples of the hydrogen-drumkits kits.

``drumkit.xml`` names each instrument and its velocity layers (sample file + velocity range).
Instruments are given a role (kick, snare, hat, ...) from their names; a groove from
:mod:`patterns` is then laid out at its tempo, each hit choosing the layer whose velocity range
holds the hit's velocity. A sample file that cannot be decoded is skipped with a warning naming
it (its instrument falls back to its other layers, a role to another instrument).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from . import common
from .patterns import random_groove

NAME = "drums"
PREFIX = "drum"
PACKAGE = "hydrogen-drumkits"
BATCH = 8
DEFAULT_DIR = "/usr/share/hydrogen/data/drumkits"

_ROLE_WORDS = [  # (role, regex on the lower-cased instrument name), first match wins
    ("open_hat", r"open|hh ?o\b|ohh|hat.?op"),
    ("hat", r"hat|hh|hi-?h|closed|pedal|chh"),
    ("crash", r"crash|splash|china|cymbal"),
    ("ride", r"ride|bell"),
    ("kick", r"kick|bass ?drum|\bbd|\bkd|kik|boom"),
    ("clap", r"clap|snap"),
    ("snare", r"snare|\bsd|\bsn|rim|stick"),
    ("tom_hi", r"tom ?(hi|h\b|1|2|high)|high tom|hi tom|\btom\b|tom"),
    ("tom_lo", r"floor|low tom|tom ?(lo|l\b|3|4|low)"),
    ("perc", r"."),
]
_FALLBACK = {"open_hat": ("hat", "crash", "perc"), "hat": ("ride", "perc", "clap", "snare"),
             "ride": ("hat", "perc"), "crash": ("ride", "open_hat", "perc"),
             "kick": ("tom_lo", "perc"), "snare": ("clap", "perc", "tom_hi"),
             "clap": ("snare", "perc"), "tom_hi": ("tom_lo", "perc", "snare"),
             "tom_lo": ("tom_hi", "kick", "perc"), "perc": ("hat", "snare", "clap")}


def _role(name: str) -> str:
    low = name.lower()
    if re.search(r"floor|low ?tom|tom ?(lo|low|3|4)\b", low):
        return "tom_lo"
    for role, pattern in _ROLE_WORDS:
        if re.search(pattern, low):
            return role
    return "perc"


def _text(el, tag, default=""):
    found = el.find(tag)
    return found.text.strip() if found is not None and found.text else default


def _kit_licence(kit_dir: Path, xml_licence: str) -> str:
    stem = re.sub(r"[ _-]*v?\d+(\.\d+)*$", "", kit_dir.name)
    for name in (kit_dir.name, stem):
        lic = common.package_licence(PACKAGE, f"drumkits/{name}.h2drumkit", fallback="")
        if lic:
            return lic
    return xml_licence or "unknown"


def _strip_ns(root):
    for el in root.iter():
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]


def parse_kit(kit_dir: Path, warn) -> dict | None:
    """A kit's name, licence and instruments ``[{name, role, layers: [(min, max, file)]}]``;
    files that libsndfile cannot open are left out with a warning; None when nothing usable."""
    xml = kit_dir / "drumkit.xml"
    try:
        root = ET.parse(xml).getroot()
    except (OSError, ET.ParseError) as exc:
        warn(f"skipping drum kit '{xml}': cannot parse it ({exc})")
        return None
    _strip_ns(root)
    kit_name = _text(root, "name", kit_dir.name).replace("_", " ")
    instruments = []
    for inst in root.iter("instrument"):
        name = _text(inst, "name")
        if not name:
            continue
        layers = []
        # new format: <layer> elements (velocity ranges); old format: <filename> directly
        elements = list(inst.iter("layer")) or [inst]
        for layer in elements:
            fname = _text(layer, "filename")
            if not fname:
                continue
            path = kit_dir / fname
            if not path.is_file():
                warn(f"skipping drum sample '{path}': the file named in '{xml}' is missing")
                continue
            problem = common.check_audio_header(path)
            if problem:
                warn(f"skipping drum sample '{path}': unreadable ({problem})")
                continue
            try:
                lo = float(_text(layer, "min", "0"))
                hi = float(_text(layer, "max", "1"))
            except ValueError:
                lo, hi = 0.0, 1.0
            layers.append((lo, hi, str(path)))
        if layers:
            layers.sort()
            instruments.append({"name": name, "role": _role(name), "layers": layers})
    if not instruments:
        warn(f"skipping drum kit '{kit_dir}': no usable instrument samples")
        return None
    return {"name": kit_name, "dir": kit_dir.name,
            "licence": _kit_licence(kit_dir, _text(root, "license")),
            "instruments": instruments}


def prepare(options: dict, sample_rate: int) -> dict:
    base = common.find_dir(DEFAULT_DIR, options.get("hydrogen_dir"), "STAR_CORPUS_HYDROGEN_DIR",
                           "the hydrogen drum kits", PACKAGE, NAME)
    warnings_: list[str] = []
    kits = []
    for kit_dir in sorted(p for p in base.iterdir() if (p / "drumkit.xml").is_file()):
        kit = parse_kit(kit_dir, warnings_.append)
        if kit:
            kits.append(kit)
    if not kits:
        raise common.missing("at least one drum kit with a drumkit.xml", base, PACKAGE, NAME)
    return {"kits": kits, "warnings": warnings_}


def plan(ctx: dict, rng: np.random.Generator, index: int, seed: int, clip: float) -> dict:
    kits = ctx["kits"]
    deck = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xD7]).permutation(len(kits))
    kit = int(deck[index % len(kits)])
    style, bpm, hits = random_groove(rng)
    velocity = float(rng.uniform(0.45, 1.0))
    # per-role instrument choice (several instruments may share a role)
    by_role: dict[str, list[int]] = {}
    for i, inst in enumerate(kits[kit]["instruments"]):
        by_role.setdefault(inst["role"], []).append(i)
    choice = {}
    for role in by_role:
        choice[role] = int(rng.choice(by_role[role]))
    return {"kit": kit, "style": style, "bpm": bpm, "velocity": velocity, "choice": choice,
            "hits": hits, "humanise": [float(x) for x in rng.normal(0, 0.004, size=len(hits))]}


def _the(name: str) -> str:
    return name if name.lower().startswith("the ") else f"the {name}"


def describe(ctx: dict, spec: dict) -> dict:
    kit = ctx["kits"][spec["kit"]]
    soft = spec["velocity"] < 0.6
    caption = (f"{common.with_article(spec['style'])} drum pattern at {spec['bpm']} BPM "
               f"{'played softly ' if soft else ''}on {_the(kit['name'])} kit")
    labels = {"source": "drums", "family": "drums", "instrument": f"{kit['name']} kit",
              "register": None, "style": spec["style"], "tempo_bpm": spec["bpm"],
              "kit": kit["name"], "dynamics": "soft" if soft else "medium"}
    origin = {"package": PACKAGE, "licence": kit["licence"],
              "file": f"{kit['dir']}/drumkit.xml"}
    return {"caption": caption, "labels": labels, "origin": origin}


_SAMPLE_CACHE: dict[tuple[str, int], np.ndarray | None] = {}


def _sample(path: str, sample_rate: int, warn) -> np.ndarray | None:
    key = (path, sample_rate)
    if key not in _SAMPLE_CACHE:
        try:
            _SAMPLE_CACHE[key] = common.read_mono(path, sample_rate)
        except Exception as exc:  # noqa: BLE001 - a broken sample is skipped, never fatal
            warn(f"skipping drum sample '{path}': cannot decode it ({exc})")
            _SAMPLE_CACHE[key] = None
    return _SAMPLE_CACHE[key]


def _layer_for(inst: dict, velocity: float, sample_rate: int, warn):
    layers = inst["layers"]
    ordered = sorted(layers, key=lambda l: (not (l[0] <= velocity <= l[1]),
                                            abs((l[0] + l[1]) / 2 - velocity)))
    for lo, hi, path in ordered:
        audio = _sample(path, sample_rate, warn)
        if audio is not None:
            return audio
    return None


def render(ctx: dict, specs: list[dict], sample_rate: int, clip: float, tmpdir: Path,
           warn=None):
    warn = warn or (lambda msg: None)
    n = int(round(clip * sample_rate))
    out = []
    for spec in specs:
        kit = ctx["kits"][spec["kit"]]
        insts = kit["instruments"]
        choice = {r: int(i) for r, i in spec["choice"].items()}
        buf = np.zeros(n + sample_rate, np.float32)
        beat = 60.0 / spec["bpm"]
        for (b, role, v), jitter in zip(spec["hits"], spec["humanise"]):
            t = 0.02 + b * beat + jitter
            start = int(round(max(t, 0.0) * sample_rate))
            if start >= n:
                break
            r = role if role in choice else next(
                (f for f in _FALLBACK[role] if f in choice), None)
            if r is None:
                r = sorted(choice)[0]
            vel = float(np.clip(v * spec["velocity"], 0.05, 1.0))
            audio = _layer_for(insts[choice[r]], vel, sample_rate, warn)
            if audio is None:
                continue
            seg = audio[: buf.size - start]
            buf[start:start + seg.size] += seg * np.float32(vel)
        out.append(common.fit_length(buf, n, fade=int(0.02 * sample_rate)))
    return out
