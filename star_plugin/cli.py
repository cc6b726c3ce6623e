"""The ``star`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import StarError
from .guard import MAX_BUFFER_SIZE


def _int_in(low: int, high: int):
    """An argparse type: an integer in low..high (argparse names the option on failure)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got "
                                             f"{text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer in {low}..{high}, got {value}")
        return value
    return parse


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


MAX_RATE = 384000
_rate = _int_in(1, MAX_RATE)
_seed = _int_in(0, 2 ** 63 - 1)


def _load_model(name):
    from .model_io import load_vae
    return load_vae(name)


def _model_facts(model, name) -> dict:
    cfg = model.config
    return {
        "model": str(name), "name": cfg.name, "family": cfg.family, "backbone": cfg.backbone,
        "causal": cfg.causal, "sample_rate": cfg.sample_rate, "audio_channels": cfg.audio_channels,
        "hop": model.hop, "latent_rate_hz": round(model.latent_rate, 3),
        "latent_channels": cfg.latent_channels, "structure_channels": cfg.structure_channels,
        "texture_channels": cfg.latent_channels - cfg.structure_channels,
        "latency_samples": model.latency_samples if cfg.causal else None,
        "latency_ms": round(1000 * model.latency_samples / cfg.sample_rate, 2) if cfg.causal else None,
        "parameters": model.num_parameters(),
        "latency_ms_at_host_rate": _host_latencies(model) if cfg.causal else None,
    }


HOST_RATES = (22050, 44100, 48000, 96000)


def _host_latencies(model) -> dict:
    """The engine's latency at common host rates, in ms: with resampling it is more than
    the model's own (soxr's filters), so a host at 48 kHz should not read the 44.1 figure."""
    from .engine import StreamingEngine

    return {str(rate): round(1000 * StreamingEngine(model, rate, 1, backend="torch")
                             .latency_samples / rate, 1) for rate in HOST_RATES}


def cmd_info(args):
    facts = _model_facts(_load_model(args.model), args.model)
    if args.json:
        print(json.dumps(facts, indent=2))
        return
    print(f"model            {facts['model']} ({facts['name']})")
    print(f"architecture     {facts['family']} + {facts['backbone']}, "
          f"{'causal (streams)' if facts['causal'] else 'bidirectional (offline only)'}")
    print(f"audio            {facts['sample_rate']} Hz, {facts['audio_channels']} channel(s)")
    print(f"hop              {facts['hop']} samples -> latent rate {facts['latent_rate_hz']} Hz")
    print(f"latent           {facts['latent_channels']} channels: structure [0, "
          f"{facts['structure_channels']}), texture [{facts['structure_channels']}, "
          f"{facts['latent_channels']})")
    if facts["causal"]:
        print(f"latency          {facts['latency_samples']} samples ({facts['latency_ms']} ms) "
              "at the model's rate")
        at = ", ".join(f"{int(r) / 1000:g} kHz {ms} ms"
                       for r, ms in facts["latency_ms_at_host_rate"].items())
        print(f"engine latency   {at} (with resampling)")
    else:
        print("latency          n/a (does not stream)")
    print(f"parameters       {facts['parameters']:,}")


def _read_for_model(model, path):
    """Read an audio file and convert it to the model's rate and channel layout."""
    from .audio import read_audio
    from .convert import to_model_batch

    audio, rate = read_audio(path)
    if audio.shape[1] == 0:
        raise StarError(f"'{path}' has no samples (a valid but empty file); nothing to encode")
    audio = _guarded(audio, path)
    batch, layout = to_model_batch(audio, rate, model.sample_rate, model.config.audio_channels)
    return audio, batch, layout


def _guarded(audio, path):
    """A file's samples past the streaming guard (NaN/Inf -> 0, |x| clamped to 1e4, a
    warning naming the file), so a file of 1e30 values cannot turn the output into NaN."""
    import numpy as np

    from .guard import SAMPLE_LIMIT, clean_block

    nonfinite = int(np.count_nonzero(~np.isfinite(audio)))
    audio, fixed = clean_block(audio)
    if nonfinite:
        print(f"warning: '{path}': replaced {nonfinite} NaN/Inf samples with 0", file=sys.stderr)
    if fixed - nonfinite:
        print(f"warning: '{path}': clamped {fixed - nonfinite} samples beyond "
              f"+-{SAMPLE_LIMIT:g} (the input is far out of range)", file=sys.stderr)
    return audio


