"""ONNX export: the SelectiveScan node and its function, and ONNX Runtime against PyTorch
(offline at several lengths, 512 streamed random blocks, streamed == offline delayed)."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from star_plugin.bench.onnx_speed import scan_inputs
from star_plugin.export.exporter import export_model
from star_plugin.export.runtime import OnnxVAE
from star_plugin.export.scan_function import BODIES, scan_op_model
from star_plugin.export.scan_op import DOMAIN, OP_NAME
from star_plugin.mamba import MambaMixer
from star_plugin.scan import selective_scan_ref
from star_plugin.streaming import flatten_state

from conftest import tiny_model
from test_streaming import stream_in_blocks

GRAPHS = ("encoder", "decoder", "encoder_stream", "decoder_stream")
TOL = 1e-4


@pytest.fixture(scope="module", params=BODIES)
def exported(request, tmp_path_factory):
    """The tiny spectral CNN-Mamba model exported with each scan body."""
    model = tiny_model(family="spectral", backbone="mamba")
    out = tmp_path_factory.mktemp(f"onnx-{request.param}")
    manifest = export_model(model, out, scan_body=request.param)
    return model, out, manifest, OnnxVAE(out)


def _all_nodes(graph):
    """Every node of a graph, its subgraphs included."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("length", [1, 17, 256, 4096])
