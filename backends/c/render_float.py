"""C renderers of float nodes (the float C target: ``--target c`` without ``--quantize``, or
with ``dynamic`` / ``float16``): one ``mlk_*_f32`` kernel per op of the int8 C target.

Float nodes have no parameter record: geometry comes from the node's attributes and
types. Weights (input 1 of a convolution / FullyConnected) are written in their storage
form, which picks the kernel: float32 (``mlk_conv2d_f32``), float16 bit patterns
(``*_w16``, widened per load) or int8 with one float32 scale per output channel
(``*_w8``; a per-tensor scale is repeated per channel). Biases and other constants are
float32 tables (a float16 one is widened here, exactly). A fused activation is a clamp
(``act_min`` / ``act_max``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from microlith.backends.c.render_base import (
    Call,
    FieldValue,
    Float,
    In,
    Out,
    Plan,
    Table,
    broadcast_loops,
    contiguous_strides,
    merge_dims,
    numel,
)
from microlith.ir.core import Node, Value
from microlith.ir.types import DType

FloatRenderer = Callable[[Node], Plan]
FLOAT_RENDERERS: dict[str, FloatRenderer] = {}
FLT_MAX = float(np.finfo(np.float32).max)
ACTIVATIONS = {"NONE": (-FLT_MAX, FLT_MAX), "RELU": (0.0, FLT_MAX), "RELU6": (0.0, 6.0),
               "RELU_N1_TO_1": (-1.0, 1.0)}
Fields = list[tuple[str, FieldValue]]


def renders_float(*ops: str) -> Callable[[FloatRenderer], FloatRenderer]:
    def wrap(fn: FloatRenderer) -> FloatRenderer:
        for op in ops:
            FLOAT_RENDERERS[op] = fn
        return fn

    return wrap


def _f(value: Value) -> In:
    if value.dtype != DType.FLOAT32:
        raise ValueError(f"{value.name!r} must be float32, not {value.dtype}")
    return In(value, "float")


def _out(value: Value) -> Out:
    if value.dtype != DType.FLOAT32:
        raise ValueError(f"{value.name!r} must be float32, not {value.dtype}")
    return Out(value, "float")


def _operand(value: Value) -> In | Table:
    """An activation, or a constant as a float32 flash table (float16 widened)."""
    if value.is_constant:
        if not value.dtype.is_float:
            raise ValueError(f"constant {value.name!r} is {value.dtype}, not float")
        return Table(value.name, np.asarray(value.data).astype(np.float32))
    return _f(value)


def _act(node: Node) -> Fields:
    name = str(node.attr("activation", node.attr("fused_activation_function", "NONE")))
    if name not in ACTIVATIONS:
        raise ValueError(f"fused activation {name} has no float C kernel")
    lo, hi = ACTIVATIONS[name]
    return [("act_min", Float(lo)), ("act_max", Float(hi))]


def weight_fields(node: Node, axis: int) -> tuple[str, Fields]:
    """(kernel suffix, fields w / w_scale / bias) for the weights' storage form."""
    w, bias = node.arg(1), node.input(2)
    if not w.is_constant:
        raise ValueError("weights must be constant")
    data = np.asarray(w.data)
    channels = w.shape[axis]
    if w.dtype == DType.FLOAT32:
        suffix, table, scale = "", data, None
    elif w.dtype == DType.FLOAT16:
        suffix, table, scale = "_w16", data.view(np.uint16), None
    elif w.dtype == DType.INT8 and w.quant is not None and not any(w.quant.zero_point):
        suffix, table = "_w8", data
        scale = np.broadcast_to(np.asarray(w.quant.scale, np.float32), (channels,))
        if w.quant.axis not in (None, axis):
            raise ValueError(f"int8 weights quantized along axis {w.quant.axis}, not {axis}")
    else:
        raise ValueError(f"weights of type {w.dtype} (symmetric int8, float16 or float32 "
                         "only)")
    fields: Fields = [("w", Table(w.name, table)),
                      ("w_scale", "NULL" if scale is None else
                       Table(f"{w.name}_scale", np.ascontiguousarray(scale)))]
    fields.append(("bias", "NULL" if bias is None else
                   Table(bias.name, np.asarray(bias.data).astype(np.float32))))
    return suffix, fields


def _window(node: Node) -> Fields:
    (sh, sw), (dh, dw) = node.attr("strides"), node.attr("dilations")
    top, left = node.attr("pads")[:2]
    return [("stride_h", sh), ("stride_w", sw), ("dil_h", dh), ("dil_w", dw),
            ("pad_top", top), ("pad_left", left)]