def _refuse_input_as_output(args, *inputs):
    """-o must not name any input file (also through a symlink or hard link)."""
    from .atomic import refuse_overwriting_input

    refuse_overwriting_input(args.output, [args.input, *inputs])


def _check_audio_output(path, subtype=None) -> None:
    """Refuse an audio extension (or ``--subtype``) we cannot write before any rendering
    (``out.m4a`` used to fail only after the whole render)."""
    import soundfile as sf

    from .audio import WRITE_FORMATS

    ext = Path(path).suffix.lower()
    if ext not in WRITE_FORMATS:
        what = ext or "files without an extension"
        raise StarError(f"-o/--output '{path}': cannot write {what}; use one of "
                        f"{', '.join(WRITE_FORMATS)}")
    fmt = WRITE_FORMATS[ext][0]
    if subtype is not None and not sf.check_format(fmt, subtype.upper()):
        raise StarError(f"--subtype {subtype} is not available for {ext} files; choose one of "
                        f"{', '.join(sf.available_subtypes(fmt))}")


def _add_subtype_argument(p) -> None:
    p.add_argument("--subtype", type=str.upper, default=None,
                   help="sample format of the written file, e.g. PCM_16, PCM_24, FLOAT "
                   "(default: FLOAT for .wav, PCM_24 for .flac)")


def _finite_or_error(audio, what: str):
    """Refuse to write NaN/Inf output (``morph``, ``stream``, ``recon``, ``chain`` alike)."""
    import numpy as np

    bad = int(np.count_nonzero(~np.isfinite(audio)))
    if bad:
        raise StarError(f"{what}: the model produced {bad} NaN/Inf samples; nothing written")
    return audio


def cmd_encode(args):
    from .latent_file import save_latent

    import torch

    _refuse_input_as_output(args)
    model = _load_model(args.model)
    _, batch, layout = _read_for_model(model, args.input)
    with torch.no_grad():
        latent = model.encode(batch)
    out = save_latent(args.output, latent, layout, str(args.model))
    print(f"{args.input} -> {out}: {latent.mean.shape[0]} x {latent.channels} channels x "
          f"{latent.frames} frames ({latent.frame_rate:.2f} Hz)")


def cmd_decode(args):
    import torch

    from .audio import write_audio
    from .convert import from_model_batch
    from .latent_file import load_latent

    _refuse_input_as_output(args)
    _check_audio_output(args.output, args.subtype)
    model = _load_model(args.model)
    latent, layout, meta = load_latent(args.input)
    if latent.channels != model.config.latent_channels or latent.hop != model.hop:
        raise StarError(f"'{args.input}' was encoded by model '{meta.get('model')}' "
                        f"({latent.channels} channels, hop {latent.hop}); model '{args.model}' "
                        f"expects {model.config.latent_channels} channels, hop {model.hop}")
    with torch.no_grad():
        audio = from_model_batch(model.decode(latent), layout)
    rate = args.sample_rate or layout.sample_rate
    if rate != layout.sample_rate:
        from .audio import resample
        audio = resample(audio, layout.sample_rate, rate)
    write_audio(args.output, audio, rate, subtype=args.subtype)
    print(f"{args.input} -> {args.output}: {audio.shape[0]} channel(s), "
          f"{audio.shape[1] / rate:.2f} s at {rate} Hz")


def cmd_recon(args):
    import torch

    from .atomic import refuse_overwriting_input
    from .audio import write_audio
    from .convert import from_model_batch
    from .metrics import si_sdr

    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise StarError(f"-o/--output '{out_dir}' is a file; recon writes into a directory")
    _check_audio_output("x.wav", args.subtype)
    model = _load_model(args.model)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    bar = _progress(len(args.inputs), "recon", "file")
    for path in args.inputs:
        bar.update(1)
        try:
            target = out_dir / (Path(path).stem + ".recon.wav")
            refuse_overwriting_input(target, [path], "recon output")
            audio, batch, layout = _read_for_model(model, path)
            rate = layout.sample_rate
            with torch.no_grad():
                recon = from_model_batch(model.reconstruct(batch), layout)
            write_audio(target, _finite_or_error(recon, f"'{path}'"), rate, subtype=args.subtype)
            score = si_sdr(recon, audio) if audio.size else float("nan")
            print(f"{path} -> {target}  ({audio.shape[0]} ch, {rate} Hz, "
                  f"{audio.shape[1] / rate:.2f} s)  SI-SDR {score:.2f} dB")
        except (StarError, ValueError, RuntimeError, OSError) as exc:
            # one bad file must not stop the batch: report it, go on, fail at the end
            failures += 1
            message = _one_line(exc)
            named = str(path) in message
            print(f"error: {message if named else f'{path!r}: ' + message}", file=sys.stderr)
    bar.close()
    if failures:
        print(f"{failures} of {len(args.inputs)} file(s) failed", file=sys.stderr)
        return 1


