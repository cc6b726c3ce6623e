"""``star data build``: a captioned, labelled audio corpus from Debian packages.

Sources (one module each): GM instruments rendered by fluidsynth (:mod:`.instruments`),
hydrogen drum kits arranged into patterns (:mod:`.drums`), lmms recorded samples
(:mod:`.samples`), espeak-ng speech (:mod:`.speech`) and sox textures (:mod:`.textures`);
Pedalboard effect variations of the dry items (:mod:`.effects`).

Determinism: the plan (which items, how many variations each) is made in the main process
from ``item_rng(seed, source, index, 2)``; an item's parameters from stream 0, its
variations and output levels from stream 1, re-rolls of a silent item from streams 100+k.
Work units are fixed batches of consecutive items (independent of ``--jobs``), results are
put back in plan order, so the manifest and every audio file depend only on the arguments.

Output: ``DIR/audio/<id>.flac`` (mono, 16-bit), ``DIR/manifest.jsonl`` (see
:mod:`.manifest`), ``DIR/corpus.json`` (totals, command, licences) and ``DIR/README.md``.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

from star_plugin.atomic import write_bytes_atomic

from . import common, drums, effects, instruments, recordings, samples, speech, textures
from .manifest import SPLITS, CorpusError, split_for_group, write_manifest

SOURCES = {m.NAME: m for m in (instruments, drums, samples, speech, textures, recordings)}
# recorded music and voices take the largest share: real recordings are what users bring
SHARES = {"instruments": 0.25, "drums": 0.10, "samples": 0.07, "speech": 0.10,
          "textures": 0.08, "recordings": 0.40}
VARIATION_PROBS = (0.45, 0.35, 0.20)  # 0, 1 or 2 effect variations per dry item
MAX_REROLLS = 3
LABEL_DEFAULTS = ("source", "family", "instrument", "register", "effect")


class CorpusWarning(UserWarning):
    """A source file or item that was skipped while building the corpus."""


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--hours", type=float, required=True,
                        help="total audio to build, variations included")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: all CPUs); results do not depend on it")
    parser.add_argument("--clip-seconds", type=float, default=4.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma list from {','.join(SOURCES)} (default: all)")
    parser.add_argument("--sf2", default=None, help="GM SoundFont (default: FluidR3_GM.sf2)")
    parser.add_argument("--hydrogen-dir", default=None,
                        help=f"hydrogen drum kits (default: {drums.DEFAULT_DIR})")
    parser.add_argument("--lmms-dir", default=None,
                        help=f"lmms samples (default: {samples.DEFAULT_DIR})")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_build(args) -> dict:
    paths = {"sf2": args.sf2, "hydrogen_dir": args.hydrogen_dir, "lmms_dir": args.lmms_dir}
    command = "star data build " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if len(sys.argv) > 3 and sys.argv[1:3] == ["data", "build"] else None
    return build_corpus(args.out, args.hours, args.seed, jobs=args.jobs,
                        sources=args.sources, clip_seconds=args.clip_seconds,
                        sample_rate=args.sample_rate, paths=paths, progress=not args.quiet,
                        command=command)


# ----------------------------------------------------------------------------- planning


def parse_sources(sources) -> list[str]:
    if sources is None:
        return list(SOURCES)
    names = [s.strip() for s in (sources.split(",") if isinstance(sources, str) else sources)]
    names = [s for s in names if s]
    unknown = [s for s in names if s not in SOURCES]
    if unknown or not names:
        raise CorpusError(f"unknown source(s) {', '.join(unknown) or '(none)'}; choose from "
                          f"{', '.join(SOURCES)}")
    return [s for s in SOURCES if s in names]  # canonical order


def make_plan(names, hours: float, seed: int, clip: float) -> dict[str, list[tuple[int, int]]]:
    """-> {source: [(item index, number of variations), ...]} filling each source's share."""
    total_share = sum(SHARES[n] for n in names)
    plan = {}
    for name in names:
        budget = max(1, int(round(SHARES[name] / total_share * hours * 3600 / clip)))
        items, count, i = [], 0, 0
        while count < budget:
            rng = common.item_rng(seed, name, i, 2)
            n_var = int(rng.choice(len(VARIATION_PROBS), p=VARIATION_PROBS))
            n_var = min(n_var, budget - count - 1)
            items.append((i, n_var))
            count += 1 + n_var
            i += 1
        plan[name] = items
    return plan


