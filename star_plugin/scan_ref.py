"""The selective scan's reference loop, and the steps every backend shares.

``scan.py`` documents the semantics and shapes and dispatches between backends;
``scan_chunked.py`` (the default CPU backend) and ``export/scan_op.py`` (the ONNX export path)
reuse the input check, the delta preparation and the output gating here, so those rules are
written once and no backend reaches into another's private names.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def expand_bc(M: torch.Tensor, batch: int, d: int, length: int) -> torch.Tensor:
    """Return B or C as (b, d, N, L) (a broadcastable view, no copy where possible)."""
    if M.dim() == 2:  # (d, N): time-invariant
        return M[None, :, :, None].expand(batch, d, M.shape[1], length)
    if M.dim() == 3:  # (b, N, L): shared by all channels
        return M[:, None, :, :].expand(batch, d, M.shape[1], length)
    if M.dim() == 4:  # (b, G, N, L): one per group of channels
        groups = M.shape[1]
        return M.repeat_interleave(d // groups, dim=1)
    raise ValueError(f"B/C must have 2, 3 or 4 dimensions, got shape {tuple(M.shape)}")


def check_inputs(u, delta, A, B, C, D, z, delta_bias, h0) -> None:
    """Raise ValueError unless the arguments have the shapes ``scan.py`` documents."""
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


def prepare_delta(delta, delta_bias, softplus):
    """delta <- softplus(delta + delta_bias), each part only if asked for."""
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if softplus:
        delta = F.softplus(delta)
    return delta


def finish(y, u, D, z):
    """y <- (y + D u) * silu(z), each part only if given."""
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
    delta = prepare_delta(delta, None if delta_bias is None else delta_bias.to(compute), softplus)
    Bx = expand_bc(B, batch, d, length)
    Cx = expand_bc(C, batch, d, length)
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
    y = finish(y, u, None if D is None else D.to(compute), None if z is None else z.to(compute))
    return y.to(dtype_out), h.to(dtype_out)