def _progress(total: int, desc: str, unit: str = "it"):
    """A tqdm bar on stderr; off when stderr is not a terminal (pipes, logs, tests)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit in ("sample", "frame"), leave=False,
                disable=None, file=sys.stderr, dynamic_ncols=True)


def _one_line(exc: BaseException) -> str:
    """An exception as one line (OSError: its reason and file)."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"'{exc.filename}': {exc.strerror}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]


def _int_list(text: str, option: str) -> list:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise StarError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise StarError(f"{option} needs positive integers, got {text!r}")
    return values


def _onnx_installed() -> bool:
    from .engine import onnx_available
    return onnx_available()


def cmd_export(args):
    from .export.exporter import export_model

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise StarError(f"-o/--output '{out}' is an existing file; export writes a directory")
    model = _load_model(args.model)
    graphs = 4 if model.config.causal and not args.offline_only else 2
    with _progress(graphs, "export", "graph") as bar:
        manifest = export_model(model, args.output, scan_body=args.scan_body,
                                stream=not args.offline_only,
                                progress=lambda kind: (bar.set_postfix_str(kind), bar.update()))
    scan = manifest["scan_op"]
    print(f"exported '{args.model}' to {args.output}/ (ONNX opset {manifest['opset']}, "
          f"{scan['domain']}::{scan['name']} bodies: offline '{scan['offline_body']}', "
          f"streaming '{scan['stream_body']}')")
    if scan["measured_ms"]:
        print(f"  scan bodies measured here (ms at 1 / 256 steps): {scan['measured_ms']}")
    for kind, graph in manifest["graphs"].items():
        states = graph.get("states")
        extra = f", {len(states)} states" if states else ""
        print(f"  {graph['file']:<22} {graph['bytes'] / 1e6:6.1f} MB{extra}")
    if not model.config.causal:
        print("  (bidirectional model: offline graphs only, it cannot stream)")


def _morph_params(args):
    """A preset (if any) with the command line's overrides on top."""
    from .morph import MorphParams
    from .morph_presets import load_preset

    params = load_preset(args.preset).params if args.preset else MorphParams()
    changes = {k: v for k, v in (("structure_amount", args.structure_amount),
                                 ("texture_amount", args.texture_amount),
                                 ("temperature", args.temperature), ("mode", args.mode),
                                 ("mix", args.mix), ("output_gain_db", args.output_gain_db),
                                 ("seed", args.seed)) if v is not None}
    return MorphParams.from_dict({**params.to_dict(), **changes})


def _texture_latent(model, args):
    """The texture source of a morph: an audio file's latent, a generated one, or none."""
    if args.texture_file and args.texture_prompt:
        raise StarError("give --texture-source or --texture-prompt, not both")
    if args.texture_prompt is not None and not args.texture_prompt.strip():
        raise StarError("--texture-prompt is empty; describe the texture, e.g. "
                        "--texture-prompt \"a band of pink noise\"")
    if args.texture_prompt:
        from .gen.texture import texture_from_prompt

        return texture_from_prompt(args.texture_prompt, args.model, args.generator,
                                   seconds=args.texture_seconds, seed=args.seed or 0)
    if args.texture_file:
        from .morph import texture_from_file

        return texture_from_file(model, args.texture_file)
    return None


