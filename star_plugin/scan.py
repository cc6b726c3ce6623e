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

from .scan_ref import check_inputs, selective_scan_ref

__all__ = ["BACKENDS", "register_onnx_export", "selective_scan", "selective_scan_ref"]

BACKENDS = ("auto", "ref", "chunked", "cuda")

#: What ``selective_scan`` calls while ``torch.onnx.export`` traces: set by
#: ``star_plugin.export.scan_op`` when it is imported (the exporter imports it), so that the
#: runtime never imports the exporter; the exporter registers its hook here instead.
_onnx_export_scan = None


def register_onnx_export(function) -> None:
    """Route ``selective_scan`` through ``function`` (same arguments, ``softplus`` last) while
    torch.onnx.export traces, instead of tracing the recurrence step by step."""
    global _onnx_export_scan
    _onnx_export_scan = function


def cuda_available_for(u: torch.Tensor) -> bool:
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
    check_inputs(u, delta, A, B, C, D, z, delta_bias, h0)
    if torch.onnx.is_in_onnx_export():  # one ai.star::SelectiveScan node, not a traced loop
        if _onnx_export_scan is None:
            raise RuntimeError("tracing the selective scan for ONNX needs its export path: import "
                               "star_plugin.export.scan_op first (star_plugin.export.exporter "
                               "does)")
        return _onnx_export_scan(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    if backend in ("auto", "cuda") and cuda_available_for(u):
        from .scan_cuda import selective_scan_cuda
        return selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    if backend == "ref":
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
    from .scan_chunked import selective_scan_chunked
    return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, h0, softplus)
