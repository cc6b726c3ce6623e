"""The Mamba block: explicit inference state, causal and bidirectional variants."""
import pytest
import torch

from star_plugin.errors import StreamingError
from star_plugin.mamba import BiMamba, MambaLayer, MambaMixer


def test_mixer_step_by_step_equals_forward():
    torch.manual_seed(0)
    mixer = MambaMixer(12, d_state=4, d_conv=4, expand=2)
    x = torch.randn(2, 12, 50)
    with torch.no_grad():
        whole = mixer(x)
        state, pieces = mixer.init_state(2), []
        for start, stop in [(0, 1), (1, 2), (2, 17), (17, 17), (17, 50)]:
            y, state = mixer.step(x[..., start:stop], state)
            pieces.append(y)
    assert torch.allclose(torch.cat(pieces, -1), whole, atol=1e-5)
    assert state["conv"].shape == (2, 24, 3) and state["ssm"].shape == (2, 24, 4)


def test_mixer_is_causal():
    torch.manual_seed(0)
    layer = MambaLayer(8, causal=True, d_state=4)
    x = torch.randn(1, 8, 30)
    x2 = x.clone()
    x2[..., 20:] = torch.randn(1, 8, 10)
    with torch.no_grad():
        assert torch.equal(layer(x)[..., :20], layer(x2)[..., :20])
        assert not torch.equal(layer(x)[..., 20:], layer(x2)[..., 20:])


def test_bidirectional_reads_both_ways_and_refuses_to_stream():
    torch.manual_seed(0)
    layer = MambaLayer(8, causal=False, d_state=4)
    assert isinstance(layer.mixer, BiMamba)
    x = torch.randn(1, 8, 30)
    x2 = x.clone()
    x2[..., -1] += 1.0
    with torch.no_grad():
        assert not torch.allclose(layer(x)[..., 0], layer(x2)[..., 0])
    with pytest.raises(StreamingError, match="bidirectional"):
        layer.init_state(1)


def test_mixer_gradients_reach_every_parameter():
    torch.manual_seed(0)
    mixer = MambaMixer(8, d_state=4)
    mixer(torch.randn(2, 8, 40)).pow(2).mean().backward()
    for name, p in mixer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