# ----------------------------------------------------------------------------- workers

_STATE: dict = {}


def _init_worker(state):
    _STATE.clear()
    _STATE.update(state)
    # BLAS/soxr threads would fight the worker processes for the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _render_specs(module, ctx, specs, sr, clip, warn):
    with tempfile.TemporaryDirectory(prefix="star-corpus-") as tmp:
        return module.render(ctx, specs, sr, clip, Path(tmp), warn=warn)


def _item_audio(module, ctx, name, index, seed, sr, clip, first_audio, first_spec, warn):
    """The dry audio of one item, re-rolled (new parameters) while it is silent or failed."""
    audio, spec = first_audio, first_spec
    for attempt in range(MAX_REROLLS + 1):
        if attempt:
            spec = module.plan(ctx, common.item_rng(seed, name, index, 100 + attempt), index,
                               seed, clip)
            try:
                audio = _render_specs(module, ctx, [spec], sr, clip, warn)[0]
            except Exception as exc:  # noqa: BLE001 - one bad item never stops the build
                warn(f"{name} item {index}: rendering failed ({exc})")
                audio = None
        if audio is not None and not common.is_silent(audio):
            return audio, spec
    warn(f"{name} item {index}: still silent after {MAX_REROLLS} re-rolls; left out")
    return None, spec


def _process_unit(unit):
    name, items = unit
    st = _STATE
    module, ctx = SOURCES[name], st["contexts"][name]
    seed, sr, clip, out = st["seed"], st["sample_rate"], st["clip"], Path(st["out"])
    messages: list[str] = []
    warn = messages.append
    specs = [module.plan(ctx, common.item_rng(seed, name, i, 0), i, seed, clip)
             for i, _ in items]
    try:
        audios = _render_specs(module, ctx, specs, sr, clip, warn)
    except Exception as exc:  # noqa: BLE001 - retry item by item below
        warn(f"{name} items {items[0][0]}-{items[-1][0]}: batch rendering failed ({exc}); "
             f"rendering them one by one")
        audios = []
        for spec in specs:
            try:
                audios.append(_render_specs(module, ctx, [spec], sr, clip, warn)[0])
            except Exception as exc1:  # noqa: BLE001
                warn(f"{name}: rendering failed ({exc1})")
                audios.append(None)
    from star_plugin.audio import write_audio
    entries = []
    for (index, n_var), spec, audio in zip(items, specs, audios):
        audio, spec = _item_audio(module, ctx, name, index, seed, sr, clip, audio, spec, warn)
        if audio is None:
            continue
        meta = module.describe(ctx, spec)
        item_id = f"{module.PREFIX}-{index:06d}"
        group = meta.pop("group", item_id)
        split = split_for_group(group, seed)
        rng = common.item_rng(seed, name, index, 1)
        base = common.peak_normalise(audio, -1.0)
        versions = [(item_id, base, None)]
        for v in effects.plan_variations(rng, n_var):
            try:
                wet = effects.apply(v, base, sr)
            except Exception as exc:  # noqa: BLE001
                warn(f"{item_id}: {v['effect']} variation failed ({exc}); left out")
                continue
            versions.append((f"{item_id}-{v['effect']}", wet, v))
        for vid, mono, v in versions:
            level = float(rng.uniform(-12.0, -1.0))
            if common.is_silent(mono):
                warn(f"{vid}: silent after the effect; left out")
                continue
            mono = common.peak_normalise(mono, level)
            rel = f"audio/{vid}.flac"
            write_audio(out / rel, mono[None, :], sr, subtype="PCM_16")
            labels = {k: None for k in LABEL_DEFAULTS}
            labels.update(meta["labels"])
            caption = meta["caption"]
            if v is None:
                labels["effect"] = "none"
            else:
                labels["effect"] = v["effect"]
                labels["effect_params"] = {k: (round(x, 4) if isinstance(x, float) else x)
                                           for k, x in v.items()
                                           if k not in ("effect", "words")}
                caption = f"{caption}, {v['words']}"
            entries.append({
                "id": vid, "path": rel, "split": split, "group": group, "caption": caption,
                "labels": labels, "duration": round(mono.size / sr, 6), "sample_rate": sr,
                "channels": 1, "peak_dbfs": round(level, 2), "origin": dict(meta["origin"]),
            })
    return name, items[0][0], entries, messages, sum(1 + n for _, n in items)


