"""The ONNX Runtime backend: clear errors for bad export directories, the `star export` CLI,
the bundled default model through ONNX Runtime, and the speed bench's code paths."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from star_plugin.bench.onnx_speed import bench_streaming, time_scan_bodies
from star_plugin.errors import ModelFileError
from star_plugin.export.exporter import export_model
from star_plugin.export.runtime import OnnxVAE, default_providers

from conftest import tiny_model


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    model = tiny_model()
    out = tmp_path_factory.mktemp("tiny-onnx")
    export_model(model, out, scan_body="scan")
    return model, out


@pytest.fixture
def export_copy(tiny_export, tmp_path):
    """A private copy to damage."""
    target = tmp_path / "export"
    shutil.copytree(tiny_export[1], target)
    return target


def test_cpu_provider_is_always_there_and_one_thread_is_the_default(tiny_export):
    assert default_providers()[-1] == "CPUExecutionProvider"
    onnx_model = OnnxVAE(tiny_export[1])
    for session in onnx_model.sessions.values():
        assert session.get_session_options().intra_op_num_threads == 1


def test_running_a_model_writes_nothing_in_home(tiny_export, tmp_path):
    """ONNX Runtime 1.32's telemetry wrote a device id under ~/.cache/Microsoft/ as soon as it
    loaded; star_plugin keeps it off (unless the user set ORT_DISABLE_TELEMETRY). A fresh
    process, so that this one's import order does not matter."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", "XDG_CONFIG_HOME")}
    env["HOME"] = str(home)
    code = ("import sys, torch; from star_plugin.export.runtime import OnnxVAE; "
            "m = OnnxVAE(sys.argv[1]); m.decode(m.encode(0.1 * torch.randn(1, 1, 4000)))")
    subprocess.run([sys.executable, "-c", code, str(tiny_export[1])], check=True, env=env,
                   capture_output=True, timeout=300)
    assert list(home.rglob("*")) == []


def test_missing_directory_or_manifest(tmp_path):
    with pytest.raises(ModelFileError, match="no manifest.json.*star export"):
        OnnxVAE(tmp_path)


def test_missing_graph_file_is_named(export_copy):
    (export_copy / "decoder_stream.onnx").unlink()
    with pytest.raises(ModelFileError, match="decoder_stream.onnx.*does not exist"):
        OnnxVAE(export_copy)


def test_corrupt_graph_file_is_named(export_copy):
    path = export_copy / "encoder.onnx"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="encoder.onnx.*not a loadable ONNX graph"):
        OnnxVAE(export_copy)


def test_corrupt_manifest_is_named(export_copy):
    (export_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="manifest.json.*not valid JSON"):
        OnnxVAE(export_copy)


def test_manifest_that_does_not_match_the_graph(export_copy):
    path = export_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    state = manifest["graphs"]["decoder_stream"]["states"][1]
    state["shape"][1] += 3
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=f"decoder_stream.onnx.*does not match manifest.*"
                                             f"{state['name']}"):
        OnnxVAE(export_copy)
    manifest["graphs"]["decoder_stream"]["states"][1]["shape"][1] -= 3
    manifest["graphs"]["encoder"]["outputs"] = ["mean"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="encoder.onnx.*outputs"):
        OnnxVAE(export_copy)


def test_graph_from_an_incompatible_version(export_copy):
    path = export_copy / "decoder.onnx"
    proto = onnx.load(path)
    for prop in proto.metadata_props:
        if prop.key == "star_onnx_format":
            prop.value = "star-onnx 99"
        if prop.key == "star_plugin_version":
            prop.value = "9.0.0"
    onnx.save(proto, path)
    with pytest.raises(ModelFileError, match=r"decoder.onnx.*9\.0\.0.*version 99.*reads version 1"
                                             r".*Re-export"):
        OnnxVAE(export_copy)


def test_manifest_from_an_incompatible_version(export_copy):
    path = export_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 2
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="version 2.*reads version 1"):
        OnnxVAE(export_copy)


