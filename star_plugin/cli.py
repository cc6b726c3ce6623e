"""The ``star`` command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import StarError


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
    }


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
        print(f"latency          {facts['latency_samples']} samples ({facts['latency_ms']} ms)")
    else:
        print("latency          n/a (does not stream)")
    print(f"parameters       {facts['parameters']:,}")


def _read_for_model(model, path):
    """Read an audio file and convert it to the model's rate and channel layout."""
    from .audio import read_audio
    from .convert import to_model_batch

    audio, rate = read_audio(path)
    batch, layout = to_model_batch(audio, rate, model.sample_rate, model.config.audio_channels)
    if layout.replaced_nonfinite:
        print(f"warning: '{path}': replaced {layout.replaced_nonfinite} NaN/Inf samples with 0",
              file=sys.stderr)
    return audio, batch, layout


def cmd_encode(args):
    from .latent_file import save_latent

    import torch

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
    write_audio(args.output, audio, rate)
    print(f"{args.input} -> {args.output}: {audio.shape[0]} channel(s), "
          f"{audio.shape[1] / rate:.2f} s at {rate} Hz")


def cmd_recon(args):
    import torch

    from .audio import write_audio
    from .convert import from_model_batch
    from .metrics import si_sdr

    model = _load_model(args.model)
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in args.inputs:
        try:
            audio, batch, layout = _read_for_model(model, path)
            rate = layout.sample_rate
            with torch.no_grad():
                recon = from_model_batch(model.reconstruct(batch), layout)
            target = out_dir / (Path(path).stem + ".recon.wav")
            write_audio(target, recon, rate)
            score = si_sdr(recon, audio) if audio.size else float("nan")
            print(f"{path} -> {target}  ({audio.shape[0]} ch, {rate} Hz, "
                  f"{audio.shape[1] / rate:.2f} s)  SI-SDR {score:.2f} dB")
        except StarError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
    if failures:
        raise SystemExit(1)


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

    model = _load_model(args.model)
    manifest = export_model(model, args.output, scan_body=args.scan_body,
                            stream=not args.offline_only)
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
    changes = {k: v for k, v in (("structure", args.structure), ("texture", args.amount),
                                 ("temperature", args.temperature), ("mode", args.mode),
                                 ("seed", args.seed)) if v is not None}
    return MorphParams.from_dict({**params.to_dict(), **changes})


def _texture_latent(model, args):
    """The texture source of a morph: an audio file's latent, a generated one, or none."""
    if args.texture_file and args.texture_prompt:
        raise StarError("give --texture or --texture-prompt, not both")
    if args.texture_prompt:
        from .gen.generator import texture_from_prompt

        return texture_from_prompt(args.texture_prompt, args.model, args.generator,
                                   seconds=args.texture_seconds, seed=args.seed or 0)
    if args.texture_file:
        from .morph import texture_from_file

        return texture_from_file(model, args.texture_file)
    return None


def _add_morph_arguments(p):
    p.add_argument("--texture", dest="texture_file", help="texture source audio file")
    p.add_argument("--texture-prompt", metavar="PROMPT",
                   help="generate the texture source with STAR-Gen from this prompt")
    p.add_argument("--generator", default="default",
                   help="generator for --texture-prompt (default: the bundled one)")
    p.add_argument("--texture-seconds", type=float,
                   help="length of the generated texture source (default 4, or the "
                   "generator's longest)")
    p.add_argument("--preset", help="bundled preset name or preset file (star presets list)")
    p.add_argument("--structure", type=float, help="0..1: how much of the source's structure")
    p.add_argument("--amount", type=float, help="0..1: how much of the source's texture")
    p.add_argument("--temperature", type=float, help="0..4: resample the texture channels")
    p.add_argument("--mode", choices=["loop", "hold", "mean", "match"],
                   help="how the source's frames follow the input")
    p.add_argument("--seed", type=int)
    p.add_argument("--model", default="default")


def _add_chain_arguments(p):
    p.add_argument("--chain", help="stages separated by '|', e.g. "
                   "\"HighpassFilter(cutoff_frequency_hz=80) | star(preset='texture-blend') | "
                   "Reverb(room_size=0.3)\"")
    p.add_argument("--chain-file", help="a chain saved as JSON (see --save-chain)")
    p.add_argument("--model", default="default", help="model for the star(...) stages")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: ONNX Runtime when the onnx extra is installed, else PyTorch")
    p.add_argument("--buffer-size", type=int, default=512, help="block size in samples")


def cmd_morph(args):
    from .audio import read_audio, write_audio
    from .engine import render_offline

    model = _load_model(args.model)
    params = _morph_params(args)
    audio, rate = read_audio(args.input)
    texture = _texture_latent(model, args)
    out = render_offline(model, audio, rate, params, texture)
    write_audio(args.output, out, rate)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch, {rate} Hz, "
          f"{audio.shape[1] / rate:.2f} s; structure {params.structure}, texture "
          f"{params.texture}, temperature {params.temperature}, mode {params.mode})")


