"""C renderers of the integer-dot hybrid kernels (``select-kernels{hybrid=integer}``): a float
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with int8 per-channel weights whose record is a
``HybridParams``. The kernels (``microlith_kernels_hybrid.h``) quantize the input once per
batch into the planned scratch and compute

    y[c] = b[c] + s_x w_scale[c] (sum q w[c] - zp_x w_sum[c])

so the renderer writes the int8 weights, the float scales and biases and ``w_sum[c]``, the
sum of the weights of output channel ``c`` (over the whole filter; depthwise: over the
taps). A layer whose int32 accumulator could wrap (``255 sum |w[c]| + 128 |w_sum[c]| >=
2^31``) is never given a ``HybridParams`` by select-kernels; the renderer checks again.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.backends.c.render_base import Call, Plan, Scratch, Table, numel
from microlith.backends.c.render_float import _act, _f, _out, _window, weight_fields
from microlith.ir.core import Node
from microlith.passes.select_kernels import HybridParams, accumulator_bound

HybridRenderer = Callable[[Node, HybridParams], Plan]
HYBRID_RENDERERS: dict[str, HybridRenderer] = {}
INT32_LIMIT = 1 << 31


def _renders(op: str) -> Callable[[HybridRenderer], HybridRenderer]:
    def wrap(fn: HybridRenderer) -> HybridRenderer:
        HYBRID_RENDERERS[op] = fn
        return fn

    return wrap


def _hybrid_fields(node: Node, axis: int, p: HybridParams) -> list:
    """w / w_scale / bias / w_sum of int8 weights with output channels along ``axis``."""
    suffix, fields = weight_fields(node, axis)
    if suffix != "_w8":
        raise ValueError("the hybrid kernel needs int8 per-channel weights")
    w = np.moveaxis(np.asarray(node.arg(1).data, np.int64), axis, 0)
    sums = w.reshape(w.shape[0], -1).sum(axis=1)
    bound = accumulator_bound(node)
    if bound >= INT32_LIMIT:
        raise ValueError(f"the int32 accumulator of the hybrid kernel could overflow (bound "
                         f"{bound})")
    return [*fields, ("w_sum", Table(f"{node.arg(1).name}_sum", sums.astype(np.int32)))]


@_renders("tfl.fully_connected")
def _fully_connected(node: Node, p: HybridParams) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    if w.type.rank != 2:
        raise ValueError("fully-connected weights must be [units, depth]")
    units, depth = w.shape
    fields = _hybrid_fields(node, 0, p)
    fields += [("batches", numel(x) // depth), ("depth", depth), ("units", units),
               ("symmetric", int(p.symmetric)), *_act(node),
               ("scratch", Scratch(p.scratch_bytes, "int8_t"))]
    return Plan(f"hybrid {depth}->{units} (int8 dot)",
                (Call("mlk_fully_connected_f32_hybrid", "mlk_fully_connected_h_params",
                      tuple(fields), (_f(x), _out(y))),))


@_renders("c.conv_2d")
def _conv(node: Node, p: HybridParams) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    fields = _hybrid_fields(node, 0, p)
    fields += [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
               ("in_c", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
               ("out_c", y.shape[3]), ("k_h", w.shape[1]), ("k_w", w.shape[2]),
               *_window(node), ("groups", int(node.attr("group"))),
               ("symmetric", int(p.symmetric)), *_act(node), ("col_bytes", p.col_bytes),
               ("scratch", Scratch(p.scratch_bytes, "int8_t"))]
    return Plan(f"hybrid {w.shape[1]}x{w.shape[2]} {x.shape[3]}->{y.shape[3]} (int8 dot)",
                (Call("mlk_conv2d_f32_hybrid", "mlk_conv2d_h_params", tuple(fields),
                      (_f(x), _out(y))),))


@_renders("c.depthwise_conv_2d")
def _depthwise(node: Node, p: HybridParams) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    fields = _hybrid_fields(node, 3, p)
    fields += [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
               ("in_c", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
               ("depth_mult", int(node.attr("depth_multiplier"))), ("k_h", w.shape[1]),
               ("k_w", w.shape[2]), *_window(node), ("symmetric", int(p.symmetric)),
               *_act(node), ("scratch", Scratch(p.scratch_bytes, "int8_t"))]
    return Plan(f"hybrid depthwise {w.shape[1]}x{w.shape[2]} (int8 dot)",
                (Call("mlk_depthwise_conv2d_f32_hybrid", "mlk_depthwise_conv2d_h_params",
                      tuple(fields), (_f(x), _out(y))),))


def hybrid_plan(node: Node) -> Plan | None:
    """The integer-dot plan of a node that select-kernels gave a ``HybridParams``."""
    p = node.params
    if not isinstance(p, HybridParams) or node.op not in HYBRID_RENDERERS:
        return None
    return HYBRID_RENDERERS[node.op](node, p)
