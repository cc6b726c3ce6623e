"""``star export``: a STAR-VAE -> ONNX graphs + ``manifest.json`` (see ``graphs.py``, docs/ONNX.md).

Tracing uses torch's TorchScript-based exporter (``dynamo=False``): it follows the model's own
``forward``/``step`` code, emits the selective scan through ``SelectiveScanExport.symbolic`` as
one ``ai.star::SelectiveScan`` node, and records sizes as Shape ops so that batch, length and
block size stay dynamic. Each graph then gets the op's function, its metadata, and a full
``onnx.checker`` pass before it is written (atomically).
"""
from __future__ import annotations

import copy
import io
import json
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import torch

from star_plugin.atomic import write_bytes_atomic
from star_plugin.errors import ConfigError
from star_plugin.mamba import MambaMixer
from star_plugin.streaming import flatten_state
from star_plugin.tail import measure_tail_samples
from star_plugin.vae import StarVAE
from star_plugin.version import __version__

from . import morph_spec
from .graphs import (STATE_IN, STATE_OUT, DecoderGraph, DecoderStreamGraph, EncoderGraph,
                     EncoderStreamGraph, MorphGraph, stream_state_names)
from .manifest import FORMAT, FORMAT_VERSION, MANIFEST_FILE
from .scan_function import BODIES
from .scan_op import DOMAIN, DOMAIN_VERSION, OP_NAME

OPSET = 17
SCAN_BODY_CHOICES = ("auto",) + BODIES


def require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install 'star-plugin[onnx]'") \
            from None


def mixer_sizes(model: StarVAE) -> Optional[tuple]:
    """(d_inner, d_state) of the model's Mamba layers, or None for a CNN backbone."""
    for module in model.modules():
        if isinstance(module, MambaMixer):
            return module.d_inner, module.d_state
    return None


def choose_scan_bodies(model: StarVAE, requested: str) -> Dict[str, object]:
    """Scan body per graph kind: as requested, or (auto) the faster one measured here with the
    model's own state size, at 1 frame (streaming) and 256 frames (offline)."""
    if requested not in SCAN_BODY_CHOICES:
        raise ConfigError(f"--scan-body must be one of {SCAN_BODY_CHOICES}, got {requested!r}")
    if requested != "auto":
        return {"offline": requested, "stream": requested, "measured_ms": None}
    sizes = mixer_sizes(model)
    if sizes is None:  # no Mamba layer: no SelectiveScan node to define
        return {"offline": "scan", "stream": "scan", "measured_ms": None}
    from .scan_timing import time_scan_bodies

    lengths = {"stream": 1, "offline": 256}
    timings = time_scan_bodies(d=sizes[0], n=sizes[1], lengths=list(lengths.values()),
                               repeats=7)
    chosen = {kind: min(BODIES, key=lambda body: timings[body][length])
              for kind, length in lengths.items()}
    return {**chosen, "measured_ms": {body: {str(k): round(v * 1e3, 4) for k, v in t.items()}
                                      for body, t in timings.items()}}


def _model_metadata(model: StarVAE) -> Dict[str, object]:
    cfg = model.config
    return {
        "name": cfg.name, "sample_rate": cfg.sample_rate, "hop": model.hop,
        "latent_rate": model.latent_rate, "latency_samples": model.latency_samples,
        "synthesis_delay": model.synthesis_delay, "audio_channels": cfg.audio_channels,
        "latent_channels": cfg.latent_channels, "structure_channels": cfg.structure_channels,
        "causal": cfg.causal, "family": cfg.family, "backbone": cfg.backbone,
    }


def _state_entries(model: StarVAE, part: str, names: List[str]) -> List[dict]:
    """Manifest entries for the states of one half: shape at batch 1, batch multiple."""
    one = flatten_state(model.init_state(1)[part])
    two = flatten_state(model.init_state(2)[part])
    return [{"name": f"{part}.{name}", "shape": list(one[name].shape),
             "batch_multiple": int(two[name].shape[0] - one[name].shape[0]),
             "dynamic_axes": [0], "dtype": "float32", "init": "zeros"} for name in names]