def _add_morph_arguments(p):
    p.add_argument("--texture-source", "--texture", dest="texture_file", metavar="FILE",
                   help="texture source: an audio file (--texture is short for it)")
    p.add_argument("--texture-prompt", metavar="PROMPT",
                   help="generate the texture source with STAR-Gen from this prompt")
    p.add_argument("--generator", default="default",
                   help="generator for --texture-prompt (default: the bundled one)")
    p.add_argument("--texture-seconds", type=_positive_float,
                   help="length of the generated texture source (default 4, or the "
                   "generator's longest)")
    p.add_argument("--preset", help="bundled preset name or preset file (star presets list)")
    p.add_argument("--structure-amount", "--structure", dest="structure_amount", type=float,
                   metavar="A", help="0..1: how much of the source's structure "
                   "(MorphParams.structure_amount; default: the preset's, else 0)")
    p.add_argument("--texture-amount", "--amount", dest="texture_amount", type=float,
                   metavar="A", help="0..1: how much of the source's texture "
                   "(MorphParams.texture_amount; default: the preset's, else 1)")
    p.add_argument("--temperature", type=float, help="0..4: resample the texture channels")
    p.add_argument("--mix", type=float, help="0..1 dry/wet: 0 the input, 1 STAR only "
                   "(default: the preset's, else 1)")
    p.add_argument("--output-gain-db", type=float, help="-60..24 dB after the mix "
                   "(default: the preset's, else 0)")
    p.add_argument("--mode", choices=["loop", "hold", "mean", "match"],
                   help="how the source's frames follow the input")
    p.add_argument("--seed", type=_seed, help="seed for the texture noise and a generated "
                   "texture (0..2**63-1; default: the preset's, else 0)")
    p.add_argument("--model", default="default", help="bundled model name or model directory")


def _add_chain_arguments(p):
    p.add_argument("--chain", help="stages separated by '|', e.g. "
                   "\"HighpassFilter(cutoff_frequency_hz=80) | star(preset='texture-blend') | "
                   "Reverb(room_size=0.3)\"")
    p.add_argument("--chain-file", help="a chain saved as JSON (see --save-chain)")
    p.add_argument("--model", default="default", help="model for the star(...) stages")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: ONNX Runtime when the onnx extra is installed, else PyTorch")
    p.add_argument("--buffer-size", "--block", dest="buffer_size",
                   type=_int_in(1, MAX_BUFFER_SIZE),
                   default=512, help=f"block size in samples (1..{MAX_BUFFER_SIZE})")


def cmd_morph(args):
    from .audio import read_audio, write_audio
    from .engine import render_offline

    if not (args.texture_file or args.texture_prompt is not None):
        raise StarError("morph needs a texture source: --texture-source REF.wav or "
                        "--texture-prompt "
                        "\"PROMPT\" (without one it would only reconstruct the input; use "
                        "`star recon` for that)")
    _refuse_input_as_output(args, args.texture_file)
    _check_audio_output(args.output, args.subtype)
    params = _morph_params(args)
    model = _load_model(args.model)
    audio, rate = read_audio(args.input)
    if audio.shape[1] == 0:
        raise StarError(f"'{args.input}' has no samples (a valid but empty file)")
    audio = _guarded(audio, args.input)
    texture = _texture_latent(model, args)
    out = render_offline(model, audio, rate, params, texture_source=texture)
    write_audio(args.output, _finite_or_error(out, f"'{args.input}'"), rate,
                subtype=args.subtype)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch, {rate} Hz, "
          f"{audio.shape[1] / rate:.2f} s; structure amount {params.structure_amount}, "
          f"texture amount {params.texture_amount}, temperature {params.temperature}, "
          f"mode {params.mode})")


