"""CUDA backend: mamba-ssm's fused ``selective_scan_fn`` (optional dependency ``mamba-ssm``).

mamba-ssm computes exactly the recurrence in ``scan.py`` (same argument layouts) but has no
initial state and no float64 kernel, so those cases go to the chunked backend instead:
  * h0 given and non-zero, or h0 requiring a gradient (mamba-ssm could not return dL/dh0);
  * float64 inputs, and length 0.
mamba-ssm's backward ignores the gradient of the last state (its docstring says so), so h_last
is returned detached here: a loss through h_last would otherwise get silently wrong gradients.
Code that backpropagates through h_last must use the chunked backend.
mamba-ssm is imported lazily, only when this backend actually runs.
"""
from __future__ import annotations

import torch


def selective_scan_cuda(u, delta, A, B, C, D=None, z=None, delta_bias=None, h0=None,
                        softplus=True):
    """Same arguments and results as ``scan.selective_scan`` (inputs already checked)."""
    if u.dtype == torch.float64 or u.shape[-1] == 0 or (
            h0 is not None and (h0.requires_grad or bool(torch.count_nonzero(h0)))):
        from .scan_chunked import selective_scan_chunked
        return selective_scan_chunked(u, delta, A, B, C, D, z, delta_bias, h0, softplus)

    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    dtype = u.dtype  # float32, float16 or bfloat16
    # mamba-ssm's kernel checks: delta, z and time-varying B/C in u's dtype; A, D, delta_bias
    # and time-invariant (d, N) B/C in float32.
    y, h_last = selective_scan_fn(
        u, delta.to(dtype), A.float(),
        B.to(dtype) if B.dim() >= 3 else B.float(),
        C.to(dtype) if C.dim() >= 3 else C.float(),
        D=None if D is None else D.float(),
        z=None if z is None else z.to(dtype),
        delta_bias=None if delta_bias is None else delta_bias.float(),
        delta_softplus=softplus,
        return_last_state=True,
    )
    return y, h_last.detach().to(dtype)
