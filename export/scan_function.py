"""ONNX function bodies for ``ai.star::SelectiveScan`` (contract in ``scan_op.py``).

Two bodies compute the same op; an exported model carries one of them:

* ``scan``: the discretisation (``exp(dt A)``, ``dt B u``) vectorised over all L steps, then
  the standard ``Scan`` operator runs the recurrence and the readout, one step per iteration.
* ``chunked``: the two-level form of ``star_plugin/scan_chunked.py``. The L steps are padded
  to ``nc x T`` (T = min(64, ceil(sqrt L)); padding steps have dt = 0, i.e. decay 1 and input
  0). One ``Scan`` runs the T in-chunk steps of every chunk at once from a zero state; a
  second runs the nc chunk boundaries, ``H_c = exp(A * sum_chunk dt) H_{c-1} + h_local_end``;
  then every step adds its chunk's entering state, decayed by ``exp(A * cumsum dt)``. So about
  2 sqrt(L) iterations instead of L, re-associated but never rescaled (no exp of a positive
  number, no division): the error stays at float32 rounding.

Which body a graph gets is chosen by measurement (``scan_timing.py``, docs/ONNX.md).
"""
from __future__ import annotations

from typing import List

import numpy as np
from onnx import FunctionProto, GraphProto, TensorProto, helper, numpy_helper

from .scan_op import DOMAIN, INPUTS, OP_NAME, OUTPUTS

BODIES = ("scan", "chunked")
MAX_CHUNK = 64


class _Nodes:
    """Collects nodes with fresh intermediate names (unique within one graph or function)."""

    def __init__(self, prefix: str):
        self.nodes: List = []
        self.prefix = prefix
        self.count = 0

    def __call__(self, op_type: str, *inputs: str, out: str = None, **attrs) -> str:
        if out is None:
            out = f"{self.prefix}{self.count}"
            self.count += 1
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant."""
        return self("Constant", value=numpy_helper.from_array(np.array(values, np.int64)))

    def floats(self, value: float) -> str:
        return self("Constant", value=numpy_helper.from_array(np.array(value, np.float32)))


def _float_io(name: str, rank: int):
    """A float tensor of known rank and unknown dimensions (the checker needs a shape)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * rank)


def _body_graph(name: str, nodes: _Nodes, inputs, outputs) -> GraphProto:
    """inputs / outputs: (name, rank) pairs."""
    return helper.make_graph(nodes.nodes, name, [_float_io(*io) for io in inputs],
                             [_float_io(*io) for io in outputs])


def _step_graph() -> GraphProto:
    """One recurrence step with readout: h = a h_prev + x;  y = c @ h (sum over N)."""
    n = _Nodes("s")
    h = n("Add", n("Mul", "a_t", "h_prev"), "x_t", out="h_next")
    n("MatMul", "c_t", h, out="y_t")
    return _body_graph("selective_scan_step", n,
                       [("h_prev", 3), ("a_t", 3), ("x_t", 3), ("c_t", 3)],
                       [("h_next", 3), ("y_t", 3)])


def _local_graph(rank: int) -> GraphProto:
    """One step h = a h_prev + x on rank-``rank`` states, emitting every h."""
    n = _Nodes("l")
    h = n("Add", n("Mul", "a_t", "h_prev"), "x_t", out="h_next")
    n("Identity", h, out="h_out")
    return _body_graph("selective_scan_chunk_step", n,
                       [("h_prev", rank), ("a_t", rank), ("x_t", rank)],
                       [("h_next", rank), ("h_out", rank)])


def _carry_graph() -> GraphProto:
    """Chunk boundary: emit the entering state, then H = P H_prev + h_local_end."""
    n = _Nodes("c")
    n("Identity", "H_prev", out="H_in")
    n("Add", n("Mul", "P_c", "H_prev"), "end_c", out="H_next")
    return _body_graph("selective_scan_chunk_carry", n,
                       [("H_prev", 3), ("P_c", 3), ("end_c", 3)], [("H_next", 3), ("H_in", 3)])


class _Discretised:
    """Time-major pieces shared by the bodies. States are laid out (b, N, d), channels
    innermost, so that every broadcast runs over contiguous rows of d (ONNX Runtime's
    broadcasting is slow when the broadcast dimension is the innermost one).

    ``pad_steps(n, length)`` may return an int64 [8] ``Pad`` vector for the time axis: the
    padding steps get dt = 0 and dt u = 0, i.e. decay a = 1 and input x = 0 (the state passes
    through unchanged), and C = 0. Padding the small (L, b, ., .) inputs, not the (L, b, N, d)
    products, keeps every full-size tensor written once.
    """

    def __init__(self, n: _Nodes, pad_steps=None):
        dt = n("Softplus", n("Add", "delta", n("Unsqueeze", "delta_bias", n.ints(1))))
        time_major = dict(perm=[2, 0, 1])
        self.length = n("Slice", n("Shape", "u"), n.ints(2), n.ints(3))              # [L]
        pieces = [
            n("Unsqueeze", n("Transpose", dt, **time_major), n.ints(2)),             # (L, b, 1, d)
            n("Unsqueeze", n("Transpose", n("Mul", dt, "u"), **time_major), n.ints(2)),
            n("Unsqueeze", n("Transpose", "B", **time_major), n.ints(3)),            # (L, b, N, 1)
            n("Unsqueeze", n("Transpose", "C", **time_major), n.ints(2)),            # (L, b, 1, N)
        ]
        if pad_steps is not None:
            pads = pad_steps(n, self.length)
            pieces = [n("Pad", v, pads) for v in pieces]
        self.dt, du, b_col, self.c = pieces
        self.A = n("Transpose", "A", perm=[1, 0])                                     # (N, d)
        self.a = n("Exp", n("Mul", self.dt, self.A))                                  # (L, b, N, d)
        self.x = n("Mul", du, b_col)                                                  # (L, b, N, d)
        self.h0 = n("Transpose", "h0", perm=[0, 2, 1])                                # (b, N, d)