def cmd_stream(args):
    import time

    import numpy as np

    from .audio import read_audio, resample, write_audio
    from .engine import MAX_BLOCK, StreamingEngine
    from .timing import block_time_stats

    if not 1 <= args.block <= MAX_BLOCK:
        raise StarError(f"--block must be in 1..{MAX_BLOCK}, got {args.block}")
    _refuse_input_as_output(args, args.texture_file)
    _check_audio_output(args.output, args.subtype)
    audio, rate = read_audio(args.input)
    if audio.shape[1] == 0:
        raise StarError(f"'{args.input}' has no samples (a valid but empty file); nothing to "
                        "stream")
    audio = _guarded(audio, args.input)
    host_rate = args.sample_rate or rate
    if host_rate != rate:
        audio = resample(audio, rate, host_rate)
    model = _load_model(args.model)
    texture = _texture_latent(model, args)
    engine = StreamingEngine(model, host_rate, audio.shape[0], backend=args.backend,
                             params=_morph_params(args), texture_source=texture)
    lat = engine.latency_samples
    padded = np.concatenate([audio, np.zeros((audio.shape[0], lat), np.float32)], axis=1)
    outs, times = [], []
    with _progress(padded.shape[1], "stream", "sample") as bar:
        for start in range(0, padded.shape[1], args.block):
            block = padded[:, start:start + args.block]
            t0 = time.perf_counter()
            outs.append(engine.process(block))
            times.append(time.perf_counter() - t0)
            bar.update(block.shape[1])
    out = np.concatenate(outs, axis=1)[:, lat:lat + audio.shape[1]]
    write_audio(args.output, _finite_or_error(out, f"'{args.input}'"), host_rate,
                subtype=args.subtype)
    block_ms = 1000 * args.block / host_rate
    stats = block_time_stats(times, args.block / host_rate)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch at {host_rate} Hz, "
          f"{engine.backend} backend, blocks of {args.block} = {block_ms:.2f} ms)")
    print(f"latency {lat} samples ({1000 * lat / host_rate:.1f} ms), removed from the file")
    print(f"per block: median {stats['median_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms, "
          f"max {stats['max_ms']:.3f} ms; real-time factor "
          f"{sum(times) / (audio.shape[1] / host_rate):.3f} (compute / audio time)")
    if stats["p99_ms"] > block_ms:
        print(f"warning: p99 {stats['p99_ms']:.2f} ms exceeds the block's duration "
              f"{block_ms:.2f} ms: a host would drop out at this block size; use a larger "
              "--block", file=sys.stderr)


def _chain_from_args(args):
    from .chain import StarChain

    if args.chain_file:
        from .model_io import read_json
        from .errors import ConfigError

        if not Path(args.chain_file).is_file():
            raise StarError(f"--chain-file '{args.chain_file}' does not exist")
        return StarChain.from_dict(read_json(Path(args.chain_file), ConfigError),
                                   model=args.model, backend=args.backend)
    if not args.chain:
        raise StarError("give the effects with --chain 'Effect(param=value) | star(...)' or "
                        "--chain-file FILE.json")
    return StarChain.from_spec(args.chain, model=args.model, backend=args.backend)


def cmd_chain(args):
    import time

    from .chain_file import process_file

    _refuse_input_as_output(args)
    chain = _chain_from_args(args)
    if args.save_chain:
        from .atomic import write_bytes_atomic

        write_bytes_atomic(args.save_chain, (json.dumps(chain.to_dict(), indent=2) + "\n").encode())
    t0 = time.perf_counter()
    with _progress(0, "chain", "frame") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)

        facts = process_file(chain, args.input, args.output, buffer_size=args.buffer_size,
                             progress=progress)
    took = time.perf_counter() - t0
    print(f"{args.input} -> {args.output}  ({facts['channels']} ch, {facts['sample_rate']:g} Hz, "
          f"{facts['seconds']:.2f} s in {took:.2f} s, {len(chain)} stages)")
    from .chain import describe_stage

    for i, stage in enumerate(chain.stages, 1):
        print(f"  {i}. {describe_stage(stage)}")


def cmd_live(args):
    from .live import audio_devices, pick_devices, run_live

    if args.list_devices:
        inputs, outputs = audio_devices()
        print("inputs: " + (", ".join(inputs) or "(none)"))
        print("outputs: " + (", ".join(outputs) or "(none)"))
        return
    pick_devices(args.input_device, args.output_device)  # fail before loading any model
    chain = _chain_from_args(args)
    facts = run_live(chain, args.input_device, args.output_device, args.sample_rate,
                     args.buffer_size, args.channels, args.seconds)
    print(f"live: {facts['input']} -> {facts['output']}, {facts['blocks']} blocks in "
          f"{facts['seconds']:.1f} s, {facts['dropped_input']} input frames dropped")


def cmd_presets_list(args):
    from .morph_presets import list_presets

    for preset in list_presets():
        p = preset.params
        print(f"{preset.name:<18} structure_amount {p.structure_amount:.1f}  texture_amount "
              f"{p.texture_amount:.1f}  temp {p.temperature:.1f}  {p.mode:<5}  mix "
              f"{p.mix:.1f}  {p.output_gain_db:+.1f} dB  {preset.description}")


