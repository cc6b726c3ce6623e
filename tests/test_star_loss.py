"""STAR regulariser against hand-computed values."""
import json
import math

import pytest
import torch

from star_plugin.errors import ConfigError
from star_plugin.star_loss import (
    StarRegularizer,
    beta_field,
    kl_nats_per_frame,
    kl_per_channel,
    kl_per_element,
    rate_bits_per_second,
)

E = math.e
LN2 = math.log(2.0)


# ---------------------------------------------------------------- beta field

def test_star_curve_hand_values():
    # C=5, beta_min=0, beta_max=1, gamma=2: ((c-1)/4)^2 = 0, 1/16, 4/16, 9/16, 1
    b = beta_field(5, "star", beta_min=0.0, beta_max=1.0, gamma=2.0)
    assert b.dtype == torch.float32 and b.shape == (5,)
    assert b.tolist() == pytest.approx([0.0, 0.0625, 0.25, 0.5625, 1.0], abs=1e-7)


def test_star_curve_with_offset():
    # C=3, beta_min=0.1, beta_max=0.5, gamma=3: 0.1 + 0.4 * [0, 1/8, 1] = [0.1, 0.15, 0.5]
    b = beta_field(3, "star", beta_min=0.1, beta_max=0.5, gamma=3.0)
    assert b.tolist() == pytest.approx([0.1, 0.15, 0.5], abs=1e-7)


def test_linear_curve():
    b = beta_field(5, "linear", beta_min=0.0, beta_max=1.0, gamma=7.0)  # gamma ignored
    assert b.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-7)


def test_step_curve():
    b = beta_field(4, "step", beta_min=0.01, beta_max=0.2, step_fraction=0.5)
    assert b.tolist() == pytest.approx([0.01, 0.01, 0.2, 0.2], abs=1e-7)
    b = beta_field(5, "step", beta_min=0.0, beta_max=1.0, step_fraction=0.2)  # round(1.0) = 1
    assert b.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert beta_field(3, "step", 0.0, 1.0, step_fraction=0.0).tolist() == [1.0, 1.0, 1.0]
    assert beta_field(3, "step", 0.0, 1.0, step_fraction=1.0).tolist() == [0.0, 0.0, 0.0]


def test_uniform_is_mean_of_star_field():
    # star field for C=5, 0..1, gamma=2 is [0, 1/16, 4/16, 9/16, 1]; sum = 30/16, mean = 3/8
    b = beta_field(5, "uniform", beta_min=0.0, beta_max=1.0, gamma=2.0)
    assert b.tolist() == pytest.approx([0.375] * 5, abs=1e-7)
    star = beta_field(64, "star")
    uni = beta_field(64, "uniform")
    assert float(uni.sum()) == pytest.approx(float(star.sum()), rel=1e-6)  # same total weight


def test_uniform_explicit_beta():
    assert beta_field(3, "uniform", beta=0.02).tolist() == pytest.approx([0.02] * 3)


def test_single_channel():
    for curve in ("star", "linear"):
        assert beta_field(1, curve, beta_min=0.003, beta_max=0.5).tolist() == \
            pytest.approx([0.003])
    assert beta_field(1, "uniform", beta_min=0.003, beta_max=0.5).tolist() == \
        pytest.approx([0.003])


@pytest.mark.parametrize("kwargs, words", [
    (dict(channels=0), ["channels", ">= 1"]),
    (dict(channels=2.5), ["channels"]),
    (dict(channels=4, curve="cosine"), ["curve", "'star'", "'linear'", "'step'", "'uniform'"]),
    (dict(channels=4, beta_min=-1.0), ["beta_min", ">= 0"]),
    (dict(channels=4, beta_min=0.5, beta_max=0.1), ["beta_max", "beta_min"]),
    (dict(channels=4, gamma=1.0), ["gamma", "> 1"]),
    (dict(channels=4, gamma=0.5), ["gamma", "> 1"]),
    (dict(channels=4, curve="step", step_fraction=1.5), ["step_fraction", "[0, 1]"]),
    (dict(channels=4, curve="star", beta=0.1), ["beta", "uniform"]),
    (dict(channels=4, curve="uniform", beta=-0.1), ["beta", ">= 0"]),
    (dict(channels=4, beta_max=float("nan")), ["beta_max", "finite"]),
])
def test_bad_arguments_raise_config_error(kwargs, words):
    with pytest.raises(ConfigError) as exc:
        beta_field(**kwargs)
    for w in words:
        assert w in str(exc.value)


# ---------------------------------------------------------------- KL

def test_kl_per_element_hand_values():
    mu = torch.tensor([1.0, 0.0, 0.0, 2.0])
    logsigma = torch.tensor([0.0, 1.0, 0.0, -1.0])
    expected = [
        0.5,                                 # mu=1, sigma=1: 0.5 * (1 + 1 - 0 - 1)
        0.5 * (E ** 2 - 2.0 - 1.0),          # mu=0, sigma=e: 0.5 * (e^2 - log e^2 - 1)
        0.0,                                 # the prior itself
        0.5 * (4.0 + E ** -2 + 2.0 - 1.0),   # mu=2, sigma=1/e
    ]
    assert kl_per_element(mu, logsigma).tolist() == pytest.approx(expected, rel=1e-6)


def test_kl_per_channel_sums_frames_and_averages_batch():
    # batch 2, C 2, frames 3. Channel 0: mu=1 everywhere -> 0.5 per element -> 1.5 per sequence.
    # Channel 1: batch item 0 has mu=0 (KL 0), item 1 has mu=2 (KL 2 per element) -> 6 and 0,
    # mean over batch -> 3.
    mu = torch.zeros(2, 2, 3)
    mu[:, 0] = 1.0
    mu[1, 1] = 2.0
    logsigma = torch.zeros(2, 2, 3)
    assert kl_per_channel(mu, logsigma).tolist() == pytest.approx([1.5, 3.0])
    assert kl_nats_per_frame(mu, logsigma).tolist() == pytest.approx([0.5, 1.0])