def _finish(n: _Nodes, y: str, h_last: str) -> None:
    """y (L, b, 1, d) -> (b, d, L), plus the skip term D u, gated by silu(z); h_last -> (b, d, N)."""
    y = n("Transpose", n("Squeeze", y, n.ints(2)), perm=[1, 2, 0])
    y = n("Add", y, n("Mul", "u", n("Unsqueeze", "D", n.ints(1))))
    gate = n("Mul", "z", n("Sigmoid", "z"))
    n("Mul", y, gate, out="y")
    n("Transpose", h_last, perm=[0, 2, 1], out="h_last")


def _scan_body(n: _Nodes) -> None:
    s = _Discretised(n)
    n.nodes.append(helper.make_node("Scan", [s.h0, s.a, s.x, s.c], ["h_end", "ys"],
                                    num_scan_inputs=3, body=_step_graph()))
    _finish(n, "ys", "h_end")


def _chunked_body(n: _Nodes) -> None:
    # Chunking from the dynamic length: T = clamp(ceil(sqrt(L)), 1, 64), nc = ceil(L / T),
    # with the steps padded at the end to nc * T.
    sizes = {}

    def end_padding(n, length):
        root = n("Ceil", n("Sqrt", n("Cast", length, to=TensorProto.FLOAT)))
        root = n("Min", n("Max", root, n.floats(1.0)), n.floats(float(MAX_CHUNK)))
        T = sizes["T"] = n("Cast", root, to=TensorProto.INT64)                       # [T]
        nc = sizes["nc"] = n("Div", n("Sub", n("Add", length, T), n.ints(1)), T)      # [nc]
        pad = n("Sub", n("Mul", nc, T), length)
        return n("Concat", n.ints(0, 0, 0, 0), pad, n.ints(0, 0, 0), axis=0)

    s = _Discretised(n, end_padding)
    T, nc = sizes["T"], sizes["nc"]

    def chunked(v: str) -> str:
        """(nc * T, b, k, m) -> (nc, T, b, k, m)."""
        rest = n("Slice", n("Shape", v), n.ints(1), n.ints(4))
        return n("Reshape", v, n("Concat", nc, T, rest, axis=0))

    dt, a, x, c = chunked(s.dt), chunked(s.a), chunked(s.x), chunked(s.c)
    # 1) in-chunk recurrence from zero, all chunks at once (T iterations over axis 1)
    zero = n("ConstantOfShape", n("Concat", nc, n("Shape", s.h0), axis=0),
             value=numpy_helper.from_array(np.zeros(1, np.float32)))
    n.nodes.append(helper.make_node("Scan", [zero, a, x], ["h_local_end", "h_local"],
                                    num_scan_inputs=2, scan_input_axes=[1, 1],
                                    scan_output_axes=[1], body=_local_graph(4)))
    # 2) chunk boundaries (nc iterations): whole-chunk decay from the summed dt
    cum = n("CumSum", dt, n.ints(1))                                           # (nc, T, b, 1, d)
    last = n("Squeeze", n("Sub", T, n.ints(1)))                                # scalar T - 1
    decay_end = n("Exp", n("Mul", n("Gather", cum, last, axis=1), s.A))       # (nc, b, N, d)
    local_end = n("Gather", "h_local", last, axis=1)                           # (nc, b, N, d)
    n.nodes.append(helper.make_node("Scan", [s.h0, decay_end, local_end], ["h_end", "h_entering"],
                                    num_scan_inputs=2, body=_carry_graph()))
    # 3) every step adds its chunk's entering state, decayed by exp(A * cumsum dt)
    decay = n("Exp", n("Mul", cum, s.A))                                       # (nc, T, b, N, d)
    h = n("Add", "h_local", n("Mul", decay, n("Unsqueeze", "h_entering", n.ints(1))))
    y = n("MatMul", c, h)                                                      # (nc, T, b, 1, d)
    flat = n("Reshape", y, n("Concat", n.ints(-1), n("Slice", n("Shape", y), n.ints(2), n.ints(5)),
                                axis=0))
    _finish(n, n("Slice", flat, n.ints(0), s.length, n.ints(0)), "h_end")       # drop padding


def selective_scan_function(body: str = "chunked", opset: int = 17) -> FunctionProto:
    """The model-local function that defines ``ai.star::SelectiveScan``."""
    if body not in BODIES:
        raise ValueError(f"scan body must be one of {BODIES}, got {body!r}")
    n = _Nodes("t")
    (_scan_body if body == "scan" else _chunked_body)(n)
    return helper.make_function(
        DOMAIN, OP_NAME, list(INPUTS), list(OUTPUTS), n.nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        doc_string=f"Mamba selective scan (S6), '{body}' body; contract in star_plugin.export.scan_op")


def scan_op_model(body: str, opset: int = 17):
    """A model holding just one ``SelectiveScan`` node (and its function): for tests and for
    timing the bodies against each other."""
    ranks = dict(u=3, delta=3, A=2, B=3, C=3, D=1, z=3, delta_bias=1, h0=3)
    node = helper.make_node(OP_NAME, list(INPUTS), list(OUTPUTS), domain=DOMAIN)
    graph = helper.make_graph(
        [node], "selective_scan",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * ranks[name])
         for name in INPUTS],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * 3) for name in OUTPUTS])
    return helper.make_model(graph, functions=[selective_scan_function(body, opset)],
                             opset_imports=[helper.make_opsetid("", opset),
                                            helper.make_opsetid(DOMAIN, 1)])