# ----------------------------------------------------------------------------- build


def _emit(msg: str, seen: set) -> None:
    if msg in seen:
        return
    seen.add(msg)
    warnings.warn(msg, CorpusWarning, stacklevel=3)


def build_corpus(out, hours: float, seed: int, *, jobs: int | None = None, sources=None,
                 clip_seconds: float = 4.0, sample_rate: int = 44100, paths: dict | None = None,
                 progress: bool = True, command: str | None = None) -> dict:
    """Build the corpus into ``out``; returns the summary written to ``corpus.json``.

    ``paths`` overrides tools and data folders: ``fluidsynth``, ``sf2``, ``hydrogen_dir``,
    ``lmms_dir``, ``espeak``, ``sox`` (env vars ``STAR_CORPUS_*`` do the same)."""
    t_start = time.perf_counter()
    if not (hours > 0):
        raise CorpusError(f"--hours must be positive, got {hours}")
    if not (clip_seconds > 0.2):
        raise CorpusError(f"--clip-seconds must be above 0.2, got {clip_seconds}")
    if not (8000 <= int(sample_rate) <= 192000):
        raise CorpusError(f"--sample-rate must be 8000..192000 Hz, got {sample_rate}")
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    names = parse_sources(sources)
    options = {k: v for k, v in (paths or {}).items() if v}
    out = Path(out)
    seen: set[str] = set()

    contexts = {}
    for name in names:  # checks tools and data first: a missing package fails fast
        ctx = SOURCES[name].prepare(options, sample_rate)
        for msg in ctx.pop("warnings", []):
            _emit(msg, seen)
        contexts[name] = ctx

    plan = make_plan(names, hours, seed, clip_seconds)
    units = []
    for name in names:
        batch = SOURCES[name].BATCH
        items = plan[name]
        units += [(name, items[k:k + batch]) for k in range(0, len(items), batch)]
    total = sum(1 + n for items in plan.values() for _, n in items)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    state = {"contexts": contexts, "seed": int(seed), "sample_rate": int(sample_rate),
             "clip": float(clip_seconds), "out": str(out)}
    if progress:
        print(f"[corpus] building {total} clips ({total * clip_seconds / 3600:.2f} h) from "
              f"{', '.join(names)} with {jobs} job(s) into {out}", file=sys.stderr, flush=True)

    results = {}
    done, last = 0, 0.0

    def collect(result):
        nonlocal done, last
        name, first, entries, messages, n = result
        results[(name, first)] = entries
        for msg in messages:
            _emit(msg, seen)
        done += n
        now = time.perf_counter()
        if progress and (now - last > 2.0 or done == total):
            last = now
            print(f"[corpus] {done}/{total} clips ({now - t_start:.0f} s)", file=sys.stderr,
                  flush=True)

    if jobs == 1 or len(units) == 1:
        _init_worker(state)
        for unit in units:
            collect(_process_unit(unit))
    else:
        # spawn, not fork: a forked child inherits the parent's thread state (torch's OpenMP
        # pool, tqdm's monitor) and can hang on a lock held by a thread it does not have
        ctx_mp = mp.get_context("spawn")
        with ctx_mp.Pool(min(jobs, len(units)), initializer=_init_worker,
                         initargs=(state,)) as pool:
            for result in pool.imap_unordered(_process_unit, units):
                collect(result)

    entries = []
    for name, items in ((u[0], u[1]) for u in units):
        entries += results[(name, items[0][0])]
    write_manifest(out, entries)
    _remove_stale(out, {e["path"] for e in entries})
    elapsed = time.perf_counter() - t_start
    summary = _summary(entries, names, hours, seed, clip_seconds, sample_rate, jobs, elapsed,
                       command, contexts, skipped=sorted(seen))
    write_bytes_atomic(out / "corpus.json", (json.dumps(summary, indent=2) + "\n").encode())
    write_bytes_atomic(out / "README.md", _readme(summary).encode())
    if progress:
        print(f"[corpus] wrote {len(entries)} clips, {summary['total_hours']:.3f} h, to {out} "
              f"in {elapsed:.1f} s", file=sys.stderr, flush=True)
    return summary


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete corpus audio left by an earlier build that this manifest does not list."""
    for path in (out / "audio").glob("*.flac"):
        if f"audio/{path.name}" not in keep:
            path.unlink(missing_ok=True)


def _summary(entries, names, hours, seed, clip, sr, jobs, elapsed, command, contexts,
             skipped) -> dict:
    by_source: dict = {}
    by_split = {s: {"clips": 0, "seconds": 0.0, "groups": 0} for s in SPLITS}
    groups: dict[str, set] = {s: set() for s in SPLITS}
    licences: dict[str, set] = {}
    for e in entries:
        src = e["labels"]["source"]
        d = by_source.setdefault(src, {"clips": 0, "dry": 0, "variations": 0, "seconds": 0.0,
                                       **{s: 0 for s in SPLITS}})
        d["clips"] += 1
        d["seconds"] += e["duration"]
        d["dry" if e["labels"]["effect"] == "none" else "variations"] += 1
        d[e["split"]] += 1
        by_split[e["split"]]["clips"] += 1
        by_split[e["split"]]["seconds"] += e["duration"]
        groups[e["split"]].add(e["group"])
        licences.setdefault(e["origin"]["package"], set()).add(e["origin"]["licence"])
    for s in SPLITS:
        by_split[s]["groups"] = len(groups[s])
        by_split[s]["seconds"] = round(by_split[s]["seconds"], 3)
    for d in by_source.values():
        d["seconds"] = round(d["seconds"], 3)
    if command is None:
        command = (f"star data build --out DIR --hours {hours:g} --seed {seed} "
                   f"--clip-seconds {clip:g} --sample-rate {sr} --sources {','.join(names)}")
    return {
        "command": command, "hours_requested": hours, "seed": seed, "sources": names,
        "clip_seconds": clip, "sample_rate": sr, "jobs": jobs,
        "total_clips": len(entries),
        "total_seconds": round(sum(e["duration"] for e in entries), 3),
        "total_hours": round(sum(e["duration"] for e in entries) / 3600, 4),
        "by_label_source": by_source, "by_split": by_split,
        "licences": {k: sorted(v) for k, v in sorted(licences.items())},
        "skipped": skipped, "build_seconds": round(elapsed, 1),
    }


def _readme(s: dict) -> str:
    lines = ["# STAR corpus", "", f"Built with: `{s['command']}`", "",
             f"{s['total_clips']} clips, {s['total_hours']:.3f} h, {s['clip_seconds']:g} s "
             f"each, mono 16-bit FLAC at {s['sample_rate']} Hz; built in "
             f"{s['build_seconds']:.0f} s with {s['jobs']} job(s).", "",
             "| source | clips | dry | variations | hours | " + " | ".join(SPLITS) + " |",
             "|---|---|---|---|---|" + "---|" * len(SPLITS)]
    for src, d in sorted(s["by_label_source"].items()):
        lines.append(f"| {src} | {d['clips']} | {d['dry']} | {d['variations']} | "
                     f"{d['seconds'] / 3600:.3f} | " + " | ".join(str(d[x]) for x in SPLITS)
                     + " |")
    lines += ["", "| split | clips | hours | source items |", "|---|---|---|---|"]
    for split, d in s["by_split"].items():
        lines.append(f"| {split} | {d['clips']} | {d['seconds'] / 3600:.3f} | {d['groups']} |")
    lines += ["", "Licences (Debian package: licence as recorded per entry in "
              "`manifest.jsonl`):", ""]
    lines += [f"- {pkg}: {', '.join(lic)}" for pkg, lic in s["licences"].items()]
    if s["skipped"]:
        lines += ["", f"Skipped while building ({len(s['skipped'])}):", ""]
        lines += [f"- {m}" for m in s["skipped"][:50]]
    lines += ["", "See docs/CORPUS.md in the star-plugin repository for the caption scheme "
              "and labels.", ""]
    return "\n".join(lines)
