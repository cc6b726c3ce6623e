"""Chunked selective scan: the default CPU backend.

Form: a two-level *linear* scan (no log-space cumulative sums, no clamping), with a hand-written
backward that is the same scan run in reverse.

The L steps are cut into ``n_chunks`` chunks of ``chunk_len`` steps (both about sqrt(L),
chunk_len <= 64), and all states are kept in one time-major (L, batch, N, d) buffer, so that
"step t of every chunk" is one strided tensor:

1. inside chunks, for t = 0..chunk_len-1, every chunk at once from a zero state:
   ``a[:, t] = exp(delta[:, t] A)``,
   ``h[:, t] = a[:, t] * h[:, t-1] + delta[:, t] B[:, t] u[:, t]``;
2. across chunks: ``H_c = P_c * H_{c-1} + h_local[c, last]`` (n_chunks small steps; H_{-1} = h0),
   with the whole-chunk decay ``P_c = exp(A * sum_chunk(delta))`` computed from the small
   (L, b, d) delta in float64;
3. correction: ``h[:, t] += carry_t`` with ``carry_t = a[:, t] * carry_{t-1}``, carry_{-1} = H_{c-1}
   (chunk_len vectorised steps).

So a forward pass is about 3*sqrt(L) tensor operations instead of ~5 L, and the backward
(``_ChunkedScan.backward``) runs the adjoint recurrence G_t = dL/dh_t + a_{t+1} G_{t+1} with the
same three phases in reverse, then forms every parameter gradient with a few batched contractions.
Nothing per step is recorded by autograd: forward saves two state-sized buffers (a and h, in the
compute dtype) and backward allocates one more (G); no float64 state-sized tensors.

Why it is exact (error bound). Everything is the reference recurrence re-associated, never
rescaled. a_t is computed exactly as in the reference (same exp of the same product); phase 1
is the reference's step (x_t = delta_t B_t u_t rounded in a different order); phases 2-3 only
multiply decays and add; P_c = exp(A * sum delta) is the product of a chunk's decays rounded
once (float64 exponent) instead of chunk_len times. Each term of
h_t = sum_s (prod_{s<r<=t} a_r) x_s (+ the h0 term) thus carries a relative rounding error of at
most about (chunk_len + n_chunks + 3) eps, against (t + 2) eps in the reference loop, so
|h_t - exact| <= ~(chunk_len + n_chunks + 3) eps * sum_s prod|a| |x_s|: no bias, and nothing
that depends on the size of delta*A. There is no exponential of a running sum (the
cumulative-sum form h_t = exp(S_t)(h_0 + cumsum(exp(-S_s) x_s)) needs exp(-S_s), which overflows
under strong decay, and clamping S mis-weights old inputs), no division, no subtraction of
exponents. Strong decay underflows towards 0 exactly as in the reference (delta*A = -50 per
step gives a_t = 2e-22). With per-step delta*A <= +1 (growing states, A > 0) every multiplier
is at most e^64 < float32 max, so 0 * inf (NaN) cannot arise where the reference is finite.
Measured accuracy, and speed against the reference loop: docs/BENCHMARKS.md ("Chunked
selective scan").
Limitation: the backward is once-differentiable (no double backward).
"""
from __future__ import annotations

import math

import torch
from torch.autograd.function import once_differentiable

from .scan_ref import finish, prepare_delta

MAX_CHUNK = 64


