"""Synthetic speech from espeak-ng: random sentences in several languages and voices.

Sentences come from small built-in templates and word lists per language; voice (language +
male/female variant), speed (words per minute) and pitch are drawn per item. The clip is the
sentence cropped (with a short fade) or padded to the clip length.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common

NAME = "speech"
PREFIX = "speech"
PACKAGE = "espeak-ng"
BATCH = 8

# language code -> (caption name, subjects, verbs, objects, extras)
LANGUAGES = {
    "en-us": ("American English",
              "the old man|my sister|a small dog|the teacher|our neighbour|the pilot|everyone",
              "found|painted|carried|remembered|opened|sold|watched|forgot",
              "a red bicycle|the heavy box|seven apples|the kitchen door|a long letter|the map",
              "yesterday|in the morning|after the rain|very quickly|before dinner|again"),
    "en-gb": ("British English",
              "the driver|my brother|a young girl|the doctor|the baker|nobody|the farmer",
              "cleaned|bought|moved|described|dropped|built|noticed|lost",
              "the garden gate|a blue umbrella|three letters|the old piano|a warm coat",
              "last week|at noon|on the train|in silence|by the river|twice"),
    "de": ("German", "der alte Mann|meine Schwester|ein kleiner Hund|die Lehrerin|niemand",
           "fand|malte|trug|öffnete|verkaufte|vergaß|sah",
           "das rote Fahrrad|die schwere Kiste|sieben Äpfel|die Küchentür|einen langen Brief",
           "gestern|am Morgen|nach dem Regen|sehr schnell|vor dem Essen|wieder"),
    "fr": ("French", "le vieil homme|ma sœur|un petit chien|le professeur|personne",
           "a trouvé|a peint|a porté|a ouvert|a vendu|a oublié|a regardé",
           "le vélo rouge|la grande boîte|sept pommes|la porte de la cuisine|une longue lettre",
           "hier|le matin|après la pluie|très vite|avant le dîner|encore"),
    "es": ("Spanish", "el anciano|mi hermana|un perro pequeño|la maestra|nadie",
           "encontró|pintó|llevó|abrió|vendió|olvidó|miró",
           "la bicicleta roja|la caja pesada|siete manzanas|la puerta de la cocina|una carta larga",
           "ayer|por la mañana|después de la lluvia|muy rápido|antes de cenar|otra vez"),
    "it": ("Italian", "il vecchio|mia sorella|un piccolo cane|la maestra|nessuno",
           "ha trovato|ha dipinto|ha portato|ha aperto|ha venduto|ha dimenticato",
           "la bicicletta rossa|la scatola pesante|sette mele|la porta della cucina",
           "ieri|la mattina|dopo la pioggia|molto in fretta|prima di cena|di nuovo"),
    "pt": ("Portuguese", "o velho|a minha irmã|um cão pequeno|a professora|ninguém",
           "encontrou|pintou|levou|abriu|vendeu|esqueceu",
           "a bicicleta vermelha|a caixa pesada|sete maçãs|a porta da cozinha",
           "ontem|de manhã|depois da chuva|muito depressa|antes do jantar"),
    "nl": ("Dutch", "de oude man|mijn zus|een kleine hond|de leraar|niemand",
           "vond|schilderde|droeg|opende|verkocht|vergat",
           "de rode fiets|de zware doos|zeven appels|de keukendeur|een lange brief",
           "gisteren|in de ochtend|na de regen|heel snel|voor het eten"),
    "pl": ("Polish", "stary człowiek|moja siostra|mały pies|nauczycielka|nikt",
           "znalazł|pomalował|niósł|otworzył|sprzedał|zapomniał",
           "czerwony rower|ciężkie pudło|siedem jabłek|drzwi kuchni|długi list",
           "wczoraj|rano|po deszczu|bardzo szybko|przed obiadem"),
    "sv": ("Swedish", "den gamle mannen|min syster|en liten hund|läraren|ingen",
           "hittade|målade|bar|öppnade|sålde|glömde",
           "den röda cykeln|den tunga lådan|sju äpplen|köksdörren|ett långt brev",
           "igår|på morgonen|efter regnet|mycket snabbt|före middagen"),
}
MALE = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE = ("f1", "f2", "f3", "f4", "f5")


def prepare(options: dict, sample_rate: int) -> dict:
    tool = common.find_tool("espeak-ng", options.get("espeak"), "STAR_CORPUS_ESPEAK", NAME)
    licence = common.package_licence(PACKAGE, fallback="GPL-3+")
    return {"tool": tool, "licence": licence, "warnings": []}


def _sentence(rng, parts) -> str:
    subj, verb, obj, extra = (p.split("|") for p in parts)
    pick = lambda xs: str(xs[int(rng.integers(len(xs)))])
    s = f"{pick(subj)} {pick(verb)} {pick(obj)}"
    if rng.random() < 0.6:
        s += f" {pick(extra)}"
    return s[0].upper() + s[1:] + str(rng.choice([".", ".", "?", "!"]))


def plan(ctx: dict, rng: np.random.Generator, index: int, seed: int, clip: float) -> dict:
    langs = sorted(LANGUAGES)
    lang = langs[int(rng.integers(len(langs)))]
    gender = "female" if rng.random() < 0.5 else "male"
    variant = str(rng.choice(FEMALE if gender == "female" else MALE))
    wpm = int(rng.integers(100, 241))
    pitch = int(rng.integers(15, 86))
    # about enough words to fill the clip at this speed, in one or two sentences
    text = " ".join(_sentence(rng, LANGUAGES[lang][1:]) for _ in range(1 + (clip > 3.0) +
                                                                     (wpm > 190)))
    return {"lang": lang, "gender": gender, "variant": variant, "wpm": wpm, "pitch": pitch,
            "text": text, "gap": int(rng.integers(0, 8))}


def describe(ctx: dict, spec: dict) -> dict:
    language = LANGUAGES[spec["lang"]][0]
    speed = "slowly" if spec["wpm"] < 140 else ("quickly" if spec["wpm"] > 200 else "")
    pitch = ("in a low voice" if spec["pitch"] < 30 else
             ("in a high voice" if spec["pitch"] > 70 else ""))
    tail = " ".join(w for w in (speed, pitch) if w)
    caption = f"a {spec['gender']} voice speaking {language}" + (f" {tail}" if tail else "")
    labels = {"source": "speech", "family": "speech", "instrument": f"{spec['gender']} voice",
              "register": None, "language": spec["lang"], "gender": spec["gender"],
              "speed_wpm": spec["wpm"], "pitch": spec["pitch"], "text": spec["text"]}
    origin = {"package": PACKAGE, "licence": ctx["licence"],
              "file": f"espeak-ng voice {spec['lang']}+{spec['variant']}"}
    return {"caption": caption, "labels": labels, "origin": origin}


def render(ctx: dict, specs: list[dict], sample_rate: int, clip: float, tmpdir: Path,
           warn=None):
    n = int(round(clip * sample_rate))
    out = []
    for k, spec in enumerate(specs):
        wav = Path(tmpdir) / f"speech{k}.wav"
        common.run_tool([ctx["tool"], "-v", f"{spec['lang']}+{spec['variant']}",
                         "-s", str(spec["wpm"]), "-p", str(spec["pitch"]), "-g",
                         str(spec["gap"]), "-w", str(wav), spec["text"]], "espeak-ng")
        mono = common.read_mono(wav, sample_rate)
        # trim leading silence so the voice starts within the clip
        idx = np.flatnonzero(np.abs(mono) > 1e-3)
        if idx.size:
            mono = mono[max(0, idx[0] - int(0.05 * sample_rate)):]
        out.append(common.fit_length(mono, n, fade=int(0.05 * sample_rate)))
    return out