def test_bad_audio_shapes_get_clear_errors(tiny_export):
    onnx_model = OnnxVAE(tiny_export[1])
    with pytest.raises(ValueError, match=r"audio must be \(batch, 1, samples\)"):
        onnx_model.encode(np.zeros((1, 2, 100), np.float32))
    with pytest.raises(ValueError, match="latent must be"):
        onnx_model.decode(np.zeros((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match="block must be"):
        onnx_model.stream(np.zeros((1, 1, 0), np.float32), onnx_model.init_state())


def test_empty_audio_gets_one_frame_from_posterior_and_encode_refuses_it(tiny_export):
    """``posterior`` still gives empty audio the model's shortest frame count; ``encode``
    refuses it (issue 24: the API follows the CLI's "has no samples")."""
    model, out = tiny_export
    onnx_model = OnnxVAE(out)
    from star_plugin.streaming import frames_to_encode

    mean, _ = onnx_model.posterior(np.zeros((1, 1, 0), np.float32))
    frames = max(1, frames_to_encode(0, model.hop, model.synthesis_delay))
    assert mean.shape == (1, model.config.latent_channels, frames)
    with pytest.raises(ValueError, match="no samples"):
        onnx_model.encode(np.zeros((1, 1, 0), np.float32))


def test_star_export_cli(tmp_path, saved_tiny_model):
    directory, _ = saved_tiny_model
    out = tmp_path / "onnx"
    run = subprocess.run([sys.executable, "-m", "star_plugin.cli", "export", str(directory),
                          "-o", str(out), "--scan-body", "auto"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "encoder_stream.onnx" in run.stdout and "measured" in run.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scan_op"]["stream_body"] in ("scan", "chunked")
    assert set(manifest["scan_op"]["measured_ms"]) == {"scan", "chunked"}
    for graph in manifest["graphs"].values():
        assert (out / graph["file"]).stat().st_size == graph["bytes"]
    bad = subprocess.run([sys.executable, "-m", "star_plugin.cli", "export", str(tmp_path / "nope"),
                          "-o", str(out)], capture_output=True, text=True)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr


def test_bundled_default_model_runs_in_onnx_runtime(tmp_path):
    """Real trained weights (larger activations than the tiny models): offline and streamed
    ONNX Runtime output against PyTorch on a bundled example."""
    import soundfile as sf

    from star_plugin.model_io import load_vae, presets_dir

    model = load_vae("default")
    export_model(model, tmp_path, scan_body="scan")
    onnx_model = OnnxVAE(tmp_path)
    audio, rate = sf.read(presets_dir() / "examples" / "melody.flac", dtype="float32",
                          always_2d=True)
    assert rate == model.sample_rate
    x = torch.from_numpy(np.ascontiguousarray(audio.T[:1, :rate]))[None]
    with torch.no_grad():
        latent = model.encode(x)
        ref = model.decode(latent)
    assert (onnx_model.encode(x).mean - latent.mean).abs().max() <= 1e-4
    assert (onnx_model.decode(latent) - ref).abs().max() <= 1e-4
    state, streamer = model.init_state(), onnx_model.streamer()
    pos, worst = 0, 0.0
    with torch.no_grad():
        for n in [512, 1, 3000, 64, 2048, 700] * 4:
            block = x[..., pos:pos + n]
            pos += n
            out, state = model.stream(block, state)
            worst = max(worst, float(np.abs(streamer.process(block.numpy()) - out.numpy()).max()))
    assert worst <= 1e-4


def test_speed_bench_code_paths(tiny_export):
    timings = time_scan_bodies(d=8, n=2, lengths=[1, 20], repeats=1)
    assert set(timings) == {"scan", "chunked"}
    assert all(t > 0 for body in timings.values() for t in body.values())
    model, out = tiny_export
    result = bench_streaming(model, out, blocks=[16, 100], seconds=0.05)
    assert [r["block"] for r in result["rows"]] == [16, 100]
    for row in result["rows"]:
        for backend in ("torch", "onnx"):
            stats = row[backend]
            assert stats["blocks"] == (800 // row["block"])
            assert 0 < stats["median_ms"] <= stats["p99_ms"] <= stats["max_ms"]
