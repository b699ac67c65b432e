"""C renderers: convolutions, fully connected, pooling, mean (maths in ``render_ops``)."""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c.render_base import (
    Call,
    In,
    Out,
    Plan,
    Table,
    _act,
    _biases,
    _contiguous,
    _int8,
    _multiplier_tables,
    _numel,
    _per_channel,
    _quant,
    _register,
    _tensor_q,
)
from microlith.backends.tflite.padding import tflite_padding
from microlith.interpreter import fixed_point as fp
from microlith.interpreter.int8_common import (
    spatial_geometry,
)
from microlith.ir.core import Node

# --------------------------------------------------------------------------- convolutions


@_register("Conv")
def _conv(node: Node) -> Plan:
    x, w, y = node.inputs[0], node.inputs[1], node.output
    _int8(x, w, y)
    if node.attr("layout", "NCHW") != "NHWC" or x.type.rank != 4:
        raise ValueError("the C convolution expects a 4-D NHWC input (run to-nhwc)")
    if not w.is_constant:
        raise ValueError("convolution weights must be constant")
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    out_c, kh, kw, cg = w.shape
    batches, in_h, in_w, in_c = x.shape
    _, out_h, out_w, _ = y.shape
    group = int(node.attr("group", 1))
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    top, left, _, _ = node.attr("pads", (0, 0, 0, 0))
    if min(top, left) < 0 or in_c != cg * group or out_c % group:
        raise ValueError(f"unsupported convolution geometry (pads, groups {group})")
    lo, hi = _act(node, sy, zy)
    mult, shift = _multiplier_tables(node.name, sx, _per_channel(_quant(w), out_c), sy)
    data = np.asarray(w.data)
    bias, folded = _biases(node, data.reshape(out_c, -1), zx)
    tables = (Table(w.name, data), Table(f"{node.name}_bias", bias),
              Table(f"{node.name}_bias_folded", folded), mult, shift)
    geometry = (sh, sw, dh, dw, top, left)
    text = f"{kh}x{kw} stride {sh}x{sw} dilation {dh}x{dw} pad {top},{left}, "
    if group > 1 and group == in_c and cg == 1:  # weights as [KH][KW][C*M] (TFLite's)
        tables = (Table(w.name, np.ascontiguousarray(data.reshape(out_c, kh * kw).T)),
                  *tables[1:])
        call = Call("mlk_depthwise_conv2d_i8", (In(x), *tables, Out(y), batches, in_h, in_w,
                                                in_c, out_h, out_w, out_c // in_c, kh, kw,
                                                *geometry, zx, zy, lo, hi))
        return Plan(f"depthwise {text}x{out_c // in_c}", (call,))
    if (kh, kw, sh, sw, group) == (1, 1, 1, 1, 1) and (in_h, in_w) == (out_h, out_w):
        # pointwise: a fully-connected layer over the pixels (no pads: same size)
        call = Call("mlk_fully_connected_i8", (In(x), tables[0], tables[2], mult, shift, Out(y),
                                               batches * in_h * in_w, in_c, out_c, zy, lo, hi))
        return Plan(f"pointwise {in_c}->{out_c}", (call,))
    call = Call("mlk_conv2d_i8", (In(x), *tables, Out(y), batches, in_h, in_w, in_c, out_h,
                                  out_w, out_c, kh, kw, *geometry, group, zx, zy, lo, hi))
    return Plan(f"{text}{in_c}->{out_c} groups {group}", (call,))


@_register("FullyConnected")
def _fully_connected(node: Node) -> Plan:
    x, w, y = node.inputs[0], node.inputs[1], node.output
    _int8(x, w, y)
    if not w.is_constant or w.type.rank != 2:
        raise ValueError("fully-connected weights must be a constant [units, depth] tensor")
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    units, depth = w.shape
    data = np.asarray(w.data)
    _, folded = _biases(node, data, zx)
    mult, shift = _multiplier_tables(node.name, sx, _per_channel(_quant(w), units), sy)
    lo, hi = _act(node, sy, zy)
    call = Call("mlk_fully_connected_i8", (In(x), Table(w.name, data),
                                           Table(f"{node.name}_bias_folded", folded), mult,
                                           shift, Out(y), _numel(x) // depth, depth, units, zy,
                                           lo, hi))
    return Plan(f"{depth}->{units}", (call,))


