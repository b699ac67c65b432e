"""C renderers of the float SPLIT / SPLIT_V, STRIDED_SLICE, GATHER, ARG_MAX / ARG_MIN,
REDUCE_MAX / REDUCE_MIN / SUM, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR and
TRANSPOSE_CONV kernels (``microlith_kernels_float_data.h``).

Geometry comes from the same constant operands the integer kernels read
(``microlith.quant.select`` / ``data`` prepare them without quantization). Resize taps are
tabled here from the float interpreter's coordinate maths (``microlith.ops.resize``): per
output row / column ``(lo, hi)`` and the float32 weights ``(1 - w, w)`` of the TFLite
formulas (``t = in / out`` or ``(in - 1) / (out - 1)`` with align_corners; nearest
``min(align ? round(o t) : floor((o + h) t), in - 1)``; bilinear ``v = (o + 0.5) t - 0.5``
or ``o t``, ``lo = max(floor v, 0)``, ``hi = min(ceil v, in - 1)``, ``w = v - lo``).
"""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c.render_base import (
    Call,
    Out,
    Plan,
    Table,
)
from microlith.backends.c.render_float import Fields, _act, _f, _operand, _out, renders_float
from microlith.backends.c.render_select import strided_copy_fields
from microlith.ir.core import Node
from microlith.ir.types import DType
from microlith.ops.reduce import tfl_axes
from microlith.ops.resize import tfl_size, tflite_bilinear_coordinates, tflite_nearest
from microlith.quant.data import _prepare_split, _prepare_split_v
from microlith.quant.select import _prepare_arg, _prepare_gather, _prepare_strided_slice


@renders_float("tfl.split", "tfl.split_v")
def _split(node: Node) -> Plan:
    """One ``mlk_split_f32`` per output: its rows of the input, from ``offset`` on."""
    p = (_prepare_split if node.op == "tfl.split" else _prepare_split_v)(node)
    x = node.arg(1 if node.op == "tfl.split" else 0)
    outer, in_inner = math.prod(x.shape[:p.axis]), math.prod(x.shape[p.axis:])
    calls, offset = [], 0
    for y in node.outputs:
        out_inner = math.prod(y.shape[p.axis:])
        fields = (("outer", outer), ("in_inner", in_inner), ("out_inner", out_inner),
                  ("offset", offset))
        calls.append(Call("mlk_split_f32", "mlk_split_f_params", fields, (_f(x), _out(y))))
        offset += out_inner
    return Plan(f"float split axis {p.axis}, {len(node.outputs)} outputs", tuple(calls))


