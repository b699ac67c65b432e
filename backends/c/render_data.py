"""C renderers: reshape, transpose, pad, concatenation, split (bytes only; see
``microlith.quant.data``)."""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c import sanitize
from microlith.backends.c.render_base import (
    RENDERERS,
    Call,
    In,
    Out,
    Plan,
    comment,
    contiguous_strides,
    int8_values,
    merge_dims,
    renders,
)
from microlith.backends.c.render_context import RenderContext
from microlith.ir.core import Node
from microlith.ir.types import DType
from microlith.quant.data import AxisParams, PadParams, ShapeParams


@renders("tfl.reshape")
def _reshape(node: Node, p: ShapeParams) -> Plan:
    x, y = node.arg(0), node.output
    if x.type.nbytes != y.type.nbytes:
        raise ValueError(f"reshape changes the size ({x.type.nbytes} -> {y.type.nbytes} bytes)")
    return Plan("reshape", ())


def render_reshape(ctx: RenderContext, node: Node) -> str:
    """Nothing when the plan aliases input and output, else one ``mlk_copy``."""
    x, y = node.arg(0), node.output
    head = comment(f"{sanitize.comment(node.name)} ({node.op}): {x.shape} -> {y.shape}")
    if x.is_constant:
        source = ctx.const_array(x.name, np.asarray(x.data))
    else:
        source = ctx.tensor(x)
        if source == ctx.tensor(y):
            return head[:-3] + "; aliased, nothing to do */"
    return f"{head}\nmlk_copy({ctx.tensor(y)}, {source}, {y.type.nbytes}u);"


@renders("tfl.transpose")
def _transpose(node: Node, p: AxisParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    in_strides = contiguous_strides(x.shape)
    dims, (strides,) = merge_dims([int(n) for n in y.shape], [[in_strides[a] for a in p.perm]])
    if len(dims) > 6:
        raise ValueError(f"transpose needs {len(dims)} loops (at most 6)")
    pad = 6 - len(dims)
    fields = (*((f"n{i}", n) for i, n in enumerate([1] * pad + dims)),
              *((f"s{i}", s) for i, s in enumerate([0] * pad + strides)))
    return Plan(f"perm {p.perm}",
                (Call("mlk_transpose_i8", "mlk_transpose_params", fields, (In(x), Out(y))),))


@renders("tfl.pad", "tfl.padv2")
def _pad(node: Node, p: PadParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    if min((v for w in p.paddings for v in w), default=0) < 0:
        raise ValueError("negative pads (cropping) are not supported")
    merged: list[list[int]] = []
    for d, (before, after) in reversed(list(zip(x.shape, p.paddings, strict=True))):
        if merged and merged[0][1] == merged[0][2] == 0:  # fold unpadded inner dims outward
            inner = merged.pop(0)[0]
            merged.insert(0, [d * inner, before * inner, after * inner])
        else:
            merged.insert(0, [int(d), int(before), int(after)])
    if len(merged) > 4:
        raise ValueError(f"pad of rank {len(p.paddings)} needs more than 4 loops")
    merged = [[1, 0, 0]] * (4 - len(merged)) + merged
    fields = (*((f"d{i}", m[0]) for i, m in enumerate(merged)),
              *((f"b{i}", m[1]) for i, m in enumerate(merged)),
              *((f"o{i}", m[0] + m[1] + m[2]) for i, m in enumerate(merged)),
              ("value", p.fill))
    return Plan(f"paddings {[list(w) for w in p.paddings]} fill {p.fill}",
                (Call("mlk_pad_i8", "mlk_pad_params", fields, (In(x), Out(y))),))


@renders("tfl.concatenation")
def _concat(node: Node, p: AxisParams) -> Plan:
    y = node.output
    inputs = [v for v in node.inputs if v is not None]
    int8_values(y, *inputs)
    if node.attr("fused_activation_function", "NONE") != "NONE":
        raise ValueError("int8 concatenation with a fused activation is not supported")
    outer = math.prod(y.shape[:p.axis])
    out_inner = math.prod(y.shape[p.axis:])
    calls, offset = [], 0
    for v in inputs:
        in_inner = math.prod(v.shape[p.axis:])
        fields = (("outer", outer), ("in_inner", in_inner), ("out_inner", out_inner),
                  ("offset", offset))
        calls.append(Call("mlk_concat_i8", "mlk_concat_params", fields, (In(v), Out(y))))
        offset += in_inner
    return Plan(f"axis {p.axis}, {len(inputs)} inputs", tuple(calls))


@renders("tfl.split", "tfl.split_v")
def _split(node: Node, p: AxisParams) -> Plan:
    """One ``mlk_split_i8`` per output: its rows of the input, from ``offset`` on."""
    x = node.arg(1 if node.op == "tfl.split" else 0)
    int8_values(x, *node.outputs)
    if x.dtype != DType.INT8:  # the kernel copies bytes: one byte per element
        raise ValueError(f"{x.name!r} must be int8")
    outer = math.prod(x.shape[:p.axis])
    in_inner = math.prod(x.shape[p.axis:])
    calls, offset = [], 0
    for y in node.outputs:
        out_inner = math.prod(y.shape[p.axis:])
        fields = (("outer", outer), ("in_inner", in_inner), ("out_inner", out_inner),
                  ("offset", offset))
        calls.append(Call("mlk_split_i8", "mlk_split_params", fields, (In(x), Out(y))))
        offset += out_inner
    return Plan(f"axis {p.axis}, {len(node.outputs)} outputs", tuple(calls))


SPECIAL_RENDERERS = {"tfl.reshape": render_reshape}
assert set(SPECIAL_RENDERERS) <= set(RENDERERS)