# --------------------------------------------------------------------------- pooling / mean


@_register("MaxPool", "AveragePool")
def _pool(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    if node.attr("layout", "NCHW") != "NHWC" or x.type.rank != 4:
        raise ValueError("the C pooling expects a 4-D NHWC input (run to-nhwc)")
    (_, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    kh, kw = node.attr("kernel_shape")
    sh, sw = node.attr("strides", (1, 1))
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    batches, in_h, in_w, ch = x.shape
    _, out_h, out_w, _ = y.shape
    padding = tflite_padding((in_h, in_w), (kh, kw), (sh, sw), (1, 1), pads)
    if node.op == "AveragePool" and node.attr("count_include_pad", 0) and any(pads):
        padding = None
    if padding is None:  # an explicit border (-128 for max: the same as skipping it)
        (top, left), count_border = pads[:2], int(node.op == "AveragePool")
    else:
        (_, (top, left)), count_border = spatial_geometry(padding, (in_h, in_w), (kh, kw),
                                                          (sh, sw)), 0
    if kh * kw >= 1 << 22:
        raise ValueError("pooling window too large for an int32 sum")
    lo, hi = _act(node, sy, zy)
    common = (Out(y), batches, in_h, in_w, ch, out_h, out_w, kh, kw, sh, sw, top, left)
    mode = padding or f"border {pads}"
    if node.op == "MaxPool":
        return Plan(f"{kh}x{kw} stride {sh}x{sw} {mode}",
                    (Call("mlk_max_pool2d_i8", (In(x), *common, lo, hi)),))
    return Plan(f"{kh}x{kw} stride {sh}x{sw} {mode}",
                (Call("mlk_avg_pool2d_i8", (In(x), *common, count_border, zx, lo, hi)),))


@_register("GlobalAveragePool", "ReduceMean")
def _mean(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    rank = x.type.rank
    if node.op == "GlobalAveragePool":
        if node.attr("layout", "NCHW") != "NHWC" or rank != 4:
            raise ValueError("the C global pooling expects a 4-D NHWC input (run to-nhwc)")
        axes = [1, 2]
    else:
        axes = node.attr("axes")
        axes = list(range(rank)) if axes is None else sorted({a % rank for a in axes})
    count = math.prod(x.shape[a] for a in axes)
    if count == 0:
        raise ValueError("mean over an empty axis")
    mult, shift = fp.quantize_multiplier(sx / sy)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    mult, shift = int(fp.wrap_int32((mult << k) // count)), shift - k
    if not -31 <= shift <= 31:
        raise ValueError(f"mean multiplier shift {shift} outside [-31, 31]")
    strides = _contiguous(x.shape)
    groups: list[list[int]] = [[], []]  # (size, stride) of kept / reduced runs
    previous = None
    for axis, (n, s) in enumerate(zip(x.shape, strides, strict=True)):
        reduced = int(axis in axes)
        if n == 1:
            continue
        if previous == reduced:
            groups[reduced][-2] *= n
            groups[reduced][-1] = s
        else:
            groups[reduced] += [n, s]
        previous = reduced
    if len(groups[0]) > 4 or len(groups[1]) > 4:
        raise ValueError(f"mean over axes {axes} of {x.shape} needs more than 2+2 loops")
    kept = [1, 0] * (2 - len(groups[0]) // 2) + groups[0]
    red = groups[1] + [1, 0] * (2 - len(groups[1]) // 2)
    zp_count = int(fp.wrap_int32(zx * count))
    call = Call("mlk_mean_i8", (In(x), Out(y), *kept, *red, zp_count, mult, shift, zy))
    return Plan(f"axes {axes}, {count} elements", (call,))