def _chunking(length: int) -> tuple[int, int]:
    """(n_chunks, chunk_len): about sqrt(length) each, chunk_len <= MAX_CHUNK, little padding."""
    t = min(MAX_CHUNK, max(1, math.isqrt(max(length - 1, 0)) + 1))
    nc = -(-length // t)
    return nc, -(-length // nc)


def _time_major(x: torch.Tensor) -> torch.Tensor:
    """(b, d, L) -> contiguous (L, b, d), by per-batch 2-D transposes (~2x faster than permute)."""
    b, d, length = x.shape
    out = x.new_empty(length, b, d)
    for i in range(b):
        out[:, i].copy_(x[i].t())
    return out


def _pad_time(x: torch.Tensor, lp: int) -> torch.Tensor:
    """x with its first (time) dimension padded with zeros to lp steps."""
    if x.shape[0] == lp:
        return x
    out = x.new_zeros((lp,) + tuple(x.shape[1:]))
    out[: x.shape[0]] = x
    return out


def _bc_view(M: torch.Tensor, d: int) -> torch.Tensor:
    """B or C as a view broadcastable against the state layout (L, b, N, G, d // G)."""
    if M.dim() == 2:  # (d, N): time-invariant -> (1, 1, N, d, 1), i.e. G = d
        return M.t()[None, None, :, :, None]
    if M.dim() == 3:  # (b, N, L) -> (L, b, N, 1, 1)
        return M.permute(2, 0, 1)[..., None, None]
    return M.permute(3, 0, 2, 1)[..., None]  # (b, G, N, L) -> (L, b, N, G, 1)


def _bc_unview(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Inverse of _bc_view for a gradient of shape (L|1, b|1, N, G, 1)."""
    if dim == 2:
        return g[0, 0, :, :, 0].t()
    if dim == 3:
        return g[:, :, :, 0, 0].permute(1, 2, 0)
    return g[..., 0].permute(1, 3, 2, 0)


def _full(V: torch.Tensor, length: int, b: int) -> bool:
    """True when V (L, b, N, G, 1) has G = 1 and real (not broadcast) L and b dimensions."""
    return V.shape[3] == 1 and V.shape[0] == length and V.shape[1] == b


def _sum_n(S: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """sum_n S * V for S (L, b, N, G, e), V (L|1, b|1, N, G, 1) -> (L, b, G * e)."""
    length, b, n = S.shape[:3]
    if _full(V, length, b):  # batched (1 x N) @ (N x d): far faster than mul + sum
        v = V[..., 0, 0].contiguous().unsqueeze(-2)
        return torch.matmul(v, S.view(length, b, n, -1)).view(length, b, -1)
    return (S * V).sum(2).reshape(length, b, -1)


def _sum_d(S: torch.Tensor, w: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Gradient of V from S * (w * V) summed: sum over e (and broadcast dims) of S * w."""
    length, b, n, g, e = S.shape
    if _full(V, length, b):
        # (1 x d) @ (d x N) with the state transposed: BLAS reads it in place
        St = S.view(length, b, n, g * e).transpose(-1, -2)
        r = torch.matmul(w.reshape(length, b, 1, g * e), St)
        return r.view(length, b, n, 1, 1)
    r = (S * w.reshape(length, b, 1, g, e)).sum(-1, keepdim=True)
    return r.sum_to_size(V.shape)


def _chunk_decay(dt: torch.Tensor, A: torch.Tensor, nc: int, T: int, skip: int) -> torch.Tensor:
    """exp(A * sum of delta over steps skip..T-1 of each chunk) as (nc, b * N * d).

    Computed from the small (L, b, d) delta in float64 (the exponent is exact to float64
    rounding, so the product of a chunk's decays is exact to the output dtype's rounding);
    padding steps count as delta = 0, i.e. decay 1.
    """
    length, b, d = dt.shape
    s = dt.new_zeros(nc * T, b, d, dtype=torch.float64)
    s[:length] = dt
    s = s.view(nc, T, b, d)[:, skip:].sum(1)  # (nc, b, d)
    At = A.t().to(torch.float64).contiguous()
    return torch.exp(s[:, :, None, :] * At).to(dt.dtype).reshape(nc, -1)


class _ChunkedScan(torch.autograd.Function):
    """Inputs: delta, du = delta * u (b, d, L); A (d, N); B, C (any layout); h0 (b, d, N) or None.

    Outputs y_ssm (b, d, L) (before D and z) and h_last (b, d, N).
    Internally the state of all steps lives in one (L, b, N, d) buffer (time-major, channels
    innermost), split into n_chunks x chunk_len steps.
    """

    @staticmethod
    def forward(ctx, delta, du, A, B, C, h0):
        b, d, length = delta.shape
        n = A.shape[1]
        nc, T = _chunking(length)
        lp, m = nc * T, b * d * n
        Bv, Cv = _bc_view(B, d).contiguous(), _bc_view(C, d).contiguous()
        g = Bv.shape[3]
        dt = _time_major(delta)  # (L, b, d)
        dut = _time_major(du)

        # 1) per step t of every chunk at once: a_t = exp(delta_t A), x_t = du_t B_t, then the
        # in-chunk recurrence from a zero state, h_t = a_t h_{t-1} + x_t (chunk_len steps).
        # Making a_t and x_t inside the loop keeps them in cache for the recurrence.
        # Padding steps have delta = du = 0, i.e. a = 1 and x = 0.
        e = d // g
        At = A.t().contiguous()  # (N, d)
        dt4 = _pad_time(dt, lp).view(nc, T, b, 1, d)
        du6 = _pad_time(dut, lp).view(nc, T, b, 1, g, e)
        B6 = _pad_time(Bv, lp).view(nc, T, b, n, g, 1) if Bv.shape[0] > 1 else None
        abuf = delta.new_empty(lp, m)  # all decays a_t, (L, b, N, d) time-major
        hbuf = delta.new_empty(lp, m)  # all states h_t
        a = abuf.view(nc, T, m)
        h = hbuf.view(nc, T, m)
        a5 = abuf.view(nc, T, b, n, d)
        h6 = hbuf.view(nc, T, b, n, g, e)
        for t in range(T):
            torch.mul(dt4[:, t], At, out=a5[:, t])
            a5[:, t].exp_()
            torch.mul(du6[:, t], Bv[0] if B6 is None else B6[:, t], out=h6[:, t])
            if t:
                h[:, t].addcmul_(a[:, t], h[:, t - 1])
        # 2) states entering each chunk: n_chunks steps
        pend = _chunk_decay(dt, A, nc, T, 0)
        hin = delta.new_empty(nc + 1, m)
        if h0 is None:
            hin[0] = 0.0
        else:
            hin[0].view(b, n, d).copy_(h0.transpose(1, 2))
        for c in range(nc):
            torch.addcmul(h[c, T - 1], pend[c], hin[c], out=hin[c + 1])
        # 3) add each chunk's entering state, decayed step by step: chunk_len steps
        carry = hin[:nc].clone()
        for t in range(T):
            carry.mul_(a[:, t])
            h[:, t].add_(carry)
        h_last = hin[nc].view(b, n, d).transpose(1, 2).contiguous()

        hv = hbuf[:length].view(length, b, n, g, d // g)
        y = _sum_n(hv, Cv)
        ctx.save_for_backward(dt, dut, A, B, C, h0, abuf, hbuf)
        ctx.chunks = (nc, T)
        return y.permute(1, 2, 0), h_last

    @staticmethod
    @once_differentiable
    def backward(ctx, gy, gh_last):
        dt, dut, A, B, C, h0, abuf, hbuf = ctx.saved_tensors
        nc, T = ctx.chunks
        need = ctx.needs_input_grad
        length, b, d = dt.shape
        n = A.shape[1]
        lp, m = nc * T, b * d * n
        Bv, Cv = _bc_view(B, d).contiguous(), _bc_view(C, d).contiguous()
        g = Bv.shape[3]
        e = d // g
        gyt = _time_major(gy)  # (L, b, d)
        hv = hbuf[:length].view(length, b, n, g, e)

        # Reverse scan G_t = dL/dh_t (direct, from y_t and h_last) + a_{t+1} G_{t+1}: the same
        # three phases backwards. 1) inside chunks, direct gradients made inside the loop.
        gbuf = dt.new_empty(lp, m)
        gv = gbuf[:length].view(length, b, n, g, e)
        a = abuf.view(nc, T, m)
        G = gbuf.view(nc, T, m)
        G6 = gbuf.view(nc, T, b, n, g, e)
        gy6 = _pad_time(gyt, lp).view(nc, T, b, 1, g, e)
        C6 = _pad_time(Cv, lp).view(nc, T, b, n, g, 1) if Cv.shape[0] > 1 else None
        c_last, t_last = divmod(length - 1, T)
        for t in range(T - 1, -1, -1):
            torch.mul(gy6[:, t], Cv[0] if C6 is None else C6[:, t], out=G6[:, t])
            if t == t_last:
                G[c_last, t].view(b, n, d).add_(gh_last.transpose(1, 2))
            if t < T - 1:
                G[:, t].addcmul_(a[:, t + 1], G[:, t + 1])
        qend = _chunk_decay(dt, A, nc, T, 1)  # decay from step 0 of a chunk to its end
        gin = dt.new_empty(nc + 1, m)  # gin[c] = a_s G_s at the first step s of chunk c
        gin[nc] = 0.0
        for c in range(nc - 1, -1, -1):
            torch.addcmul(G[c, 0], qend[c], gin[c + 1], out=gin[c])
            gin[c].mul_(a[c, 0])
        carry = gin[1:].clone()
        for t in range(T - 1, -1, -1):
            G[:, t].add_(carry)
            if t:
                carry.mul_(a[:, t])
        grad_h0 = None
        if h0 is not None and need[5]:
            grad_h0 = gin[0].view(b, n, d).transpose(1, 2)

        grad_delta = grad_du = grad_A = grad_B = grad_C = None
        if need[1]:  # x_t = du_t * B_t
            grad_du = _sum_n(gv, Bv).permute(1, 2, 0)
        if need[3]:
            grad_B = _bc_unview(_sum_d(gv, dut, Bv), B.dim())
        if need[4]:  # y_t = sum_n h_t C_t
            grad_C = _bc_unview(_sum_d(hv, gyt, Cv), C.dim())
        if need[0] or need[2]:
            # a_t = exp(delta_t A): the gradient of (delta_t A) is W_t = G_t a_t h_{t-1}.
            # Contract W one N-slice at a time (no full-size temporary):
            # grad_delta = sum_n W A, grad_A = sum_(t, b) W delta.
            k = length * b
            gk = gbuf[:length].view(k, n, d)
            ak = abuf[:length].view(k, n, d)
            hk = hbuf[:length].view(k, n, d)
            h0k = None if h0 is None else h0.transpose(1, 2).reshape(b, n, d)
            dk = dt.view(k, d)
            At = A.t().contiguous()
            acc_delta = dt.new_zeros(k, d)
            acc_A = dt.new_empty(n, d)
            tmp = dt.new_empty(k, d)
            for i in range(n):
                torch.mul(gk[:, i], ak[:, i], out=tmp)
                if k > b:
                    tmp[b:].mul_(hk[:-b, i])
                if h0k is None:
                    tmp[:b] = 0.0
                else:
                    tmp[:b].mul_(h0k[:, i])
                acc_delta.addcmul_(tmp, At[i])
                torch.sum(tmp.mul_(dk), 0, out=acc_A[i])
            if need[0]:
                grad_delta = acc_delta.view(length, b, d).permute(1, 2, 0)
            if need[2]:
                grad_A = acc_A.t()
        return grad_delta, grad_du, grad_A, grad_B, grad_C, grad_h0


def selective_scan_chunked(u, delta, A, B, C, D=None, z=None, delta_bias=None, h0=None,
                           softplus=True):
    """Chunked selective scan; same arguments and results as ``scan.selective_scan``."""
    dtype_out = u.dtype
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta, A, B, C = (t.to(compute) for t in (u, delta, A, B, C))
    if h0 is not None:
        h0 = h0.to(compute)
    batch, d, length = u.shape
    delta = prepare_delta(delta, None if delta_bias is None else delta_bias.to(compute), softplus)
    if length == 0:
        y = u.new_zeros(batch, d, 0)
        h = h0 if h0 is not None else u.new_zeros(batch, d, A.shape[1])
    else:
        y, h = _ChunkedScan.apply(delta, delta * u, A, B, C, h0)
    y = finish(y, u, None if D is None else D.to(compute), None if z is None else z.to(compute))
    return y.contiguous().to(dtype_out), h.to(dtype_out)