@renders_float("c.conv_2d")
def _conv(node: Node) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    suffix, fields = weight_fields(node, 0)
    fields += [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
               ("in_c", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
               ("out_c", y.shape[3]), ("k_h", w.shape[1]), ("k_w", w.shape[2]),
               *_window(node), ("groups", int(node.attr("group"))), *_act(node)]
    return Plan(f"float {w.shape[1]}x{w.shape[2]} {x.shape[3]}->{y.shape[3]}{suffix}",
                (Call(f"mlk_conv2d_f32{suffix}", "mlk_conv2d_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("c.depthwise_conv_2d")
def _depthwise(node: Node) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    suffix, fields = weight_fields(node, 3)
    fields += [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
               ("in_c", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
               ("depth_mult", int(node.attr("depth_multiplier"))), ("k_h", w.shape[1]),
               ("k_w", w.shape[2]), *_window(node), *_act(node)]
    return Plan(f"float depthwise {w.shape[1]}x{w.shape[2]}{suffix}",
                (Call(f"mlk_depthwise_conv2d_f32{suffix}", "mlk_depthwise_conv2d_f_params",
                      tuple(fields), (_f(x), _out(y))),))


@renders_float("tfl.fully_connected")
def _fully_connected(node: Node) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    if w.type.rank != 2:
        raise ValueError("fully-connected weights must be [units, depth]")
    units, depth = w.shape
    suffix, fields = weight_fields(node, 0)
    fields += [("batches", numel(x) // depth), ("depth", depth), ("units", units),
               *_act(node)]
    return Plan(f"float {depth}->{units}{suffix}",
                (Call(f"mlk_fully_connected_f32{suffix}", "mlk_fully_connected_f_params",
                      tuple(fields), (_f(x), _out(y))),))


@renders_float("c.max_pool_2d", "c.average_pool_2d")
def _pool(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    (kh, kw), (sh, sw) = node.attr("kernel_shape"), node.attr("strides")
    top, left = node.attr("pads")[:2]
    is_max = node.op == "c.max_pool_2d"
    fields: Fields = [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
                      ("ch", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
                      ("k_h", kh), ("k_w", kw), ("stride_h", sh), ("stride_w", sw),
                      ("pad_top", top), ("pad_left", left), ("is_max", int(is_max)),
                      ("count_border", int(node.attr("count_include_pad", 0) or 0)),
                      *_act(node)]
    return Plan(f"float {'max' if is_max else 'average'} {kh}x{kw} stride {sh}x{sw}",
                (Call("mlk_pool2d_f32", "mlk_pool2d_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("tfl.mean")
def _mean(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    axes = node.const_input(1)
    if axes is None:
        raise ValueError("mean axes must be constant")
    rank = x.type.rank
    reduced_axes = {int(a) % rank for a in np.asarray(axes).reshape(-1)}
    groups: list[list[int]] = [[], []]
    previous = None
    for axis, (n, s) in enumerate(zip(x.shape, contiguous_strides(x.shape), strict=True)):
        reduced = int(axis in reduced_axes)
        if n == 1:
            continue
        if previous == reduced:
            groups[reduced][-2] *= n
            groups[reduced][-1] = s
        else:
            groups[reduced] += [n, s]
        previous = reduced
    if len(groups[0]) > 4 or len(groups[1]) > 4:
        raise ValueError(f"mean over {sorted(reduced_axes)} of {x.shape} needs > 2+2 loops")
    kept = [1, 0] * (2 - len(groups[0]) // 2) + groups[0]
    red = groups[1] + [1, 0] * (2 - len(groups[1]) // 2)
    names = ("k0", "ks0", "k1", "ks1", "r0", "rs0", "r1", "rs1")
    return Plan(f"float mean axes {sorted(reduced_axes)}",
                (Call("mlk_mean_f32", "mlk_mean_f_params",
                      tuple(zip(names, [*kept, *red], strict=True)), (_f(x), _out(y))),))


BINARY = {"tfl.add": 0, "tfl.sub": 1, "tfl.mul": 2, "tfl.maximum": 3, "tfl.minimum": 4,
          "tfl.prelu": 5}


@renders_float(*BINARY)
def _binary(node: Node) -> Plan:
    a, b, y = node.arg(0), node.arg(1), node.output
    loops = broadcast_loops(y.shape, [a.shape, b.shape])
    fields: Fields = [("op", BINARY[node.op]), *loops, *_act(node)]
    return Plan(f"float {node.op[4:]} {a.shape} {b.shape}",
                (Call("mlk_binary_f32", "mlk_binary_f_params", tuple(fields),
                      (_operand(a), _operand(b), _out(y))),))


UNARY = {"tfl.relu": 0, "tfl.relu6": 1, "tfl.leaky_relu": 2, "tfl.logistic": 3, "tfl.tanh": 4,
         "tfl.hard_swish": 5}


@renders_float(*UNARY)
def _unary(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    fields: Fields = [("op", UNARY[node.op]), ("n", numel(y)),
                      ("alpha", Float(float(node.attr("alpha", 0.0) or 0.0)))]
    return Plan(f"float {node.op[4:]}", (Call("mlk_unary_f32", "mlk_unary_f_params",
                                              tuple(fields), (_f(x), _out(y))),))


@renders_float("tfl.softmax")
def _softmax(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    depth = int(x.shape[-1])
    fields: Fields = [("outer", numel(x) // depth), ("depth", depth),
                      ("beta", Float(float(node.attr("beta", 1.0))))]
    return Plan(f"float softmax over {depth}", (Call("mlk_softmax_f32", "mlk_softmax_f_params",
                                                     tuple(fields), (_f(x), _out(y))),))


@renders_float("tfl.transpose")
def _transpose(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    perm = node.const_input(1)
    if perm is None:
        raise ValueError("the transpose permutation must be a constant")
    in_strides = contiguous_strides(x.shape)
    dims, (strides,) = merge_dims([int(n) for n in y.shape],
                                  [[in_strides[int(a)] for a in np.asarray(perm).reshape(-1)]])
    if len(dims) > 6:
        raise ValueError(f"transpose needs {len(dims)} loops (at most 6)")
    pad = 6 - len(dims)
    fields = (*((f"n{i}", n) for i, n in enumerate([1] * pad + dims)),
              *((f"s{i}", s) for i, s in enumerate([0] * pad + strides)))
    return Plan("float transpose", (Call("mlk_transpose_f32", "mlk_transpose_f_params",
                                         tuple(fields), (_f(x), _out(y))),))


@renders_float("tfl.pad", "tfl.padv2")
def _pad(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    paddings = node.const_input(1)
    if paddings is None:
        raise ValueError("paddings must be constant")
    pairs = [(int(a), int(b)) for a, b in np.asarray(paddings).reshape(-1, 2)]
    if min((v for pair in pairs for v in pair), default=0) < 0:
        raise ValueError("negative pads (cropping) are not supported")
    value = 0.0
    if node.op == "tfl.padv2":
        fill = node.const_input(2)
        if fill is None:
            raise ValueError("the PADV2 fill value must be a constant")
        value = float(np.asarray(fill, np.float32).reshape(-1)[0])
    merged: list[list[int]] = []
    for d, (before, after) in reversed(list(zip(x.shape, pairs, strict=True))):
        if merged and merged[0][1] == merged[0][2] == 0:
            inner = merged.pop(0)[0]
            merged.insert(0, [d * inner, before * inner, after * inner])
        else:
            merged.insert(0, [int(d), before, after])
    if len(merged) > 4:
        raise ValueError(f"pad of rank {len(pairs)} needs more than 4 loops")
    merged = [[1, 0, 0]] * (4 - len(merged)) + merged
    fields: Fields = [*((f"d{i}", m[0]) for i, m in enumerate(merged)),
                      *((f"b{i}", m[1]) for i, m in enumerate(merged)),
                      *((f"o{i}", m[0] + m[1] + m[2]) for i, m in enumerate(merged)),
                      ("value", Float(max(min(value, FLT_MAX), -FLT_MAX)))]
    return Plan(f"float pad {pairs}", (Call("mlk_pad_f32", "mlk_pad_f_params", tuple(fields),
                                            (_f(x), _out(y))),))


@renders_float("tfl.concatenation")
def _concat(node: Node) -> Plan:
    y = node.output
    if node.attr("fused_activation_function", "NONE") != "NONE":
        raise ValueError("concatenation with a fused activation is not supported")
    axis = int(node.attr("axis")) % y.type.rank
    outer, out_inner = math.prod(y.shape[:axis]), math.prod(y.shape[axis:])
    calls, offset = [], 0
    for v in (v for v in node.inputs if v is not None):
        in_inner = math.prod(v.shape[axis:])
        fields = (("outer", outer), ("in_inner", in_inner), ("out_inner", out_inner),
                  ("offset", offset))
        calls.append(Call("mlk_concat_f32", "mlk_concat_f_params", fields,
                          (_operand(v), _out(y))))
        offset += in_inner
    return Plan(f"float concatenation axis {axis}", tuple(calls))
