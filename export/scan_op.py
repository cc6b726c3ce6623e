"""The ``ai.star::SelectiveScan`` operator: its contract, and how torch emits it at export time.

While ``torch.onnx.export`` traces a model, ``star_plugin.scan.selective_scan`` routes through
:class:`SelectiveScanExport`, whose ``symbolic`` writes one ``SelectiveScan`` node in the
project's own domain instead of tracing the recurrence step by step. The node's meaning is
given by a model-local ONNX function (``scan_function.py``) attached after tracing, so stock
ONNX Runtime runs it; a host may register a faster kernel for the same (domain, name).

Contract (Mamba's S6 with its usual layout; all float32):

    inputs   u (b, d, L), delta (b, d, L), A (d, N), B (b, N, L), C (b, N, L), D (d),
             z (b, d, L), delta_bias (d), h0 (b, d, N)
    outputs  y (b, d, L), h_last (b, d, N)

    dt  = softplus(delta + delta_bias)
    h_t = exp(dt_t * A) * h_{t-1} + dt_t * B_t * u_t            (h_{-1} = h0)
    y_t = (<h_t, C_t> + D * u_t) * silu(z_t)
"""
from __future__ import annotations

import torch

from star_plugin import scan
from star_plugin.scan_ref import selective_scan_ref

DOMAIN = "ai.star"
DOMAIN_VERSION = 1
OP_NAME = "SelectiveScan"
INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0")
OUTPUTS = ("y", "h_last")


class SelectiveScanExport(torch.autograd.Function):
    """Computes the scan eagerly (so tracing sees real values) and exports as one node."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, h0):
        return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, h0, True)

    @staticmethod
    def symbolic(g, u, delta, A, B, C, D, z, delta_bias, h0):
        y, h_last = g.op(f"{DOMAIN}::{OP_NAME}", u, delta, A, B, C, D, z, delta_bias, h0,
                         outputs=2)
        y.setType(u.type())  # y is shaped like u, h_last like h0
        h_last.setType(h0.type())
        return y, h_last


def export_selective_scan(u, delta, A, B, C, D, z, delta_bias, h0, softplus):
    """The export-time path of ``selective_scan``: only the full Mamba call has an ONNX form."""
    missing = [name for name, v in (("D", D), ("z", z), ("delta_bias", delta_bias), ("h0", h0))
               if v is None]
    if missing or not softplus or B.dim() != 3 or C.dim() != 3:
        raise ValueError(
            "ONNX export supports the selective scan as Mamba calls it (B and C shaped "
            "(batch, N, length), D, z, delta_bias and h0 given, softplus on); this call has "
            + (f"no {', '.join(missing)}" if missing else
               "softplus off" if not softplus else f"B/C of {B.dim()}/{C.dim()} dimensions"))
    return SelectiveScanExport.apply(u, delta, A, B, C, D, z, delta_bias, h0)


# The runtime's scan never imports the exporter: the exporter registers its path with it.
scan.register_onnx_export(export_selective_scan)
