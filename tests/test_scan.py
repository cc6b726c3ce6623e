"""Selective scan backends: chunked vs the step-loop reference vs an independent parallel scan."""
import sys
import types

import pytest
import torch
import torch.nn.functional as F

from star_plugin.scan import selective_scan, selective_scan_ref
from star_plugin.scan_chunked import selective_scan_chunked
from star_plugin.scan_cuda import selective_scan_cuda

NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0")
LAYOUTS = ("dN", "bNL", "bGNL")


def make_inputs(b=2, d=8, n=4, length=64, layout="bNL", strong=False, seed=0,
                dtype=torch.float32, groups=2):
    """Random inputs in float64, cast to dtype; every optional argument present."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    u = randn(b, d, length)
    if strong:
        # delta in about [3, 5] after softplus; half of the channels with A in about [-10, -7.4]:
        # per-step delta*A reaches about -50, all others spread over [-37, -0.4].
        delta = rand(b, d, length) * 2.0 + 3.0
        A = -torch.exp(rand(d, n) * 4.0 - 2.0)
        A[: d // 2] = -torch.exp(rand(d // 2, n) * 0.3 + 2.0)
    else:
        delta = randn(b, d, length) * 0.5 - 0.5
        A = -torch.exp(randn(d, n) * 0.7)
    if layout == "dN":
        B, C = randn(d, n), randn(d, n)
    elif layout == "bNL":
        B, C = randn(b, n, length), randn(b, n, length)
    else:
        B, C = randn(b, groups, n, length), randn(b, groups, n, length)
    args = dict(u=u, delta=delta, A=A, B=B, C=C, D=randn(d), z=randn(b, d, length),
                delta_bias=randn(d) * 0.1, h0=randn(b, d, n))
    return {k: v.to(dtype) for k, v in args.items()}


def leaves(args):
    return {k: v.detach().clone().requires_grad_(True) for k, v in args.items()}


def run(args, backend, **kw):
    return selective_scan(**args, backend=backend, **kw)


def min_log_decay(args):
    dt = F.softplus(args["delta"] + args["delta_bias"][:, None])
    return (dt[..., None] * args["A"][None, :, None, :]).min().item()


# ------------------------------------------------------------------ forward equals ref

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("length", [1, 7, 64, 1000, 4096])
@pytest.mark.parametrize("strong", [False, True], ids=["ordinary", "strong_decay"])
def test_chunked_matches_ref(layout, length, strong):
    args = make_inputs(length=length, layout=layout, strong=strong, seed=length)
    if strong and length >= 64:
        assert -52.0 < min_log_decay(args) < -45.0  # the regime this test is about
    y_ref, h_ref = run(args, "ref")
    y, h = run(args, "chunked")
    assert y.shape == y_ref.shape and h.shape == h_ref.shape
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-4)


def test_chunked_float64_is_tight():
    args = make_inputs(length=300, layout="bGNL", strong=True, dtype=torch.float64)
    y_ref, h_ref = run(args, "ref")
    y, h = run(args, "chunked")
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(h, h_ref, atol=1e-10, rtol=1e-10)


def test_growing_state_matches_ref():
    # Positive A: per-step delta*A up to about +1, the state grows by up to ~e^40; no NaN.
    args = make_inputs(length=100, layout="bNL", seed=3)
    g = torch.Generator().manual_seed(4)
    args["A"] = torch.rand(args["A"].shape, generator=g) * 3.5 - 3.0  # in [-3, 0.5]
    args["delta"] = torch.rand(args["u"].shape, generator=g) * 2.0 - 1.0
    args["delta_bias"] = torch.zeros_like(args["delta_bias"])
    dt = F.softplus(args["delta"])
    assert 0.5 < (dt[..., None] * args["A"][None, :, None, :]).max() <= 1.0
    y_ref, h_ref = run(args, "ref")
    y, h = run(args, "chunked")
    assert h_ref.abs().max() > 1e6 and torch.isfinite(y_ref).all()
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-4)


def test_without_optional_arguments_and_softplus_off():
    args = make_inputs(length=150, layout="bNL")
    args = {k: args[k] for k in ("u", "delta", "A", "B", "C")}
    args["delta"] = args["delta"].exp()  # positive without softplus
    y_ref, h_ref = run(args, "ref", softplus=False)
    y, h = run(args, "chunked", softplus=False)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ gradients

def _grads(args, backend, seed=7):
    x = leaves(args)
    y, h = run(x, backend)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.dtype)
    loss = (y * w).sum() + (h * h).sum()
    return torch.autograd.grad(loss, [x[k] for k in NAMES])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("strong", [False, True], ids=["ordinary", "strong_decay"])
def test_gradients_match_ref(layout, strong):
    args = make_inputs(length=200, layout=layout, strong=strong, seed=11)
    for name, g_ref, g in zip(NAMES, _grads(args, "ref"), _grads(args, "chunked")):
        assert g.shape == args[name].shape, name
        assert torch.isfinite(g).all(), name
        assert g_ref.abs().max() > 0, name
        torch.testing.assert_close(g, g_ref, atol=1e-4, rtol=1e-4, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradients_match_ref_float64(layout):
    args = make_inputs(length=200, layout=layout, strong=True, seed=12, dtype=torch.float64)
    for name, g_ref, g in zip(NAMES, _grads(args, "ref"), _grads(args, "chunked")):
        torch.testing.assert_close(g, g_ref, atol=1e-9, rtol=1e-9, msg=lambda m: f"{name}: {m}")


def test_gradient_of_a_subset_of_inputs():
    args = make_inputs(length=90, layout="bNL")
    for wanted in (["A"], ["C", "h0"], ["delta"]):
        out = {}
        for backend in ("ref", "chunked"):
            x = {k: v.clone().requires_grad_(k in wanted) for k, v in args.items()}
            y, h = run(x, backend)
            out[backend] = torch.autograd.grad(y.sum() + h.sum(), [x[k] for k in wanted])
        for a, b in zip(out["ref"], out["chunked"]):
            torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("length", [1, 5])
def test_gradcheck_float64(layout, length):
    args = make_inputs(b=2, d=4, n=3, length=length, layout=layout, dtype=torch.float64,
                       seed=length)
    x = leaves(args)

    def f(*tensors):
        return selective_scan_chunked(*tensors[:5], D=tensors[5], z=tensors[6],
                                      delta_bias=tensors[7], h0=tensors[8])

    assert torch.autograd.gradcheck(f, tuple(x[k] for k in NAMES), eps=1e-6, atol=1e-6)


def test_gradcheck_float64_no_h0_no_softplus():
    args = make_inputs(b=1, d=2, n=2, length=9, layout="bNL", dtype=torch.float64)
    x = leaves({k: args[k] for k in ("u", "delta", "A", "B", "C")})
    with torch.no_grad():
        x["delta"].copy_(x["delta"].exp())

    def f(u, delta, A, B, C):
        return selective_scan_chunked(u, delta, A, B, C, softplus=False)

    assert torch.autograd.gradcheck(f, tuple(x.values()), eps=1e-6, atol=1e-6)


# ------------------------------------------------------------------ extreme inputs

def test_no_nan_with_huge_delta_long_sequence():
    length = 8192
    args = make_inputs(b=1, d=4, n=4, length=length, layout="bNL", seed=5)
    args["delta"] = 1e3 + 10.0 * torch.randn(args["delta"].shape,
                                             generator=torch.Generator().manual_seed(6))
    args["A"] = -torch.exp(torch.randn(args["A"].shape, generator=torch.Generator().manual_seed(7)))
    x = leaves(args)
    y, h = run(x, "chunked")
    assert torch.isfinite(y).all() and torch.isfinite(h).all()
    (y.square().mean() + h.square().mean()).backward()
    for k in NAMES:
        assert torch.isfinite(x[k].grad).all(), k
    # Here a_t ~ 0 and h_t ~ delta_t B_t u_t (~1e3), so y_t is a sum of large terms: float32
    # rounding (in a different order in each backend) allows an error relative to the size of
    # those terms, elementwise, rather than to y_t itself. Compare both with a float64 truth.
    truth_y, truth_h = run({k: v.double() for k, v in args.items()}, "ref")
    y_ref, h_ref = run(args, "ref")
    dt = F.softplus(args["delta"] + args["delta_bias"][:, None]).double()
    terms = (dt * args["u"].abs()) * (args["B"].abs() * args["C"].abs()).sum(1, keepdim=True)
    terms = (terms + (args["D"][:, None] * args["u"]).abs()) * F.silu(args["z"]).abs()
    bound = 1e-6 * terms + 1e-6  # about 8 float32 ulps of the terms
    assert terms.max() > 100.0
    for got in (y.detach(), y_ref):
        assert ((got.double() - truth_y).abs() <= bound).all()
    h_bound = 1e-6 * truth_h.abs() + 1e-6
    for got in (h.detach(), h_ref):
        assert ((got.double() - truth_h).abs() <= h_bound).all()


# ------------------------------------------------------------------ independent implementation

@pytest.mark.parametrize("layout", ["bNL", "bGNL"])
def test_ref_matches_mambapy_pscan(layout):
    pscan_mod = pytest.importorskip("mambapy.pscan")
    args = make_inputs(b=2, d=6, n=4, length=100, layout=layout, dtype=torch.float64, seed=21)
    b, d, length = args["u"].shape
    n = args["A"].shape[1]
    dt = F.softplus(args["delta"] + args["delta_bias"][:, None])
    Bx, Cx = args["B"], args["C"]
    if Bx.dim() == 3:
        Bx, Cx = Bx[:, None], Cx[:, None]
    Bx = Bx.repeat_interleave(d // Bx.shape[1], dim=1)  # (b, d, N, L)
    Cx = Cx.repeat_interleave(d // Cx.shape[1], dim=1)
    # mambapy layout: (batch, L, d, N); H_t = a_t H_{t-1} + X_t with H_{-1} = 0, so fold h0 into X_0
    a = torch.exp(dt[..., None] * args["A"][None, :, None, :]).permute(0, 2, 1, 3)
    X = (dt[:, :, None, :] * Bx * args["u"][:, :, None, :]).permute(0, 3, 1, 2).clone()
    X[:, 0] += a[:, 0] * args["h0"]
    H = pscan_mod.pscan(a.contiguous(), X.contiguous())  # (b, L, d, N)
    assert H.shape == (b, length, d, n)
    y = (H.permute(0, 2, 3, 1) * Cx).sum(2) + args["D"][:, None] * args["u"]
    y = y * F.silu(args["z"])
    y_ref, h_ref = selective_scan_ref(**args)
    torch.testing.assert_close(y_ref, y, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(h_ref, H[:, -1], atol=1e-10, rtol=1e-10)


# ------------------------------------------------------------------ streaming in pieces

@pytest.mark.parametrize("backend", ["ref", "chunked"])
def test_two_pieces_equal_one_scan(backend):
    args = make_inputs(length=300, layout="bGNL", seed=31)
    cut = 123

    def part(sl):
        out = dict(args)
        for k in ("u", "delta", "z"):
            out[k] = args[k][..., sl]
        for k in ("B", "C"):
            out[k] = args[k][..., sl]
        return out

    y_all, h_all = run(args, backend)
    first = part(slice(0, cut))
    y1, h1 = run(first, backend)
    second = part(slice(cut, None))
    second["h0"] = h1
    y2, h2 = run(second, backend)
    torch.testing.assert_close(torch.cat([y1, y2], dim=-1), y_all, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h2, h_all, atol=1e-5, rtol=1e-4)


def test_two_pieces_gradient_flows_through_state():
    args = make_inputs(length=200, layout="bNL", seed=32)
    x = leaves(args)
    y_all, h_all = run(x, "chunked")
    g_all = torch.autograd.grad(y_all.sum() + h_all.sum(), [x["u"], x["h0"], x["A"]])
    x = leaves(args)
    cut = 77
    p1 = {k: (v[..., :cut] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    p2 = {k: (v[..., cut:] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    y1, h1 = run(p1, "chunked")
    p2["h0"] = h1
    y2, h2 = run(p2, "chunked")
    g_split = torch.autograd.grad(y1.sum() + y2.sum() + h2.sum(), [x["u"], x["h0"], x["A"]])
    for a, b in zip(g_all, g_split):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------ edge cases and errors

@pytest.mark.parametrize("backend", ["ref", "chunked"])
def test_length_zero(backend):
    args = make_inputs(length=0, layout="bNL")
    y, h = run(args, backend)
    assert y.shape == (2, 8, 0)
    torch.testing.assert_close(h, args["h0"])
    del args["h0"]
    y, h = run(args, backend)
    assert y.shape == (2, 8, 0) and torch.equal(h, torch.zeros(2, 8, 4))


def test_low_precision_inputs_keep_dtype():
    args = make_inputs(length=40, layout="bNL")
    half = {k: v.to(torch.bfloat16) for k, v in args.items()}
    y, h = run(half, "chunked")
    assert y.dtype == torch.bfloat16 and h.dtype == torch.bfloat16
    y_ref, _ = run({k: v.float() for k, v in half.items()}, "ref")
    torch.testing.assert_close(y.float(), y_ref, atol=0.1, rtol=0.05)


def _bad(name):
    args = make_inputs(b=2, d=8, n=4, length=10, layout="bNL")
    bad = {
        "u": torch.zeros(2, 8),
        "delta": torch.zeros(2, 8, 11),
        "A": torch.zeros(7, 4),
        "B": torch.zeros(2, 4, 9),
        "C": torch.zeros(2, 3, 4, 10),  # 3 groups do not divide 8 channels
        "D": torch.zeros(9),
        "z": torch.zeros(2, 8, 9),
        "delta_bias": torch.zeros(8, 1),
        "h0": torch.zeros(2, 8, 5),
    }[name]
    args[name] = bad
    return args


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", ["ref", "chunked"])
def test_bad_shapes_name_the_argument(name, backend):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        run(_bad(name), backend)


def test_zero_groups_and_bad_backend_are_value_errors():
    args = make_inputs(length=10, layout="bNL")
    args["B"] = torch.zeros(2, 0, 4, 10)
    with pytest.raises(ValueError, match=r"^B\b"):
        run(args, "chunked")
    with pytest.raises(ValueError, match="backend"):
        run(make_inputs(length=10), "fast")


# ------------------------------------------------------------------ cuda wrapper (no GPU here)

def test_cuda_wrapper_falls_back_for_initial_state_and_float64():
    args = make_inputs(length=50, layout="bNL")  # non-zero h0: mamba-ssm cannot take it
    y, h = selective_scan_cuda(**args)
    y_ref, h_ref = run(args, "ref")
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-4)
    args64 = {k: v.double() for k, v in args.items()}
    args64["h0"] = None
    y, _ = selective_scan_cuda(**args64)
    assert y.dtype == torch.float64


def test_cuda_wrapper_calls_mamba_ssm_as_documented(monkeypatch):
    """A stand-in for mamba-ssm with its real signature and dtype rules checks the call."""
    calls = []

    def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                          delta_softplus=False, return_last_state=False, cu_seqlens=None):
        assert A.dtype == torch.float32 and D.dtype == torch.float32
        assert delta_bias.dtype == torch.float32
        assert delta.dtype == u.dtype and z.dtype == u.dtype and B.dtype == u.dtype
        assert return_last_state is True
        calls.append(delta_softplus)
        y, h = selective_scan_ref(u.float(), delta.float(), A, B.float(), C.float(), D, z.float(),
                                  delta_bias, None, delta_softplus)
        return y.to(u.dtype), h.float().requires_grad_(u.requires_grad)

    mod = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    mod.selective_scan_fn = selective_scan_fn
    for name in ("mamba_ssm", "mamba_ssm.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "mamba_ssm.ops.selective_scan_interface", mod)

    args = make_inputs(length=30, layout="bNL")
    args["h0"] = torch.zeros_like(args["h0"])  # zero and not requiring grad: mamba-ssm path
    y, h = selective_scan_cuda(**args, softplus=True)
    assert calls == [True]
    assert not h.requires_grad  # mamba-ssm drops dL/dh_last: returned detached
    y_ref, h_ref = run(args, "ref")
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------ benchmark helper

def test_bench_scan_smoke():
    from star_plugin.bench.scan_speed import bench_scan, format_scan_results

    before = torch.get_num_threads()
    result = bench_scan(threads=1, d=8, n=4, length=64, repeats=2)
    assert torch.get_num_threads() == before
    assert set(result["backends"]) == {"ref", "chunked"}
    for r in result["backends"].values():
        assert 0 < r["min_s"] <= r["median_s"]
    assert result["ratio_chunked_over_ref"] == pytest.approx(
        result["backends"]["ref"]["median_s"] / result["backends"]["chunked"]["median_s"])
    table = format_scan_results(result)
    assert "chunked" in table and "ref" in table and "L=64" in table