def cmd_stream(args):
    import time

    import numpy as np

    from .audio import read_audio, resample, write_audio
    from .bench.onnx_speed import block_time_stats
    from .engine import MAX_BLOCK, StreamingEngine

    if not 1 <= args.block <= MAX_BLOCK:
        raise StarError(f"--block must be in 1..{MAX_BLOCK}, got {args.block}")
    audio, rate = read_audio(args.input)
    host_rate = args.sample_rate or rate
    if host_rate != rate:
        audio = resample(audio, rate, host_rate)
    model = _load_model(args.model)
    texture = _texture_latent(model, args)
    engine = StreamingEngine(model, host_rate, audio.shape[0], backend=args.backend,
                             params=_morph_params(args), texture=texture)
    lat = engine.latency_samples
    padded = np.concatenate([audio, np.zeros((audio.shape[0], lat), np.float32)], axis=1)
    outs, times = [], []
    for start in range(0, padded.shape[1], args.block):
        block = padded[:, start:start + args.block]
        t0 = time.perf_counter()
        outs.append(engine.process(block))
        times.append(time.perf_counter() - t0)
    out = np.concatenate(outs, axis=1)[:, lat:lat + audio.shape[1]]
    write_audio(args.output, out, host_rate)
    block_ms = 1000 * args.block / host_rate
    stats = block_time_stats(times, args.block / host_rate)
    print(f"{args.input} -> {args.output}  ({audio.shape[0]} ch at {host_rate} Hz, "
          f"{engine.backend} backend, blocks of {args.block} = {block_ms:.2f} ms)")
    print(f"latency {lat} samples ({1000 * lat / host_rate:.1f} ms), removed from the file")
    print(f"per block: median {stats['median_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms, "
          f"max {stats['max_ms']:.3f} ms; real-time factor "
          f"{sum(times) / (audio.shape[1] / host_rate):.3f} (compute / audio time)")


def _chain_from_args(args):
    from .chain import StarChain

    if args.chain_file:
        from .model_io import read_json
        from .errors import ConfigError

        return StarChain.from_dict(read_json(Path(args.chain_file), ConfigError),
                                   model=args.model, backend=args.backend)
    if not args.chain:
        raise StarError("give the effects with --chain 'Effect(param=value) | star(...)' or "
                        "--chain-file FILE.json")
    return StarChain.from_spec(args.chain, model=args.model, backend=args.backend)


def cmd_chain(args):
    import time

    from .chain_file import process_file

    chain = _chain_from_args(args)
    if args.save_chain:
        from .atomic import write_bytes_atomic

        write_bytes_atomic(args.save_chain, (json.dumps(chain.to_dict(), indent=2) + "\n").encode())
    t0 = time.perf_counter()
    facts = process_file(chain, args.input, args.output, buffer_size=args.buffer_size)
    took = time.perf_counter() - t0
    print(f"{args.input} -> {args.output}  ({facts['channels']} ch, {facts['sample_rate']:g} Hz, "
          f"{facts['seconds']:.2f} s in {took:.2f} s, {len(chain)} stages)")
    for i, stage in enumerate(chain.stages, 1):
        print(f"  {i}. {stage!r}")


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
        print(f"{preset.name:<18} structure {p.structure:.1f}  texture {p.texture:.1f}  "
              f"temp {p.temperature:.1f}  {p.mode:<5}  {preset.description}")


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

    gen = load_generator(args.generator)
    t0 = time.perf_counter()
    audio = gen.generate(args.prompt, args.seconds, steps=args.steps, cfg=args.cfg,
                         seed=args.seed, variations=args.variations, solver=args.solver)
    took = time.perf_counter() - t0
    out = Path(args.output)
    for i, clip in enumerate(audio):
        path = out if len(audio) == 1 else out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
        write_audio(path, clip, gen.sample_rate)
        print(f"{path}  ({args.seconds:g} s, seed {args.seed}, variation {i + 1})")
    print(f"generated {len(audio)} x {args.seconds:g} s in {took:.2f} s "
          f"({args.steps} {args.solver} steps, cfg {args.cfg})")


def cmd_demo(args):
    from .demo import run_demo
    run_demo(args.output, model_name=args.model)


