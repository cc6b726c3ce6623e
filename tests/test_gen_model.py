"""STAR-Gen: the hybrid attention mask (tested directly and through the model), rectified-flow
training on a tiny overfit case, deterministic sampling, classifier-free guidance, errors."""
import numpy as np
import pytest
import torch

from star_plugin.errors import ConfigError
from star_plugin.gen.flow import flow_loss, guided_velocity, integrate
from star_plugin.gen.model import GenConfig, StarGen, hybrid_mask

from conftest import tiny_model

TINY = GenConfig(latent_channels=8, text_dim=12, width=32, layers=2, heads=2, max_frames=64,
                 max_text_tokens=8)


def _gen(seed=0):
    torch.manual_seed(seed)
    model = StarGen(TINY)
    with torch.no_grad():  # a trained model's head is not zero: make every path carry signal
        model.head.weight.normal_(0, 0.2)
    return model.eval()


def test_mask_is_causal_over_text_and_bidirectional_over_audio():
    text_mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    audio_mask = torch.tensor([[True, True, True], [True, True, False]])
    m = hybrid_mask(text_mask, audio_mask)[:, 0]
    assert m.shape == (2, 7, 7)
    t, a = slice(0, 4), slice(4, 7)
    # example 1 (all text real): text causal, text never sees audio
    assert torch.equal(m[1, t, t], torch.ones(4, 4, dtype=torch.bool).tril())
    assert not m[1, t, a].any()
    # audio sees all real text and all real audio, both directions
    assert m[1, a, t].all()
    assert torch.equal(m[1, 4:6, 4:7], torch.tensor([[True, True, False]] * 2))
    assert m[1, 4, 5] and m[1, 5, 4]  # earlier frame sees a later one and back
    # padding is never attended to by real tokens
    assert not m[0, :, 3][[0, 1, 2, 4, 5, 6]].any()
    assert m[0, 3, 3]  # a padded row sees itself only (finite softmax)


def test_model_attention_follows_the_mask():
    model = _gen()
    z = torch.randn(1, 8, 10)
    t = torch.tensor([0.4])
    text = torch.randn(1, 5, 12)
    mask = torch.tensor([[True, True, True, False, False]])
    with torch.no_grad():
        base = model(z, t, text, mask)
        # padded text tokens change nothing
        other = text.clone()
        other[:, 3:] = torch.randn(1, 2, 12) * 10
        assert torch.equal(model(z, t, other, mask), base)
        # a real text token changes every frame; the last frame changes the first (bidirectional)
        other = text.clone()
        other[:, 2] += 1.0
        assert (model(z, t, other, mask) - base).abs().amax(dim=1).min() > 0
        z2 = z.clone()
        z2[:, :, -1] += 1.0
        assert (model(z2, t, text, mask)[:, :, 0] - base[:, :, 0]).abs().max() > 0
        # padding a batch's audio does not change the real frames
        padded = torch.cat([z, torch.randn(1, 8, 4)], dim=2)
        amask = torch.tensor([[True] * 10 + [False] * 4])
        assert torch.allclose(model(padded, t, text, mask, amask)[:, :, :10], base, atol=1e-5)


def test_patched_tokens_keep_frames_in_order_and_ignore_padding():
    torch.manual_seed(0)
    model = StarGen(GenConfig(**{**TINY.to_dict(), "patch": 2}))
    with torch.no_grad():
        model.head.weight.normal_(0, 0.2)
        model.audio_in.weight[:, 8:] = 0  # the token reads only its first frame ...
        model.head.weight[8:] = 0         # ... and writes only its first frame
    z = torch.randn(1, 8, 11)  # odd length: the last token is half padding
    t, text, mask = torch.tensor([0.3]), torch.randn(1, 3, 12), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        base = model(z, t, text, mask)
        assert base.shape == (1, 8, 11)
        assert base[:, :, 1::2].abs().max() == 0 and base[:, :, 0::2].abs().min() > 0
        z2 = z.clone()
        z2[:, :, 1::2] += 5.0  # second frames are invisible to this model: nothing changes
        assert torch.equal(model(z2, t, text, mask), base)
        # audio padding that fills whole tokens changes nothing in the real frames
        padded = torch.cat([z, torch.randn(1, 8, 5)], dim=2)
        amask = torch.tensor([[True] * 11 + [False] * 5])
        assert torch.allclose(model(padded, t, text, mask, amask)[:, :, :11], base, atol=1e-5)