def test_kl_shape_errors():
    with pytest.raises(ValueError, match="logsigma"):
        kl_per_channel(torch.zeros(1, 2, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="batch, channels, frames"):
        kl_per_channel(torch.zeros(2, 3), torch.zeros(2, 3))


def test_rate_bits_per_second():
    # [ln 2, 2 ln 2] nats/frame = 3 bits/frame; at 10 frames/s = 30 bits/s
    assert rate_bits_per_second(torch.tensor([LN2, 2 * LN2]), 10.0) == pytest.approx(30.0)
    assert rate_bits_per_second([LN2], 21.5) == pytest.approx(21.5)
    with pytest.raises(ValueError, match="frame_rate"):
        rate_bits_per_second([1.0], 0)


# ---------------------------------------------------------------- module

def test_regularizer_loss_hand_value():
    # C=3, beta = [0, 0.5, 1] (linear 0..1 over 3 channels), frames 2, batch 1.
    # KL per element: ch0 mu=1 -> 0.5; ch1 mu=1 -> 0.5; ch2 mu=2 -> 2.0.
    # per frame (the loss's unit, whatever the crop length): loss = 0*0.5 + 0.5*0.5 + 1*2 = 2.25
    reg = StarRegularizer(3, curve="linear", beta_min=0.0, beta_max=1.0)
    assert reg.beta.tolist() == pytest.approx([0.0, 0.5, 1.0])
    mu = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]])
    loss, stats = reg(mu, torch.zeros_like(mu))
    assert loss.dim() == 0
    assert float(loss) == pytest.approx(0.0 * 0.5 + 0.5 * 0.5 + 1.0 * 2)
    assert stats["kl_per_channel"].tolist() == pytest.approx([0.5, 0.5, 2.0])  # nats/frame
    assert stats["kl_total"] == pytest.approx(3.0)
    assert stats["star_loss"] == pytest.approx(2.25)
    assert not stats["kl_per_channel"].requires_grad
    loss_w, _ = reg(mu, torch.zeros_like(mu), weight=0.1)  # warm-up scales the whole term
    assert float(loss_w) == pytest.approx(0.225)
    # doubling the crop (same content per frame) leaves the loss unchanged
    loss_long, _ = reg(torch.cat([mu, mu], dim=2), torch.zeros(1, 3, 4))
    assert float(loss_long) == pytest.approx(float(loss))


def test_gradient_flows_to_mu_and_logsigma():
    reg = StarRegularizer(4, beta_min=0.1, beta_max=1.0)
    mu = torch.randn(2, 4, 5, requires_grad=True)
    logsigma = (0.3 * torch.randn(2, 4, 5)).requires_grad_(True)
    loss, _ = reg(mu, logsigma)
    loss.backward()
    # d/dmu of beta_c * 0.5 * mu^2, mean over batch (B=2) and frames (F=5): beta_c * mu / 10
    expected_mu = reg.beta[None, :, None] * mu.detach() / 10
    assert torch.allclose(mu.grad, expected_mu, atol=1e-6)
    # d/dlogsigma: beta_c * 0.5 * (2 sigma^2 - 2) / 10 = beta_c * (sigma^2 - 1) / 10
    expected_ls = reg.beta[None, :, None] * (torch.exp(2 * logsigma.detach()) - 1) / 10
    assert torch.allclose(logsigma.grad, expected_ls, atol=1e-6)


def test_regularizer_channel_mismatch():
    reg = StarRegularizer(4)
    with pytest.raises(ValueError, match="4"):
        reg(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))


def test_config_round_trip_and_state_dict():
    reg = StarRegularizer(8, curve="step", beta_min=0.001, beta_max=0.3, step_fraction=0.25)
    cfg = json.loads(json.dumps(reg.to_config()))
    reg2 = StarRegularizer.from_config(cfg)
    assert reg2.to_config() == reg.to_config()
    assert torch.equal(reg2.beta, reg.beta)
    assert "beta" not in reg.state_dict()  # derived from the config, never from a checkpoint
    uni = StarRegularizer.from_config({"channels": 4, "curve": "uniform", "beta": 0.05})
    assert uni.beta.tolist() == pytest.approx([0.05] * 4)


def test_from_config_errors():
    with pytest.raises(ConfigError, match="betta"):
        StarRegularizer.from_config({"channels": 4, "betta": 1})
    with pytest.raises(ConfigError, match="channels"):
        StarRegularizer.from_config({"curve": "star"})
    with pytest.raises(ConfigError, match="curve"):
        StarRegularizer.from_config({"channels": 4, "curve": "exp"})


def test_fitted_rate_ignores_drift_and_constant_channels():
    from star_plugin.star_loss import kl_to_fitted_gaussian
    torch.manual_seed(0)
    mu = 0.5 * torch.randn(4, 3, 200)
    mu[:, 1] += 3.0          # same information as channel 0, drifted away from 0
    mu[:, 2] = 5.0           # says the same thing in every frame: no information
    logsigma = torch.full_like(mu, -1.0)
    prior = kl_nats_per_frame(mu, logsigma)
    fitted = kl_to_fitted_gaussian(mu, logsigma)
    assert prior[1] > prior[0] + 3.0                       # the prior charges the drift
    assert fitted[1] == pytest.approx(float(fitted[0]), rel=0.1)  # the fitted one does not
    assert float(fitted[2]) == pytest.approx(0.0, abs=1e-6)
    assert torch.all(fitted <= prior + 1e-6)
