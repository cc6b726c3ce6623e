"""Streaming equals offline, delayed by exactly latency_samples, for every causal family."""
import numpy as np
import pytest
import torch

from star_plugin.errors import StreamingError
from star_plugin.streaming import flatten_state

from conftest import FAMILIES, V2, V2_HARMONIC, V2_PITCH, V3, tiny_model


def stream_in_blocks(model, x, sizes):
    """Feed x (plus enough silence to flush the latency) through model.stream."""
    x = torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], model.latency_samples)], dim=-1)
    state = model.init_state(x.shape[0])
    outs, pos, i = [], 0, 0
    with torch.no_grad():
        while pos < x.shape[-1]:
            n = sizes[i % len(sizes)]
            block = x[..., pos:pos + n]
            out, state = model.stream(block, state)
            assert out.shape == block.shape
            outs.append(out)
            pos, i = pos + n, i + 1
    return torch.cat(outs, dim=-1)


KINDS = [dict(family=f, backbone=b) for f, b in FAMILIES] + [
    V2, V2_HARMONIC, V2_PITCH, dict(V2_HARMONIC, learned_phase=False), V3]
KIND_IDS = [f"{k['family']}-{k['backbone']}" + (f"-{k['head']}" if "head" in k else "")
            + ("-pitch" if "pitch_channel" in k else "")
            + ("-bin-centre" if k.get("learned_phase") is False else "") for k in KINDS]


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("audio_channels", [1, 2])
def test_stream_equals_offline_with_random_blocks(kind, audio_channels):
    model = tiny_model(**kind, audio_channels=audio_channels)
    rng = np.random.default_rng(7)
    x = torch.randn(2, audio_channels, 12000) * 0.5
    sizes = [int(s) for s in rng.integers(1, 4097, 40)] + [1, 1, 3]
    rng.shuffle(sizes)
    with torch.no_grad():
        offline = model.reconstruct(x)
    streamed = stream_in_blocks(model, x, sizes)
    lat = model.latency_samples
    assert streamed[..., :lat].abs().max() == 0  # nothing before the latency
    err = (streamed[..., lat:lat + x.shape[-1]] - offline).abs().max().item()
    assert err <= 1e-4, err
    # a one-sample misalignment would be far off: the check above really pins the delay
    assert (streamed[..., lat + 1:lat + 1 + 4000] - offline[..., :4000]).abs().max() > 1e-3


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_realistic_hop_streams_exactly(kind):
    """The real architectures' timing (hop 1024 at 44.1 kHz), tiny widths."""
    kw = dict(sample_rate=44100, **kind)
    if kind["family"] == "spectral":
        kw.update(n_fft=1024, stft_hop=256, frame_strides=[4])
    else:
        kw.update(strides=[2, 4, 8, 16])
    model = tiny_model(**kw)
    assert model.hop == 1024
    x = torch.randn(1, 1, 3 * 4096) * 0.3
    with torch.no_grad():
        offline = model.reconstruct(x)
    streamed = stream_in_blocks(model, x, [4096, 1, 1000, 333, 2048, 7, 4096, 64])
    lat = model.latency_samples
    assert (streamed[..., lat:lat + x.shape[-1]] - offline).abs().max() <= 1e-4


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_impulse_confirms_latency_to_the_sample(kind):
    """The newest sample of a hop reaches the output exactly latency_samples later.

    An impulse at the last sample of a hop is the worst case: the offline reconstruction
    already responds latency_samples before it (so no smaller latency can stream), and the
    stream reproduces that response shifted by exactly latency_samples.
    """
    model = tiny_model(**kind)
    hop, lat = model.hop, model.latency_samples
    position = 5 * hop + hop - 1
    x = torch.zeros(1, 1, 10 * hop)
    x[..., position] = 1.0
    with torch.no_grad():
        base = model.reconstruct(torch.zeros_like(x))
        response = model.reconstruct(x) - base
    earliest = int(torch.nonzero(response[0, 0])[0])  # exact: earlier outputs are bit-identical
    assert earliest == position - lat
    streamed = stream_in_blocks(model, x, [1])
    streamed_base = stream_in_blocks(model, torch.zeros_like(x), [1])
    streamed_response = (streamed - streamed_base)[0, 0]
    assert int(torch.nonzero(streamed_response)[0]) == position


def test_stream_encode_and_decode_halves_match_offline():
    model = tiny_model(family="spectral", backbone="mamba")
    x = torch.randn(1, 1, 40 * model.hop) * 0.3
    with torch.no_grad():
        latent = model.encode(x)
        state = model.init_state(1)
        frames = []
        for start in range(0, x.shape[-1], 37):
            f, state = model.stream_encode(x[..., start:start + 37], state)
            frames.append(f)
    frames = torch.cat(frames, dim=-1)
    assert frames.shape[-1] == 40
    assert (frames - latent.mean[..., :40]).abs().max() <= 1e-5


def test_bidirectional_model_refuses_to_stream_but_runs_offline():
    model = tiny_model(causal=False, family="waveform", backbone="mamba")
    with pytest.raises(StreamingError, match="bidirectional"):
        model.init_state(1)
    x = torch.randn(1, 1, 1000)
    with torch.no_grad():
        y = model.reconstruct(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    # bidirectional: the output at the start depends on the end of the input
    x2 = x.clone()
    x2[..., -50:] += 1.0
    with torch.no_grad():
        assert (model.reconstruct(x2)[..., :8] - y[..., :8]).abs().max() > 0


def test_state_is_not_mutated_and_has_stable_names():
    model = tiny_model(family="spectral", backbone="mamba")
    state = model.init_state(1)
    before = {k: v.clone() for k, v in flatten_state(state).items()}
    with torch.no_grad():
        _, new_state = model.stream(torch.randn(1, 1, 300), state)
    for name, value in flatten_state(state).items():
        assert torch.equal(value, before[name]), name
    assert set(flatten_state(new_state)) == set(before)
    assert any(name.endswith(".ssm") for name in before)
    assert any(name.endswith(".conv") for name in before)