@pytest.mark.parametrize("patch", [1, 2])
def test_flow_loss_decreases_on_a_tiny_overfit_case(patch):
    torch.manual_seed(0)
    model = StarGen(GenConfig(**{**TINY.to_dict(), "patch": patch}))
    z1 = torch.randn(2, 8, 12) * 2
    text = torch.randn(2, 4, 12)
    mask = torch.ones(2, 4, dtype=torch.bool)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(400 * patch):  # a patched token carries twice the frames to learn
        loss = flow_loss(model, z1, text, mask, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    # and the learned flow carries noise towards the right example for each prompt
    with torch.no_grad():
        z0 = torch.randn(2, 8, 12, generator=torch.Generator().manual_seed(5))
        out = integrate(guided_velocity(model, 1.0, text, mask), z0, 16, "midpoint")
    err_right = (out - z1).pow(2).mean().item()
    err_swapped = (out - z1.flip(0)).pow(2).mean().item()
    assert err_right < 0.5 * err_swapped


def test_sampling_is_deterministic_and_cfg_zero_ignores_the_prompt():
    model = _gen()
    text_a, text_b = torch.randn(1, 3, 12), torch.randn(1, 5, 12)
    mask_a, mask_b = torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 5, dtype=torch.bool)
    z0 = torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for solver in ("euler", "midpoint", "heun"):
            a1 = integrate(guided_velocity(model, 3.0, text_a, mask_a), z0, 4, solver)
            a2 = integrate(guided_velocity(model, 3.0, text_a, mask_a), z0, 4, solver)
            assert torch.equal(a1, a2)
        b = integrate(guided_velocity(model, 3.0, text_b, mask_b), z0, 4)
        assert (a1 - b).abs().max() > 1e-4
        u_a = integrate(guided_velocity(model, 0.0, text_a, mask_a), z0, 4)
        u_b = integrate(guided_velocity(model, 0.0, text_b, mask_b), z0, 4)
        assert torch.equal(u_a, u_b)


def test_bad_settings_get_clear_errors():
    model = _gen()
    with pytest.raises(ConfigError, match="solver"):
        integrate(lambda z, t: z, torch.zeros(1, 8, 4), 4, "rk45")
    with pytest.raises(ConfigError, match="steps"):
        integrate(lambda z, t: z, torch.zeros(1, 8, 4), 0)
    with pytest.raises(ValueError, match="max_frames 64"):
        model(torch.zeros(1, 8, 65), torch.zeros(1))
    with pytest.raises(ConfigError, match="heads"):
        GenConfig(width=30, heads=4).validate()


def test_text_encoder_runs_offline_and_rejects_bad_prompts():
    from star_plugin.gen.text import TextEncoder

    enc = TextEncoder(max_tokens=16)
    states, mask = enc.encode(["warm analog pad", "a dog barking in the rain"])
    assert states.shape[0] == 2 and states.shape[2] == 384
    assert mask[0].sum() < mask[1].sum() and not mask[0, -1]
    assert torch.isfinite(states).all() and states[1].abs().mean() > 0.01
    again, _ = enc.encode(["warm   analog pad"])  # whitespace is normalised
    assert torch.equal(again[0, :mask[0].sum()], states[0, :mask[0].sum()])
    with pytest.raises(ConfigError, match="prompt is empty"):
        enc.encode(["   "])
    with pytest.raises(ConfigError, match="tokens long; this generator reads at most 16"):
        enc.encode(["a very long prompt " * 10])
    with pytest.raises(ConfigError, match="under 500"):
        enc.encode(["x" * 600])
