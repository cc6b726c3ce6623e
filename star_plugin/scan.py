"""Selective scan (Mamba's S6 recurrence) with interchangeable backends.

Semantics follow mamba-ssm's ``selective_scan_fn`` in the ``(batch, channels, length)`` layout,
plus an explicit initial state ``h0`` so that a sequence can be scanned in pieces:

    delta  <- softplus(delta + delta_bias)              (if softplus)
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t      h: (batch, d, N)
    y_t     = <h_t, C_t> + D * u_t ;  y <- y * silu(z)   (if z is given)

Shapes: u, delta, z: (b, d, L); A: (d, N); B, C: (b, N, L), (b, G, N, L) with d % G == 0, or
(d, N) (time-invariant); D, delta_bias: (d,); h0: (b, d, N). Returns (y, h_last).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "ref", "chunked", "cuda")


def _expand_bc(M: torch.Tensor, batch: int, d: int, length: int) -> torch.Tensor:
    """Return B or C as (b, d, N, L) (a broadcastable view, no copy where possible)."""
    if M.dim() == 2:  # (d, N): time-invariant
        return M[None, :, :, None].expand(batch, d, M.shape[1], length)
    if M.dim() == 3:  # (b, N, L): shared by all channels
        return M[:, None, :, :].expand(batch, d, M.shape[1], length)
    if M.dim() == 4:  # (b, G, N, L): one per group of channels
        groups = M.shape[1]
        return M.repeat_interleave(d // groups, dim=1)
    raise ValueError(f"B/C must have 2, 3 or 4 dimensions, got shape {tuple(M.shape)}")


def _check(u, delta, A, B, C, D, z, delta_bias, h0) -> None:
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, channels, length), got shape {tuple(u.shape)}")
    b, d, length = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta shape {tuple(delta.shape)} must equal u shape {tuple(u.shape)}")
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"A must be (channels={d}, N), got shape {tuple(A.shape)}")
    n = A.shape[1]
    for name, M in (("B", B), ("C", C)):
        ok = (
            (M.dim() == 2 and tuple(M.shape) == (d, n))
            or (M.dim() == 3 and tuple(M.shape) == (b, n, length))
            or (M.dim() == 4 and M.shape[0] == b and M.shape[1] > 0 and d % M.shape[1] == 0
                and tuple(M.shape[2:]) == (n, length))
        )
        if not ok:
            raise ValueError(
                f"{name} must be ({d}, {n}), ({b}, {n}, {length}) or ({b}, G, {n}, {length}); "
                f"got shape {tuple(M.shape)}")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and tuple(v.shape) != (d,):
            raise ValueError(f"{name} must be ({d},), got shape {tuple(v.shape)}")
    if z is not None and z.shape != u.shape:
        raise ValueError(f"z shape {tuple(z.shape)} must equal u shape {tuple(u.shape)}")
    if h0 is not None and tuple(h0.shape) != (b, d, n):
        raise ValueError(f"h0 must be ({b}, {d}, {n}), got shape {tuple(h0.shape)}")


def _prepare_delta(delta, delta_bias, softplus):
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if softplus:
        delta = F.softplus(delta)
    return delta


def _finish(y, u, D, z):
    if D is not None:
        y = y + u * D[None, :, None]
    if z is not None:
        y = y * F.silu(z)
    return y


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, h0=None,
                       softplus=True):
    """Plain step-by-step loop in float32: the correctness reference."""
    dtype_out = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    batch, d, length = u.shape
    delta = _prepare_delta(delta, None if delta_bias is None else delta_bias.to(compute), softplus)
    Bx = _expand_bc(B, batch, d, length)
    Cx = _expand_bc(C, batch, d, length)
    h = (torch.zeros(batch, d, A.shape[1], dtype=compute, device=u.device)
         if h0 is None else h0.to(compute))
    # Slice the time steps once with unbind: indexing [..., t] inside the loop would make the
    # backward pass allocate a full-size zero gradient per step (O(L^2) memory traffic).
    deltas, us = delta.unbind(-1), u.unbind(-1)
    Bs, Cs = Bx.unbind(-1), Cx.unbind(-1)
    ys = []
    for t in range(length):
        dt = deltas[t][..., None]
        h = torch.exp(dt * A) * h + dt * Bs[t] * us[t][..., None]
        ys.append((h * Cs[t]).sum(-1))
    y = torch.stack(ys, dim=-1) if ys else u.new_zeros(batch, d, 0)
    y = _finish(y, u, None if D is None else D.to(compute), None if z is None else z.to(compute))
    return y.to(dtype_out), h.to(dtype_out)


def _cuda_available_for(u: torch.Tensor) -> bool:
    if not u.is_cuda:
        return False
    try:
        import selective_scan_cuda  # noqa: F401  (mamba-ssm's compiled kernel)
    except ImportError:
        return False
    return True


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, h0=None,
                   softplus=True, backend="auto"):
    """Run the selective scan; see the module docstring for shapes. Returns (y, h_last)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check(u, delta, A, B, C, D, z, delta_bias, h0)
    if torch.onnx.is_in_onnx_export():  # one ai.star::SelectiveScan node, not a traced loop
        from star_plugin.export.scan_op import export_selective_scan
        return export_selective_scan(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    if backend in ("auto", "cuda") and _cuda_available_for(u):
        from .scan_cuda import selective_scan_cuda
        return selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    if backend == "ref":
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    from .scan_chunked import selective_scan_chunked
    return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