@renders_float("tfl.strided_slice")
def _strided_slice(node: Node) -> Plan:
    """``y[i] = x[offset + sum i_k step_k]``: ``offset`` the begin, ``step`` stride x size."""
    x, y = node.arg(0), node.output
    p = _prepare_strided_slice(node)
    fields: Fields = list(strided_copy_fields(x, y, p))
    return Plan(f"float strided slice begin {list(p.begin)} strides {list(p.strides)}",
                (Call("mlk_strided_copy_f32", "mlk_strided_copy_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("tfl.gather")
def _gather(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    p = _prepare_gather(node)
    dim = int(x.shape[p.axis])
    indices = np.asarray(p.indices, np.int64)
    if indices.size and (indices.min() < -dim or indices.max() >= dim):
        raise ValueError(f"gather index out of [-{dim}, {dim})")
    fields: Fields = [("outer", math.prod(x.shape[:p.axis])), ("count", len(p.indices)),
                      ("inner", math.prod(x.shape[p.axis + 1:])), ("dim", dim),
                      ("indices", Table(f"{node.name}_indices",
                                        (indices % max(dim, 1)).astype(np.int32)))]
    return Plan(f"float gather axis {p.axis}, {len(p.indices)} indices",
                (Call("mlk_gather_f32", "mlk_gather_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("tfl.arg_max", "tfl.arg_min")
def _arg(node: Node) -> Plan:
    """The first extremum's index along the axis, int32 or int64 as ``output_type``."""
    x, y = node.arg(0), node.output
    p = _prepare_arg(node)
    kinds = {DType.INT32: ("mlk_arg_f32", "int32_t"), DType.INT64: ("mlk_arg_f32_i64",
                                                                  "int64_t")}
    if y.dtype not in kinds:
        raise ValueError(f"arg-max / arg-min into {y.dtype.value} (int32 / int64 only)")
    function, ctype = kinds[y.dtype]
    fields: Fields = [("outer", math.prod(x.shape[:p.axis])), ("n", x.shape[p.axis]),
                      ("inner", math.prod(x.shape[p.axis + 1:])), ("is_max", int(p.is_max))]
    return Plan(f"float arg-{'max' if p.is_max else 'min'} axis {p.axis}",
                (Call(function, "mlk_arg_f_params", tuple(fields),
                      (_f(x), Out(y, ctype))),))


@renders_float("tfl.reduce_max", "tfl.reduce_min", "tfl.sum")
def _reduce(node: Node) -> Plan:
    """``[outer][reduce][inner]`` once size-1 axes are dropped; the reduced axes must then be
    adjacent."""
    x, y = node.arg(0), node.output
    shape = [int(d) for d in x.shape]
    axes_all = tfl_axes(node, len(shape))
    axes = [i for i in axes_all if shape[i] != 1]
    if axes and any(shape[i] != 1 and i not in axes for i in range(axes[0], axes[-1])):
        raise ValueError(f"reduction over the non-adjacent axes {axes_all} of {x.shape}")
    first = axes[0] if axes else len(shape)
    last = axes[-1] + 1 if axes else len(shape)
    kind = {"tfl.reduce_min": 0, "tfl.reduce_max": 1, "tfl.sum": 2}[node.op]
    fields: Fields = [("outer", math.prod(shape[:first])), ("reduce", math.prod(shape[first:last])),
                      ("inner", math.prod(shape[last:])), ("kind", kind)]
    return Plan(f"float {node.op[4:]} axes {axes_all}",
                (Call("mlk_reduce_f32", "mlk_reduce_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("tfl.batch_matmul")
def _batch_matmul(node: Node) -> Plan:
    a, b, y = node.arg(0), node.arg(1), node.output
    if node.attr("adj_x") or node.attr("adj_y"):
        raise ValueError("adj_x / adj_y are not supported")
    if a.type.rank < 2 or b.type.rank < 2:
        raise ValueError(f"batch matmul of {a.shape} by {b.shape} (rank >= 2 only)")
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batches = math.prod(y.shape[:-2])
    strides = []
    for v, rows, cols in ((a, m, k), (b, k, n)):
        count = math.prod(v.shape[:-2])
        if count not in (1, batches):
            raise ValueError(f"batch broadcasting of {a.shape} by {b.shape} is not supported")
        strides.append(0 if count == 1 else rows * cols)
    fields: Fields = [("batches", batches), ("a_batch_stride", strides[0]),
                      ("b_batch_stride", strides[1]), ("m", m), ("k", k), ("n", n)]
    return Plan(f"float {a.shape} @ {b.shape}",
                (Call("mlk_batch_matmul_f32", "mlk_batch_matmul_f_params", tuple(fields),
                      (_operand(a), _operand(b), _out(y))),))


def _taps(out: int, size: int, align: bool, half: bool, bilinear: bool
          ) -> tuple[np.ndarray, np.ndarray]:
    """``[out][2]`` int32 ``(lo, hi)`` and float32 ``(1 - w, w)`` of one axis."""
    if bilinear:
        v = tflite_bilinear_coordinates(out, size, align, half)
        lo = np.maximum(np.floor(v), 0).astype(np.int64)
        hi = np.minimum(np.ceil(v), size - 1).astype(np.int64)
        w = (v - lo).astype(np.float32)
    else:
        lo = hi = tflite_nearest(out, size, align, half)
        w = np.zeros(out, np.float32)
    index = np.stack([lo, hi], axis=1).astype(np.int32)
    weight = np.stack([np.float32(1) - w, w], axis=1).astype(np.float32)
    return index, weight


@renders_float("tfl.resize_nearest_neighbor", "tfl.resize_bilinear")
def _resize(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    if x.type.rank != 4:
        raise ValueError(f"resize of a {x.type.rank}-D input (NHWC only)")
    align, half = bool(node.attr("align_corners")), bool(node.attr("half_pixel_centers"))
    bilinear = node.op == "tfl.resize_bilinear"
    (rows, row_w), (cols, col_w) = (
        _taps(out, int(x.shape[axis]), align, half, bilinear)
        for axis, out in zip((1, 2), tfl_size(node), strict=True))
    fields: Fields = [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
                      ("channels", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
                      ("rows", Table(f"{node.name}_rows", rows.reshape(-1))),
                      ("row_w", Table(f"{node.name}_row_w", row_w.reshape(-1))),
                      ("cols", Table(f"{node.name}_cols", cols.reshape(-1))),
                      ("col_w", Table(f"{node.name}_col_w", col_w.reshape(-1)))]
    kind = "bilinear" if bilinear else "nearest"
    return Plan(f"float {kind} resize {x.shape} -> {y.shape}",
                (Call("mlk_resize_f32", "mlk_resize_f_params", tuple(fields),
                      (_f(x), _out(y))),))


@renders_float("tfl.transpose_conv")
def _transpose_conv(node: Node) -> Plan:
    w, x, y, bias = node.arg(1), node.arg(2), node.output, node.input(3)
    if node.attr("padding") != "VALID":
        raise ValueError("only VALID transposed convolution has a float C kernel")
    if not w.is_constant or (bias is not None and not bias.is_constant):
        raise ValueError("transposed convolution weights and bias must be constant")
    if not w.dtype.is_float:  # float16 weights are widened to a float32 table, exactly
        raise ValueError(f"transposed convolution weights of type {w.dtype} (float only)")
    out_c, kh, kw, in_c = (int(d) for d in w.shape)
    fields: Fields = [("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
                      ("in_c", in_c), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
                      ("out_c", out_c), ("k_h", kh), ("k_w", kw),
                      ("stride_h", int(node.attr("stride_h"))),
                      ("stride_w", int(node.attr("stride_w"))), *_act(node),
                      ("w", Table(w.name, np.asarray(w.data).astype(np.float32))),
                      ("bias", "NULL" if bias is None else
                       Table(bias.name, np.asarray(bias.data).astype(np.float32)))]
    return Plan(f"float transposed {kh}x{kw} {in_c}->{out_c}",
                (Call("mlk_transpose_conv_f32", "mlk_transpose_conv_f_params", tuple(fields),
                      (_f(x), _out(y))),))