def test_selective_scan_op_matches_torch(body, length):
    session = ort.InferenceSession(scan_op_model(body).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    feeds = scan_inputs(d=24, n=8, length=length, seed=length)
    y, h = session.run(None, feeds)
    ref_y, ref_h = selective_scan_ref(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    assert y.shape == tuple(ref_y.shape) and h.shape == tuple(ref_h.shape)
    scale = max(1.0, float(ref_y.abs().max()))
    assert np.abs(y - ref_y.numpy()).max() <= TOL * scale
    assert np.abs(h - ref_h.numpy()).max() <= TOL * max(1.0, float(ref_h.abs().max()))


def test_graphs_hold_the_node_and_its_function_and_pass_the_full_check(exported):
    model, out, manifest, _ = exported
    mixers = {part: sum(isinstance(m, MambaMixer) for m in getattr(model, part).modules())
              for part in ("encoder", "decoder")}
    for kind in GRAPHS:
        proto = onnx.load(out / f"{kind}.onnx")
        onnx.checker.check_model(proto, full_check=True)
        scan_nodes = [n for n in proto.graph.node if n.domain == DOMAIN and n.op_type == OP_NAME]
        assert len(scan_nodes) == mixers[kind.split("_")[0]] == 2
        functions = [f for f in proto.functions if (f.domain, f.name) == (DOMAIN, OP_NAME)]
        assert len(functions) == 1
        body_ops = {n.op_type for n in functions[0].node}
        assert "Scan" in body_ops  # stock ONNX Runtime runs the recurrence through Scan
        assert DOMAIN in {op.domain for op in proto.opset_import}
        every = list(_all_nodes(proto.graph)) + [n for f in proto.functions for n in f.node]
        assert not [n for n in every if n.op_type in ("If", "Loop")]
        props = {p.key: p.value for p in proto.metadata_props}
        assert props["graph"] == kind
        assert int(props["sample_rate"]) == model.sample_rate
        assert int(props["hop"]) == model.hop
        assert int(props["latency_samples"]) == model.latency_samples
        assert int(props["latent_channels"]) == model.config.latent_channels
        assert int(props["structure_channels"]) == model.config.structure_channels
        assert props["name"] == model.config.name
        assert props["star_plugin_version"] and props["star_onnx_format"] == "star-onnx 1"
        assert props["scan_body"] == manifest["graphs"][kind]["scan_body"]


def test_stream_graphs_expose_every_state_by_name(exported):
    model, out, manifest, _ = exported
    torch_names = set(flatten_state(model.init_state(1)))
    graph_names = set()
    for kind in ("encoder_stream", "decoder_stream"):
        session = ort.InferenceSession(str(out / f"{kind}.onnx"),
                                       providers=["CPUExecutionProvider"])
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        states = [s["name"] for s in manifest["graphs"][kind]["states"]]
        assert [n for n in inputs if n.startswith("state_in.")] == [f"state_in.{s}" for s in states]
        assert [n for n in outputs if n.startswith("state_out.")] == \
            [f"state_out.{s}" for s in states]
        graph_names.update(states)
    # every torch state except the host-side output FIFO and skip counter is in a graph
    assert graph_names == torch_names - {"output", "skip"}


@pytest.mark.parametrize("length", [1, 17, 256, 4096])
def test_offline_graphs_match_torch(exported, length):
    model, _, _, onnx_model = exported
    x = torch.randn(2, 1, length, generator=torch.Generator().manual_seed(length)) * 0.5
    with torch.no_grad():
        latent = model.encode(x)
        audio = model.decode(latent)
    onnx_latent = onnx_model.encode(x)
    assert onnx_latent.mean.shape == latent.mean.shape
    assert (onnx_latent.mean - latent.mean).abs().max() <= TOL
    assert (onnx_latent.logsigma - latent.logsigma).abs().max() <= TOL
    onnx_audio = onnx_model.decode(latent)
    assert onnx_audio.shape == audio.shape == x.shape
    assert (onnx_audio - audio).abs().max() <= TOL


def test_512_random_blocks_stream_without_drift(exported):
    """Functional API (every call runs the graphs, zero-frame calls included) and the IO-bound
    streamer, block by block against torch: outputs and all states stay within 1e-4."""
    model, _, _, onnx_model = exported
    rng = np.random.default_rng(3)
    torch_state, onnx_state = model.init_state(1), onnx_model.init_state(1)
    streamer = onnx_model.streamer()
    worst_out = 0.0
    loudest = 0.0
    with torch.no_grad():
        for _ in range(512):
            n = int(rng.integers(1, 3 * model.hop + 1))  # many calls complete no hop
            block = torch.from_numpy(rng.standard_normal((1, 1, n)).astype(np.float32) * 0.5)
            ref, torch_state = model.stream(block, torch_state)
            out, onnx_state = onnx_model.stream(block, onnx_state)
            bound = streamer.process(block.numpy())
            assert out.shape == bound.shape == ref.shape
            worst_out = max(worst_out, float((out - ref).abs().max()),
                            float(np.abs(bound - ref.numpy()).max()))
            loudest = max(loudest, float(ref.abs().max()))
    assert loudest > 1e-2  # the model really produced signal
    assert worst_out <= TOL
    ref_states = {k: v.numpy() for k, v in flatten_state(torch_state).items()
                  if k not in ("output", "skip")}
    functional = {"input": onnx_state["input"],
                  **{f"encoder.{k}": v for k, v in onnx_state["encoder"].items()},
                  **{f"decoder.{k}": v for k, v in onnx_state["decoder"].items()}}
    for states in (functional, streamer.states()):
        assert set(states) == set(ref_states)
        for name, value in states.items():
            assert value.shape == ref_states[name].shape, name
            assert np.abs(value - ref_states[name]).max(initial=0.0) <= TOL, name


def test_streamed_onnx_equals_offline_torch_delayed_by_latency(exported):
    model, _, _, onnx_model = exported
    x = torch.randn(1, 1, 3000, generator=torch.Generator().manual_seed(5)) * 0.5
    with torch.no_grad():
        offline = model.reconstruct(x).numpy()
    lat = onnx_model.latency_samples
    assert lat == model.latency_samples
    padded = np.concatenate([x.numpy(), np.zeros((1, 1, lat), np.float32)], axis=-1)
    streamer = onnx_model.streamer()
    sizes = np.random.default_rng(1).integers(1, 200, 400)
    outs, pos = [], 0
    for n in sizes:
        if pos >= padded.shape[-1]:
            break
        outs.append(streamer.process(padded[..., pos:pos + n]))
        pos += n
    streamed = np.concatenate(outs, axis=-1)
    assert np.abs(streamed[..., :lat]).max() == 0
    assert np.abs(streamed[..., lat:lat + 3000] - offline).max() <= TOL
    assert np.abs(streamed[..., lat + 1:lat + 1001] - offline[..., :1000]).max() > 1e-3
    # reset() starts again from silence
    streamer.reset()
    again = np.concatenate([streamer.process(padded[..., i:i + 500])
                            for i in range(0, padded.shape[-1], 500)], axis=-1)
    assert np.abs(again[..., :streamed.shape[-1]] - streamed[..., :again.shape[-1]]).max() <= 1e-6


@pytest.mark.parametrize("family,backbone,channels,extra", [
    ("waveform", "mamba", 1, {}), ("spectral", "cnn", 1, {}), ("spectral", "mamba", 2, {}),
    ("spectral", "mamba", 2, {"decoder_blocks": 2, "head": "phase-vocoder"}),
    ("spectral", "mamba", 2, {"decoder_blocks": 2, "head": "harmonic", "harmonics": 6}),
    ("spectral", "mamba", 2, {"decoder_blocks": 2, "head": "harmonic", "harmonics": 6,
                              "pitch_channel": 0}),
    ("spectral", "mamba", 1, {"decoder_blocks": 2, "head": "harmonic", "harmonics": 6,
                              "learned_phase": False}),
    ("spectral", "mamba", 2, {"decoder_blocks": 2, "head": "peak-locked", "harmonics": 6,
                              "pitch_channel": 0, "head_hidden": 8})])
def test_other_architectures_export_and_stream(tmp_path, family, backbone, channels, extra):
    model = tiny_model(family=family, backbone=backbone, audio_channels=channels, **extra)
    export_model(model, tmp_path, scan_body="scan")
    onnx_model = OnnxVAE(tmp_path)
    x = torch.randn(2, channels, 700, generator=torch.Generator().manual_seed(2)) * 0.5
    with torch.no_grad():
        ref = model.reconstruct(x)
    assert (onnx_model.decode(onnx_model.encode(x)) - ref).abs().max() <= TOL
    has_scan = any(n.op_type == OP_NAME for n in onnx.load(tmp_path / "decoder.onnx").graph.node)
    assert has_scan == (backbone == "mamba")
    streamed = stream_in_blocks(onnx_model, x, [5, 300, 1, 64])
    lat = model.latency_samples
    assert (streamed[..., lat:lat + 700] - ref).abs().max() <= TOL
    if "head" in extra:  # the accumulated phases are named states
        names = json.dumps(json.loads((tmp_path / "manifest.json").read_text())).split('"')
        assert any(name.endswith(".phase") for name in names)
        assert any(name.endswith(".f0_phase") for name in names) == (extra["head"] == "harmonic")


def test_bidirectional_model_exports_offline_graphs_only(tmp_path):
    model = tiny_model(causal=False)
    written = []  # the progress callback (star export's bar) sees each graph as it is written
    manifest = export_model(model, tmp_path, scan_body="chunked", progress=written.append)
    # the offline graphs and the morph (render_offline runs it); no streaming graphs
    assert set(manifest["graphs"]) == {"encoder", "decoder", "morph"}
    assert written == ["encoder", "decoder", "morph"]
    onnx_model = OnnxVAE(tmp_path)
    x = torch.randn(1, 1, 500) * 0.5
    with torch.no_grad():
        ref = model.reconstruct(x)
    assert (onnx_model.decode(onnx_model.encode(x)) - ref).abs().max() <= TOL
    with pytest.raises(Exception, match="bidirectional"):
        onnx_model.init_state()