def cmd_studio(args):
    from .gui.app import run
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="star", description="STAR-VAE audio toolkit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a model")
    p.add_argument("model", nargs="?", default="default", help="bundled name or model directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("encode", help="audio file -> latent file")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="latent file to write (.safetensors)")
    p.add_argument("--model", default="default")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="latent file -> audio file")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="audio file to write (.wav/.flac)")
    p.add_argument("--model", default="default")
    p.add_argument("--sample-rate", type=int, default=None, help="default: the original rate")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("recon", help="encode and decode audio files")
    p.add_argument("inputs", nargs="+")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--model", default="default")
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
    p.set_defaults(func=cmd_morph)

    p = sub.add_parser("stream", help="run a file through the real-time engine block by block")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="audio file to write (latency removed)")
    p.add_argument("--block", type=int, default=512, help="host block size in samples")
    p.add_argument("--sample-rate", type=int, default=None, help="host rate (default: the file's)")
    p.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="auto: ONNX Runtime when the onnx extra is installed, else PyTorch")
    _add_morph_arguments(p)
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("chain", help="run a file through an effect chain (Pedalboard + STAR)")
    p.add_argument("input")
    p.add_argument("-o", "--output", required=True, help="audio file to write (atomically)")
    _add_chain_arguments(p)
    p.add_argument("--save-chain", help="also write the chain as JSON to this file")
    p.set_defaults(func=cmd_chain)

    p = sub.add_parser("live", help="live input -> effect chain -> output (audio devices)")
    _add_chain_arguments(p)
    p.add_argument("--input-device")
    p.add_argument("--output-device")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
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
    b.add_argument("--length", type=int, default=1024)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--seconds", type=float, default=10.0, help="audio length for model timing")
    b.add_argument("--skip-models", action="store_true")
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
    # --- bench engine: arguments owned by star_plugin/bench/engine_speed.py ---
    from .bench.engine_speed import add_arguments as add_engine_arguments
    b = bench.add_parser("engine", help="real-time engine per-block time, misses, memory")
    add_engine_arguments(b)
    b.set_defaults(func=cmd_bench_engine)
    # --- bench recon: arguments owned by star_plugin/bench/recon.py ---
    from .bench.recon import add_arguments as add_recon_arguments
    b = bench.add_parser("recon", help="reconstruction quality on a corpus split or audio folder")
    add_recon_arguments(b)
    b.set_defaults(func=cmd_bench_recon)
    # --- bench latent: arguments owned by star_plugin/bench/latent.py ---
    from .bench.latent import add_arguments as add_latent_arguments
    b = bench.add_parser("latent", help="latent regularity: KL profile, probes, texture swap")
    add_latent_arguments(b)
    b.set_defaults(func=cmd_bench_latent)
    # --- bench gen: arguments owned by star_plugin/bench/gen_bench.py ---
    from .bench.gen_bench import add_arguments as add_gen_bench_arguments
    b = bench.add_parser("gen", help="STAR-Gen: prompt adherence, Fréchet distance, speed "
                         "(self-trained evaluator)")
    add_gen_bench_arguments(b)
    b.set_defaults(func=cmd_bench_gen)
    # --- bench studio: arguments owned by star_plugin/bench/studio.py ---
    from .bench.studio import add_arguments as add_studio_bench_arguments
    b = bench.add_parser("studio", help="STAR Studio's responsiveness while the model works "
                         "(GUI-thread timer gaps; needs the gui extra)")
    add_studio_bench_arguments(b)
    b.set_defaults(func=cmd_bench_studio)

    p = sub.add_parser("data", help="datasets")
    data = p.add_subparsers(dest="data", required=True)
    # --- data build: arguments owned by training/corpus/build.py ---
    from .training.corpus.build import add_arguments as add_build_arguments
    b = data.add_parser("build", help="build the captioned corpus from Debian packages")
    add_build_arguments(b)
    b.set_defaults(func=cmd_data_build)

    p = sub.add_parser("train", help="training")
    train = p.add_subparsers(dest="train", required=True)
    b = train.add_parser("vae", help="train a STAR-VAE from a config file")
    b.add_argument("--config", required=True, help="training config (JSON or TOML)")
    b.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    b.add_argument("--out", default=None, help="run directory (default: from the config)")
    b.add_argument("--seed", type=int, default=None, help="override the config's seed")
    b.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set optim.steps=2000 (repeatable)")
    b.set_defaults(func=cmd_train_vae)

    b = train.add_parser("gen", help="train STAR-Gen (text to audio) on cached corpus latents")
    b.add_argument("--config", required=True)
    b.add_argument("--resume", action="store_true")
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    b.set_defaults(func=cmd_train_gen)

    p = sub.add_parser("generate", help="text to audio with STAR-Gen")
    p.add_argument("prompt")
    p.add_argument("-o", "--output", required=True, help="audio file (variations get -N)")
    p.add_argument("--seconds", type=float, default=4.0)
    from .gen.generator import DEFAULT_CFG, DEFAULT_SOLVER, DEFAULT_STEPS
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--cfg", type=float, default=DEFAULT_CFG, help="classifier-free guidance scale")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variations", type=int, default=1)
    p.add_argument("--solver", choices=["euler", "midpoint", "heun"], default=DEFAULT_SOLVER)
    p.add_argument("--generator", default="default", help="bundled name or directory")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="reconstruct and morph the bundled examples")
    p.add_argument("-o", "--output", default="star-demo")
    p.add_argument("--model", default="default")
    p.set_defaults(func=cmd_demo)

    from .gui.app import add_arguments as add_studio_arguments

    p = sub.add_parser("studio", help="open STAR Studio, the desktop app (needs the gui extra)")
    add_studio_arguments(p)
    p.set_defaults(func=cmd_studio)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except StarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