def _trace(module, args, input_names, output_names, dynamic_axes, scan: bool = True) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated upstream and warns about every traced size;
        # tests run each graph at many lengths instead.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes,
                          custom_opsets={DOMAIN: DOMAIN_VERSION} if scan else None,
                          do_constant_folding=True, autograd_inlining=False)
    return buffer.getvalue()


def _finish_graph(raw: bytes, kind: str, body: str, metadata: Dict[str, object],
                  defaults: Optional[Dict[str, object]] = None) -> bytes:
    """Attach the SelectiveScan function and metadata; check the whole model. ``defaults``:
    graph inputs given a stored default value (overridable initializers), name -> array."""
    import onnx
    from onnx import helper, numpy_helper

    from .scan_function import selective_scan_function

    proto = onnx.load_from_string(raw)
    uses_scan = any(node.domain == DOMAIN and node.op_type == OP_NAME for node in proto.graph.node)
    if uses_scan:
        proto.functions.append(selective_scan_function(body, OPSET))
        # The traced example's shapes must not pin the op's dynamic outputs.
        produced = {out for node in proto.graph.node if node.domain == DOMAIN
                    for out in node.output}
        kept = [vi for vi in proto.graph.value_info if vi.name not in produced]
        del proto.graph.value_info[:]
        proto.graph.value_info.extend(kept)
    else:
        kept_imports = [op for op in proto.opset_import if op.domain != DOMAIN]
        del proto.opset_import[:]
        proto.opset_import.extend(kept_imports)
    props = {**{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in metadata.items()},
             "graph": kind, "scan_body": body if uses_scan else "none",
             "star_onnx_format": f"{FORMAT} {FORMAT_VERSION}", "star_plugin_version": __version__}
    for name, value in (defaults or {}).items():
        proto.graph.initializer.append(numpy_helper.from_array(value, name))
    helper.set_model_props(proto, props)
    proto.producer_name, proto.producer_version = "star_plugin", __version__
    proto.doc_string = (f"STAR-VAE '{metadata['name']}' {kind} graph; see manifest.json beside "
                        "it and star_plugin's docs/ONNX.md")
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def export_model(model: StarVAE, out_dir, scan_body: str = "auto", stream: bool = True,
                 progress=None) -> dict:
    """Write the graphs and ``manifest.json`` into ``out_dir``; returns the manifest.
    ``progress(kind)``, if given, is called after each graph is written."""
    require_onnx()
    model = copy.deepcopy(model).float().cpu().eval()  # the caller's model stays as it was
    cfg, hop = model.config, model.hop
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bodies = choose_scan_bodies(model, scan_body)
    meta = _model_metadata(model)
    if stream and cfg.causal:  # what hosts ask a plugin for (star_plugin/tail.py)
        meta["tail_samples"] = measure_tail_samples(model)
    ch, C = cfg.audio_channels, cfg.latent_channels
    audio_axes = {0: "batch", 2: "samples"}
    frame_axes = {0: "batch", 2: "frames"}
    graphs: Dict[str, dict] = {}

    def write(kind, module, args, inputs, outputs, axes, body, states=None, defaults=None):
        raw = _trace(module, args, inputs, outputs, axes, scan=body != "none")
        data = _finish_graph(raw, kind, body, meta, defaults)
        write_bytes_atomic(out_dir / f"{kind}.onnx", data)
        graphs[kind] = {"file": f"{kind}.onnx", "inputs": inputs, "outputs": outputs,
                        "scan_body": body, "bytes": len(data)}
        if states is not None:
            graphs[kind]["states"] = states
        if progress is not None:
            progress(kind)

    with torch.no_grad():
        write("encoder", EncoderGraph(model), (torch.randn(1, ch, 3 * hop + 5) * 0.1,),
              ["audio"], ["mean", "logsigma"],
              {"audio": audio_axes, "mean": frame_axes, "logsigma": frame_axes},
              bodies["offline"])
        write("decoder", DecoderGraph(model), (torch.randn(1, C, 3),), ["latent"], ["audio"],
              {"latent": frame_axes, "audio": audio_axes}, bodies["offline"])
        if stream and cfg.causal:
            for part in ("encoder", "decoder"):
                names = stream_state_names(model, part)
                entries = _state_entries(model, part, names)
                flat = [torch.zeros(e["shape"]) for e in entries]
                state_in = [STATE_IN + e["name"] for e in entries]
                state_out = [STATE_OUT + e["name"] for e in entries]
                axes = {name: {0: f"batch_x{e['batch_multiple']}"}
                        for e, name in zip(entries * 2, state_in + state_out)}
                if part == "encoder":
                    pending = {"name": "input", "shape": [1, ch, 0], "batch_multiple": 1,
                               "dynamic_axes": [0, 2], "dtype": "float32", "init": "zeros",
                               "note": "pending samples of an incomplete hop (0..hop-1)"}
                    entries = [pending] + entries
                    args = (torch.randn(1, ch, hop + 3) * 0.1, torch.zeros(1, ch, 2), *flat)
                    inputs = ["audio", STATE_IN + "input"] + state_in
                    outputs = ["mean", "logsigma", STATE_OUT + "input"] + state_out
                    axes.update({"audio": audio_axes, "mean": frame_axes,
                                 "logsigma": frame_axes,
                                 STATE_IN + "input": {0: "batch", 2: "pending"},
                                 STATE_OUT + "input": {0: "batch", 2: "pending_out"}})
                    module = EncoderStreamGraph(model, names)
                else:
                    args = (torch.randn(1, C, 2), *flat)
                    inputs, outputs = ["latent"] + state_in, ["audio"] + state_out
                    axes.update({"latent": frame_axes, "audio": audio_axes})
                    module = DecoderStreamGraph(model, names)
                write(f"{part}_stream", module, args, inputs, outputs, axes, bodies["stream"],
                      states=entries)

        # The frame-wise morph (star_plugin.morph): one definition for every host.
        table = morph_spec.noise_table(C, 0)
        frames = 3
        write("morph", MorphGraph(C, cfg.structure_channels),
              (torch.zeros(1, C, frames), torch.zeros(1, C, frames), torch.zeros(1, C, frames),
               torch.zeros(3, frames), torch.ones(C, frames),
               torch.zeros(1, dtype=torch.int64), torch.from_numpy(table)),
              morph_spec.INPUTS + [morph_spec.NOISE_INPUT], morph_spec.OUTPUTS,
              {"mean": frame_axes, "logsigma": frame_axes,
               "source": {0: "source_batch", 2: "frames"}, "controls": {1: "frames"},
               "gain": {1: "frames"}, morph_spec.NOISE_INPUT: {1: "noise_frames"},
               "z": frame_axes}, "none", defaults={morph_spec.NOISE_INPUT: table})
        graphs["morph"].update({
            "inputs": list(morph_spec.INPUTS),
            "defaults": {morph_spec.NOISE_INPUT: {"shape": list(table.shape), "seed": 0}},
            "smoothing_s": morph_spec.SMOOTHING_S,
            "how": "per latent frame between encoder_stream and decoder_stream: controls "
                   "(structure amount, texture amount, temperature) and gain smoothed by the "
                   "host, one pole per frame: c = k * c + (1 - k) * target, k = exp(-1 / "
                   "(smoothing_s * sample_rate / hop)), float32; source = the texture "
                   "source frame (loop: source[:, i mod S]); first_frame counts frames since "
                   "reset; amounts 0 and source 0 without a texture source."})

    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "star_plugin_version": __version__,
        "opset": OPSET, "model": meta, "config": cfg.to_dict(),
        "scan_op": {"domain": DOMAIN, "name": OP_NAME, "offline_body": bodies["offline"],
                    "stream_body": bodies["stream"], "measured_ms": bodies["measured_ms"]},
        "graphs": graphs,
        "streaming": {
            "latency_samples": model.latency_samples,
            "drop_first_decoder_samples": model.synthesis_delay,
            "how": "encoder_stream(audio block) -> frames (0 or more) -> decoder_stream -> "
                   "frames*hop samples; drop the first drop_first_decoder_samples samples ever "
                   "produced; a fixed-size block host keeps a FIFO primed with latency_samples "
                   "zeros. States start as zeros (state 'input' with 0 samples).",
        } if "encoder_stream" in graphs else None,
    }
    write_bytes_atomic(out_dir / MANIFEST_FILE, (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