def cmd_bench_speed(args):
    from .bench.model_speed import bench_models, format_model_results
    from .bench.scan_speed import bench_scan, format_scan_results

    threads = _int_list(args.threads, "--threads")
    results = {"scan": [], "models": None, "onnx": None}
    for n in threads:
        result = bench_scan(threads=n, length=args.length, repeats=args.repeats)
        results["scan"].append(result)
        print(f"selective scan, forward+backward, {n} thread(s):")
        print(format_scan_results(result))
        print()
    if not args.skip_models:
        results["models"] = bench_models(threads=threads, seconds=args.seconds)
        print(format_model_results(results["models"]))
        print()
    if not args.skip_onnx and not _onnx_installed():
        print("ONNX section skipped: it needs onnx and onnxruntime "
              "(pip install 'star-plugin[onnx]')")
    elif not args.skip_onnx:
        from .bench.onnx_speed import format_onnx_speed, run_onnx_speed

        results["onnx"] = run_onnx_speed(args.model, _int_list(args.blocks, "--blocks"),
                                         args.stream_seconds,
                                         _int_list(args.scan_lengths, "--scan-lengths"))
        print(format_onnx_speed(results["onnx"]))
    if args.json:
        from .atomic import write_bytes_atomic
        write_bytes_atomic(args.json, (json.dumps(results, indent=2) + "\n").encode())
        print(f"\nresults written to {args.json}")


def cmd_bench_engine(args):
    from .bench.engine_speed import run_from_args

    run_from_args(args, _int_list)


def cmd_bench_recon(args):
    from .bench.recon import run_bench_recon
    run_bench_recon(args)


def cmd_bench_latent(args):
    from .bench.latent import run_bench_latent
    run_bench_latent(args)


def cmd_bench_studio(args):
    from .bench.studio import run_from_args
    run_from_args(args)


def cmd_bench_gen(args):
    from .bench.gen_bench import run_bench_gen
    run_bench_gen(args)


def cmd_data_build(args):
    from .training.corpus.build import run_build
    run_build(args)


def cmd_train_vae(args):
    from .training.trainer import run_train_vae
    run_train_vae(args)


def cmd_train_gen(args):
    from .training.gen_trainer import run_train_gen
    run_train_gen(args)


def cmd_generate(args):
    import time

    from .audio import write_audio
    from .gen.store import load_generator

    _check_audio_output(args.output, args.subtype)
    gen = load_generator(args.generator)
    t0 = time.perf_counter()
    with _progress(args.steps, "generate", "step") as bar:
        audio = gen.generate(args.prompt, args.seconds, steps=args.steps, cfg=args.cfg,
                             seed=args.seed, variations=args.variations, solver=args.solver,
                             progress=lambda done, total: bar.update(done - bar.n))
    took = time.perf_counter() - t0
    out = Path(args.output)
    for i, clip in enumerate(audio):
        path = out if len(audio) == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
        write_audio(path, clip, gen.sample_rate, subtype=args.subtype)
        print(f"{path}  ({args.seconds:g} s, seed {args.seed}, variation {i + 1})")
    print(f"generated {len(audio)} x {args.seconds:g} s in {took:.2f} s "
          f"({args.steps} {args.solver} steps, cfg {args.cfg})")


def cmd_demo(args):
    from .demo import run_demo
    run_demo(args.output, model_name=args.model,
             progress=lambda total: _progress(total, "demo", "step"))


