"""``star bench gen``: how well do STAR-Gen generators follow prompts, how close is what they
make to real audio, and how fast are they? Definitions in docs/METRICS.md.

The judge is the project's own audio classifier (``audio_classifier.py``), trained on the real
audio of the corpus's train split. It is a self-trained evaluator: the figures compare this
project's generators with each other and are not comparable with published FAD / CLAP.

Per generator, on the corpus's eval split (default: test):

* **adherence**: generate one clip per eval caption (the caption is the prompt); the share whose
  predicted ``source`` (and ``family``) is the one the caption's clip is labelled with. Reported
  over all eval captions and over the captions that never occur in the train split (held out).
* **Fréchet distance** between Gaussians fitted to the evaluator's embeddings of the generated
  clips and of the real eval clips.
* **ceiling**: the same two figures for the real clips passed through the generator's VAE
  (encode + decode): what a perfect generator of that VAE's latents would score.
* **speed**: seconds to generate ``--speed-seconds`` of audio at the default settings (text
  encoding, ODE, decoding), median of ``--speed-repeats``, after one warm-up.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .report import BenchError, check_positive, fmt, markdown_table, text_table

DEFAULT_EVALUATOR = "benchmarks/gen/evaluator"
SPEED_PROMPT = "a soft piano playing a slow melody"


def add_arguments(parser) -> None:
    from ..gen.generator import DEFAULT_CFG, DEFAULT_SOLVER, DEFAULT_STEPS

    parser.add_argument("corpus", help="a corpus directory ('star data build'): its captions are "
                        "the prompts, its labels the answers")
    parser.add_argument("--generator", action="append", metavar="[LABEL=]NAME_OR_DIR",
                        help="a generator to evaluate (repeatable; default: the bundled "
                        "'default'); LABEL names its row")
    parser.add_argument("--evaluator", default=DEFAULT_EVALUATOR, metavar="DIR",
                        help=f"the evaluator classifier directory (default {DEFAULT_EVALUATOR})")
    parser.add_argument("--train-evaluator", action="store_true",
                        help="train the evaluator on the corpus's train split and save it to "
                        "--evaluator first")
    parser.add_argument("--evaluator-epochs", type=int, default=30, metavar="N")
    parser.add_argument("--split", default="test", help="the eval split (default test)")
    parser.add_argument("--max-clips", type=int, default=None, metavar="N",
                        help="use at most N eval clips (evenly spaced by id)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each generated clip")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    parser.add_argument("--solver", default=DEFAULT_SOLVER)
    parser.add_argument("--batch", type=int, default=16, help="prompts generated together")
    parser.add_argument("--speed-seconds", type=float, default=10.0)
    parser.add_argument("--speed-repeats", type=int, default=3, help="0 skips the speed test")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice, all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="write the full results as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the table as Markdown")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _entries(corpus, split: str, max_clips: Optional[int]) -> List[dict]:
    from ..corpus_manifest import read_manifest
    from .report import even_subset, DataItem

    try:
        entries = read_manifest(corpus, split)
    except Exception as exc:
        raise BenchError(str(exc)) from None
    if not entries:
        raise BenchError(f"corpus '{corpus}': split {split!r} is empty")
    by_id = {str(e["id"]): e for e in entries}
    picked = even_subset([DataItem(i, Path(), {}) for i in by_id], max_clips)
    return [by_id[item.id] for item in picked]


def _read(corpus, entry: dict):
    from ..audio import read_audio, sanitize
    from ..corpus_manifest import audio_path

    audio, rate = read_audio(audio_path(corpus, entry))
    return sanitize(audio)[0], int(rate)


def train_evaluator(corpus, directory, epochs: int, seed: int = 0) -> dict:
    from .audio_classifier import log_mel, save_classifier, train_classifier

    train = _entries(corpus, "train", None)
    _log(f"evaluator: reading {len(train)} train clips")
    mels = [log_mel(*_read(corpus, e)) for e in train]
    labels = [e.get("labels") or {} for e in train]
    start = time.monotonic()
    model = train_classifier(mels, labels, epochs=epochs, seed=seed, log=_log)
    facts = {"corpus": str(corpus), "train_clips": len(train), "epochs": epochs, "seed": seed,
             "train_seconds": round(time.monotonic() - start, 1)}
    save_classifier(model, directory, facts)
    _log(f"evaluator saved to {directory} ({facts['train_seconds']} s)")
    return facts


def _scores(predicted: Dict[str, list], entries: List[dict], keep: List[bool]) -> dict:
    out = {}
    for name in ("source", "family"):
        pairs = [(p, str((e.get("labels") or {}).get(name))) for p, e, k in
                 zip(predicted[name], entries, keep) if k]
        out[name] = float(np.mean([p == t for p, t in pairs])) if pairs else float("nan")
    out["n"] = int(sum(keep))
    return out


def _judge(evaluator, clips, rate, entries, held_out, real_embedding) -> dict:
    from .audio_classifier import frechet_distance

    result = evaluator.analyse(clips, rate)
    every = [True] * len(entries)
    return {"all": _scores(result, entries, every),
            "held_out": _scores(result, entries, held_out),
            "frechet": frechet_distance(result["embedding"], real_embedding)}


def evaluate_generator(label: str, source: str, evaluator, corpus, entries, held_out,
                       real, args) -> dict:
    import torch

    from ..audio import convert_channels, resample
    from ..gen.store import load_generator

    gen = load_generator(source)
    rate = gen.sample_rate
    row = {"label": label, "generator": source, "parameters": gen.model.num_parameters(),
           "config": gen.model.config.to_dict()}
    # ceiling: the real eval clips through this generator's VAE
    recon, real_latents = [], []
    with torch.inference_mode():
        for audio, audio_rate in real["audio"]:
            x = convert_channels(audio, gen.vae.config.audio_channels)
            x = resample(x, audio_rate, rate) if audio_rate != rate else x
            latent = gen.vae.encode(torch.from_numpy(x)[None])
            recon.append(gen.vae.decode(latent.mean, num_samples=x.shape[-1])[0].numpy())
            real_latents.append(latent.mean[0].numpy())
    row["ceiling"] = _judge(evaluator, recon, rate, entries, held_out, real["embedding"])
    # generated: one clip per eval caption
    generated, generated_latents, start = [], [], time.monotonic()
    prompts = [e["caption"] for e in entries]
    for i in range(0, len(prompts), args.batch):
        latent = gen.generate_latent(prompts[i:i + args.batch], args.seconds, steps=args.steps,
                                     cfg=args.cfg, solver=args.solver, seed=args.seed + i)
        with torch.inference_mode():
            audio = gen.vae.decode(latent.mean, num_samples=latent.num_samples)
        generated.extend(list(audio.numpy()))
        generated_latents.extend(list(latent.mean.numpy()))
        _log(f"{label}: generated {min(i + args.batch, len(prompts))}/{len(prompts)}")
    row["generation_seconds_total"] = round(time.monotonic() - start, 1)
    row["generated"] = _judge(evaluator, generated, rate, entries, held_out, real["embedding"])
    row["latent"] = latent_judge(corpus, gen, source, real_latents, generated_latents, entries,
                                 held_out)
    if args.speed_repeats:  # at the generator's default settings, after one warm-up
        from ..gen.generator import DEFAULT_CFG, DEFAULT_SOLVER, DEFAULT_STEPS

        times = []
        for r in range(args.speed_repeats + 1):
            t0 = time.perf_counter()
            gen.generate(SPEED_PROMPT, args.speed_seconds, seed=r)
            times.append(time.perf_counter() - t0)
        times = times[1:]
        row["speed"] = {"audio_seconds": args.speed_seconds, "median_s": float(np.median(times)),
                        "times_s": times, "threads": torch.get_num_threads(),
                        "steps": DEFAULT_STEPS, "cfg": DEFAULT_CFG, "solver": DEFAULT_SOLVER}
    return row


def latent_judge(corpus, gen, source, real_latents, generated_latents, entries,
                 held_out) -> dict:
    """The same questions asked in the generator's own latent space, so that a VAE whose
    decoder is poor does not hide what its generator learned: a linear probe (``probes.py``)
    of each label on [time-mean, time-std] per channel, fitted on the VAE's latents of the
    train split (the training cache), scored on the real eval latents (ceiling) and on the
    generated ones; and the Fréchet distance between those features (standardised with the
    train split's statistics), generated vs real."""
    from ..gen.latent_cache import build_cache
    from ..gen.store import read_generator
    from .audio_classifier import frechet_distance
    from .probes import clip_features, fit_logistic, standardise

    vae_name = read_generator(source)[1]["vae"]
    cache = build_cache(corpus, vae_name, _cache_path(corpus, vae_name))
    channels = list(range(gen.vae.config.latent_channels))
    train = cache.split("train")
    x_train = np.stack([clip_features(cache.clip_latent(c), channels) for c in train])
    x_real = np.stack([clip_features(z, channels) for z in real_latents])
    x_gen = np.stack([clip_features(z, channels) for z in generated_latents])
    x_train, x_real, x_gen = standardise(x_train, x_real, x_gen)
    predicted = {"real": {}, "generated": {}}
    for name in ("source", "family"):
        labels = [str((c.get("labels") or {}).get(name)) for c in train]
        classes = sorted(set(labels))
        w, b = fit_logistic(x_train, np.array([classes.index(v) for v in labels]), len(classes))
        for what, x in (("real", x_real), ("generated", x_gen)):
            predicted[what][name] = [classes[k] for k in (x @ w.numpy() + b.numpy()).argmax(1)]
    out = {what: {"all": _scores(p, entries, [True] * len(entries)),
                  "held_out": _scores(p, entries, held_out)} for what, p in predicted.items()}
    out["frechet"] = frechet_distance(x_gen, x_real)
    return out


def _cache_path(corpus, vae_name) -> Path:
    """Where the training cache of this VAE lives: the trainer's default location, or any
    cache in the corpus directory that holds this VAE's latents (``build_cache`` checks)."""
    from ..gen.latent_cache import load_cache, vae_fingerprint

    default = Path(corpus) / f"latents-{Path(str(vae_name)).name}.safetensors"
    fingerprint = vae_fingerprint(vae_name)
    for path in [default, *sorted(Path(corpus).glob("latents-*.safetensors"))]:
        try:
            if path.exists() and load_cache(path).meta.get("vae_sha256") == fingerprint:
                return path
        except Exception:  # an unreadable cache file is not this VAE's cache
            continue
    return Path(corpus) / f"latents-{fingerprint[:12]}.safetensors"


def _parse_generators(values) -> List[tuple]:
    pairs = []
    for value in values or ["default"]:
        label, _, source = value.rpartition("=")
        pairs.append((label or Path(source).name, source))
    return pairs


def run_bench_gen(args) -> dict:
    import torch

    from .audio_classifier import load_classifier
    from .report import guard_report_files

    guard_report_files(args)  # the output rule, before any measuring
    for name in ("seconds", "speed_seconds"):
        check_positive(f"--{name.replace('_', '-')}", getattr(args, name), allow_none=False)
    if args.batch < 1 or args.speed_repeats < 0 or args.evaluator_epochs < 1:
        raise BenchError("--batch and --evaluator-epochs must be >= 1, --speed-repeats >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = Path(args.corpus)
    facts = train_evaluator(corpus, args.evaluator, args.evaluator_epochs, args.seed) \
        if args.train_evaluator else None
    evaluator = load_classifier(args.evaluator)
    entries = _entries(corpus, args.split, args.max_clips)
    train_captions = {e["caption"] for e in _entries(corpus, "train", None)}
    held_out = [e["caption"] not in train_captions for e in entries]
    audio = [_read(corpus, e) for e in entries]
    if len({rate for _, rate in audio}) != 1:
        raise BenchError("the eval clips must share one sample rate")
    real = evaluator.analyse([a for a, _ in audio], audio[0][1])
    real["audio"] = audio
    results = {"corpus": str(corpus), "split": args.split, "clips": len(entries),
               "held_out_captions": int(sum(held_out)), "evaluator": str(args.evaluator),
               "evaluator_training": facts, "settings": {
                   "seconds": args.seconds, "steps": args.steps, "cfg": args.cfg,
                   "solver": args.solver, "seed": args.seed},
               "real": {"all": _scores(real, entries, [True] * len(entries)),
                        "held_out": _scores(real, entries, held_out)},
               "chance": _chance(entries), "generators": []}
    for label, source in _parse_generators(args.generator):
        _log(f"evaluating generator {label} ({source})")
        results["generators"].append(
            evaluate_generator(label, source, evaluator, corpus, entries, held_out, real, args))
    table = format_table(results)
    print(table)
    if args.json:
        _write(args.json, json.dumps(results, indent=2))
    if args.markdown:
        _write(args.markdown, format_table(results, markdown=True) + "\n")
    return results


def _chance(entries) -> dict:
    """Accuracy of always answering the eval split's most frequent class."""
    out = {}
    for name in ("source", "family"):
        values = [str((e.get("labels") or {}).get(name)) for e in entries]
        out[name] = max(values.count(v) for v in set(values)) / len(values)
    return out


def _write(path, text: str) -> None:
    from ..atomic import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_text(text)


def format_table(results: dict, markdown: bool = False) -> str:
    speeds = [g["speed"]["audio_seconds"] for g in results["generators"] if g.get("speed")]
    headers = ["generator", "what", "source acc (held-out)", "family acc (held-out)",
               "Fréchet", f"time to generate {speeds[0]:g} s" if speeds else "speed"]
    rows = [["real audio", "evaluator on real clips",
             f"{fmt(results['real']['all']['source'])} ({fmt(results['real']['held_out']['source'])})",
             f"{fmt(results['real']['all']['family'])} ({fmt(results['real']['held_out']['family'])})",
             "0", ""],
            ["chance", "most frequent class", fmt(results["chance"]["source"]),
             fmt(results["chance"]["family"]), "", ""]]
    for g in results["generators"]:
        for what in ("ceiling", "generated"):
            r = g[what]
            speed = g.get("speed")
            rows.append([g["label"], "VAE reconstruction (ceiling)" if what == "ceiling" else
                         "generated from captions",
                         f"{fmt(r['all']['source'])} ({fmt(r['held_out']['source'])})",
                         f"{fmt(r['all']['family'])} ({fmt(r['held_out']['family'])})",
                         fmt(r["frechet"], 1),
                         f"{speed['median_s']:.2f} s" if speed and what == "generated" else ""])
    for g in results["generators"]:
        for what in ("real", "generated"):
            r = g["latent"][what]
            rows.append([g["label"], "latent probe: real latents (ceiling)" if what == "real"
                         else "latent probe: generated latents",
                         f"{fmt(r['all']['source'])} ({fmt(r['held_out']['source'])})",
                         f"{fmt(r['all']['family'])} ({fmt(r['held_out']['family'])})",
                         fmt(g["latent"]["frechet"], 1) if what == "generated" else "", ""])
    return (markdown_table if markdown else text_table)(headers, rows)
