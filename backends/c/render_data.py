"""C renderers: reshape, transpose, pad, concat (maths in ``render_ops``)."""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c import sanitize
from microlith.backends.c.render_base import (
    _PREPARE,
    RENDERERS,
    RESHAPES,
    Call,
    In,
    Out,
    Plan,
    _comment,
    _contiguous,
    _int8,
    _merge,
    _numel,
    _qm,
    _register,
    _tensor_q,
)
from microlith.backends.c.render_context import RenderContext
from microlith.interpreter import int8_ops as q8
from microlith.interpreter.int8_common import (
    f32,
    round_half_away_f,
)
from microlith.ir.core import Node

# --------------------------------------------------------------------------- data movement


def _render_reshape(ctx: RenderContext, node: Node) -> str:
    x, y = node.inputs[0], node.output
    head = _comment(f"{sanitize.comment(node.name)} ({node.op}): {x.shape} -> {y.shape}")
    if x.is_constant:
        source = ctx.const_array(x.name, np.asarray(x.data))
    else:
        source = ctx.tensor(x)
        if source == ctx.tensor(y):
            return head[:-3] + "; aliased, nothing to do */"
    return f"{head}\nmlk_copy({ctx.tensor(y)}, {source}, {y.type.nbytes}u);"


def _prepare_reshape(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    if x.type.nbytes != y.type.nbytes:
        raise ValueError(f"reshape changes the size ({x.type.nbytes} -> {y.type.nbytes} bytes)")
    return Plan("reshape", ())


for _op in RESHAPES:
    RENDERERS[_op] = _render_reshape
    _PREPARE[_op] = _prepare_reshape


@_register("Transpose")
def _transpose(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    rank = x.type.rank
    perm = node.attr("perm") or tuple(reversed(range(rank)))
    in_strides = _contiguous(x.shape)
    dims, (strides,) = _merge([int(n) for n in y.shape], [[in_strides[p] for p in perm]])
    if len(dims) > 6:
        raise ValueError(f"transpose needs {len(dims)} loops (at most 6)")
    pad = 6 - len(dims)
    call = Call("mlk_transpose_i8", (In(x), Out(y), *([1] * pad + dims), *([0] * pad + strides)))
    return Plan(f"perm {tuple(perm)}", (call,))


@_register("Pad")
def _pad(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    if node.attr("mode", "constant") != "constant":
        raise ValueError(f"pad mode {node.attr('mode')!r} is not supported (constant only)")
    pads = [int(p) for p in node.attr("pads")]
    rank = len(pads) // 2
    if min(pads, default=0) < 0:
        raise ValueError("negative pads (cropping) are not supported")
    sy, zy = _tensor_q(y)
    value = float(node.attr("value", 0.0))
    fill = zy
    if value != 0.0:
        fill = int(np.clip(q8.quantize(np.array([value], np.float32), y_scale=sy,
                                       y_zero_point=zy)[0], -128, 127))
    dims = [[int(x.shape[i]), pads[i], pads[i + rank]] for i in range(rank)]
    merged: list[list[int]] = []
    for d, before, after in reversed(dims):  # fold unpadded inner dims into their outer one
        if merged and merged[0][1] == merged[0][2] == 0:
            inner = merged.pop(0)[0]
            merged.insert(0, [d * inner, before * inner, after * inner])
        else:
            merged.insert(0, [d, before, after])
    if len(merged) > 4:
        raise ValueError(f"pad of rank {rank} needs more than 4 loops")
    merged = [[1, 0, 0]] * (4 - len(merged)) + merged
    sizes, befores = [m[0] for m in merged], [m[1] for m in merged]
    outs = [m[0] + m[1] + m[2] for m in merged]
    call = Call("mlk_pad_i8", (In(x), Out(y), *sizes, *befores, *outs, fill))
    return Plan(f"pads {pads} fill {fill}", (call,))


@_register("Concat")
def _concat(node: Node) -> Plan:
    y = node.output
    inputs = [v for v in node.inputs if v is not None]
    _int8(y, *inputs)
    rank = y.type.rank
    axis = int(node.attr("axis")) % rank
    outer = math.prod(y.shape[:axis])
    out_inner = math.prod(y.shape[axis:])
    calls, offset = [], 0
    for v in inputs:
        in_inner = math.prod(v.shape[axis:])
        calls.append(Call("mlk_concat_i8", (In(v), Out(y), outer, in_inner, out_inner, offset)))
        offset += in_inner
    activation = node.attr("activation", "NONE")
    sy, zy = _tensor_q(y)
    if activation == "RELU":  # the TFLite backend emits a RELU with the output's parameters
        m, s = _qm(sy / sy)
        calls.append(Call("mlk_relu_i8", (In(y), Out(y), _numel(y), zy, m, s, zy,
                                          max(-128, zy), 127)))
    elif activation == "RELU6":  # TFLite-Micro RELU6: clamp to [z, z + round(6 / s)]
        six = int(round_half_away_f(f32(6.0) / f32(sy))) + zy
        calls.append(Call("mlk_clamp_i8", (In(y), Out(y), _numel(y), zy, min(max(six, -128),
                                                                            127))))
    elif activation != "NONE":
        raise ValueError(f"int8 concat with fused {activation} is not supported")
    return Plan(f"axis {axis}, {len(inputs)} inputs, {activation}", tuple(calls))