def cmd_studio(args):
    from .gui.app import run
    return run(args)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every default (unless the help text already explains it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """Every (sub-)parser shows defaults in its help (sub-parsers inherit the class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from .version import __version__

    return f"star {__version__}"


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The ``star`` parser. With ``argv``, only the selected command's heavy argument
    modules are imported (fast ``--help``); without, everything is built."""
    parser = _Parser(prog="star", description="STAR-VAE audio toolkit")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a model")
    p.add_argument("model", nargs="?", default="default", help="bundled name or model directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="audio file -> latent file")
    p.add_argument("input", help="audio file (any format, rate and channel count)")
    p.add_argument("-o", "--output", required=True, help="latent file to write (.safetensors)")
    p.add_argument("--model", default="default", help="bundled model name or model directory")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="latent file -> audio file")
    p.add_argument("input", help="latent file written by `star encode`")
    p.add_argument("-o", "--output", required=True, help="audio file to write (.wav/.flac)")
    p.add_argument("--model", default="default", help="bundled model name or model directory")
    p.add_argument("--sample-rate", type=_rate, default=None,
                   help="output rate in Hz (default: the original rate)")
    _add_subtype_argument(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("recon", help="encode and decode audio files")
    p.add_argument("inputs", nargs="+", help="audio files (bad ones are reported and skipped)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--model", default="default", help="bundled model name or model directory")
    _add_subtype_argument(p)
    p.set_defaults(func=cmd_recon)

    p = sub.add_parser("export", help="export a model to ONNX (graphs + manifest.json)")
    p.add_argument("model", nargs="?", default="default", help="bundled name or model directory")
    p.add_argument("-o", "--output", required=True, help="directory to write")
    p.add_argument("--scan-body", default="auto", choices=["auto", "scan", "chunked"],
                   help="SelectiveScan function body (auto: the faster one, measured here)")
    p.add_argument("--offline-only", action="store_true", help="skip the streaming graphs")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("morph", help="timbre transfer offline: CONTENT's structure, a texture")
    p.add_argument("input", help="content audio file")
    p.add_argument("-o", "--output", required=True, help="audio file to write")
    _add_morph_arguments(p)
    _add_subtype_argument(p)
    p.set_defaults(func=cmd_morph)

    p = sub.add_parser("stream", help="run a file through the real-time engine block by block")
    p.add_argument("input", help="audio file")
    p.add_argument("-o", "--output", required=True, help="audio file to write (latency removed)")
    p.add_argument("--block", "--buffer-size", dest="block", type=int, default=512,
                   help="host block size in samples (1..8192)")
    p.add_argument("--sample-rate", type=_rate, default=None,
                   help="host rate in Hz (default: the file's)")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: ONNX Runtime when the onnx extra is installed, else PyTorch")
    _add_morph_arguments(p)
    _add_subtype_argument(p)
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("chain", help="run a file through an effect chain (Pedalboard + STAR)")
    p.add_argument("input", help="audio file (any length: processed chunk by chunk)")
    p.add_argument("-o", "--output", required=True, help="audio file to write (atomically)")
    _add_chain_arguments(p)
    p.add_argument("--save-chain", help="also write the chain as JSON to this file")
    p.set_defaults(func=cmd_chain)

    p = sub.add_parser("live", help="live input -> effect chain -> output (audio devices)")
    _add_chain_arguments(p)
    p.add_argument("--input-device", help="input device name (see --list-devices; default: "
                   "the system's)")
    p.add_argument("--output-device", help="output device name (default: the system's)")
    p.add_argument("--sample-rate", type=_rate, default=48000, help="device rate in Hz")
    p.add_argument("--channels", type=_int_in(1, 64), default=1,
                   help="input and output channels")
    p.add_argument("--seconds", type=_positive_float, default=None,
                   help="stop after this long (default: until Ctrl+C)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("presets", help="morph presets")
    presets = p.add_subparsers(dest="presets", required=True)
    b = presets.add_parser("list", help="list the bundled morph presets")
    b.set_defaults(func=cmd_presets_list)

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True)
    b = bench.add_parser("speed", help="scan backends and model real-time factors")
    b.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    b.add_argument("--length", type=int, default=1024, help="scan length (steps)")
    b.add_argument("--repeats", type=int, default=5, help="timed repetitions per case")
    b.add_argument("--seconds", type=float, default=10.0, help="audio length for model timing")
    b.add_argument("--skip-models", action="store_true", help="skip the model timing")
    b.add_argument("--skip-onnx", action="store_true",
                   help="skip the ONNX section (scan bodies, torch vs ONNX Runtime streaming)")
    b.add_argument("--model", default="default", help="model for the ONNX streaming section")
    b.add_argument("--blocks", default="64,256,1024,4096", help="streaming block sizes")
    b.add_argument("--stream-seconds", type=float, default=10.0,
                   help="audio streamed per block size")
    b.add_argument("--scan-lengths", default="1,16,64,256,1024,4096",
                   help="sequence lengths for the SelectiveScan body comparison")
    b.add_argument("--json", help="also write results to this JSON file")
    b.set_defaults(func=cmd_bench_speed)
    # Sub-commands whose arguments live in heavy modules (torch, the corpus builder) are only
    # filled in when the command line selects them, so `star --help` stays fast.
    _deferred(bench, "engine", "real-time engine per-block time, misses, memory", argv,
              ("bench", "engine"), ".bench.engine_speed", cmd_bench_engine)
    _deferred(bench, "recon", "reconstruction quality on a corpus split or audio folder", argv,
              ("bench", "recon"), ".bench.recon", cmd_bench_recon)
    _deferred(bench, "latent", "latent regularity: KL profile, probes, texture swap", argv,
              ("bench", "latent"), ".bench.latent", cmd_bench_latent)
    _deferred(bench, "gen", "STAR-Gen: prompt adherence, Fréchet distance, speed "
              "(self-trained evaluator)", argv, ("bench", "gen"), ".bench.gen_bench",
              cmd_bench_gen)
    _deferred(bench, "studio", "STAR Studio's responsiveness while the model works "
              "(GUI-thread timer gaps; needs the gui extra)", argv, ("bench", "studio"),
              ".bench.studio", cmd_bench_studio)

    p = sub.add_parser("data", help="datasets")
    data = p.add_subparsers(dest="data", required=True)
    _deferred(data, "build", "build the captioned corpus from Debian packages", argv,
              ("data", "build"), ".training.corpus.build", cmd_data_build)

    p = sub.add_parser("train", help="training")
    train = p.add_subparsers(dest="train", required=True)
    b = train.add_parser("vae", help="train a STAR-VAE from a config file")
    b.add_argument("--config", required=True, help="training config (JSON or TOML)")
    b.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    b.add_argument("--out", default=None, help="run directory (default: from the config)")
    b.add_argument("--seed", type=_seed, default=None, help="override the config's seed")
    b.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set optim.steps=2000 (repeatable)")
    b.set_defaults(func=cmd_train_vae)

    b = train.add_parser("gen", help="train STAR-Gen (text to audio) on cached corpus latents")
    b.add_argument("--config", required=True)
    b.add_argument("--resume", action="store_true")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    b.set_defaults(func=cmd_train_gen)

    p = sub.add_parser("generate", help="text to audio with STAR-Gen")
    p.set_defaults(func=cmd_generate)
    if _wanted(argv, ("generate",)):  # its defaults live in the generator (imports torch)
        _add_generate_arguments(p)

    p = sub.add_parser("demo", help="reconstruct and morph the bundled examples")
    p.add_argument("-o", "--output", default="star-demo", help="directory to write")
    p.add_argument("--model", default="default", help="bundled model name or model directory")
    p.set_defaults(func=cmd_demo)

    _deferred(sub, "studio", "open STAR Studio, the desktop app (needs the gui extra)", argv,
              ("studio",), ".gui.app", cmd_studio)
    return parser


def _add_generate_arguments(p) -> None:
    from .gen.generator import DEFAULT_CFG, DEFAULT_SOLVER, DEFAULT_STEPS

    p.add_argument("prompt", help="what to generate, e.g. \"a soft flute melody\"")
    p.add_argument("-o", "--output", required=True, help="audio file (variations get -N)")
    p.add_argument("--seconds", type=_positive_float, default=4.0, help="length of each sound")
    p.add_argument("--steps", type=_int_in(1, 1000), default=DEFAULT_STEPS,
                   help="ODE solver steps")
    p.add_argument("--cfg", type=float, default=DEFAULT_CFG, help="classifier-free guidance scale")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (0..2**63-1)")
    p.add_argument("--variations", type=int, default=1, help="sounds per prompt")
    p.add_argument("--solver", choices=["euler", "midpoint", "heun"], default=DEFAULT_SOLVER,
                   help="ODE solver")
    p.add_argument("--generator", default="default", help="bundled name or directory")
    _add_subtype_argument(p)


def _wanted(argv, path) -> bool:
    """Whether the command line selects the sub-command ``path`` (argv None: build all)."""
    if argv is None:
        return True
    words = [a for a in argv if not a.startswith("-")]
    return tuple(words[:len(path)]) == tuple(path)


def _deferred(sub, name: str, help_text: str, argv, path, module: str, func) -> None:
    """A sub-command whose ``add_arguments`` lives in ``module``: imported only when
    selected (or when the whole parser is built, argv None)."""
    p = sub.add_parser(name, help=help_text)
    if _wanted(argv, path):
        import importlib

        importlib.import_module(module, __package__).add_arguments(p)
    p.set_defaults(func=func)


def _terminate_cleanly() -> None:
    """SIGTERM unwinds like Ctrl+C, so atomic writes delete their temporary files."""
    import signal
    import threading

    def on_term(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)


def main(argv=None) -> int:
    """Run ``star``: errors print one line naming the file or argument and return 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # bad option values (argparse printed the one-line reason),
        return exc.code if isinstance(exc.code, int) else 2  # --help, --version

    _terminate_cleanly()
    try:
        code = args.func(args)
    except StarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # unwritable place, a file where a directory should be, ...
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
