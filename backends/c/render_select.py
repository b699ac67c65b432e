"""C renderers: DIV, EXP / ELU tables, STRIDED_SLICE, GATHER, REDUCE_MAX / REDUCE_MIN / SUM,
ARG_MAX / ARG_MIN, RSQRT (a table),
RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (the maths is in ``microlith.quant.elementwise``
/ ``activation`` / ``select`` / ``resize``)."""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c.render_base import (
    Call,
    In,
    Out,
    Plan,
    Table,
    broadcast_loops,
    contiguous_strides,
    int8_values,
    merge_dims,
    numel,
    renders,
    shift_in_range,
)
from microlith.ir.core import Node, Value
from microlith.ir.types import DType
from microlith.quant.activation import TableParams
from microlith.quant.elementwise import DivParams
from microlith.quant.resize import ResizeParams
from microlith.quant.rsqrt import RsqrtParams, rsqrt_table
from microlith.quant.select import (
    ArgParams,
    BatchMatMulParams,
    GatherParams,
    ReduceParams,
    StridedSliceParams,
)
from microlith.quant.transpose_conv import TransposeConvParams


@renders("tfl.div")
def _div(node: Node, p: DivParams) -> Plan:
    a, b, y = node.arg(0), node.arg(1), node.output
    int8_values(a, b, y)
    fields = (*broadcast_loops(y.shape, [a.shape, b.shape]), ("a_zp", p.a_zp),
              ("b_zp", p.b_zp), ("mult", p.mult), ("shift", shift_in_range(p.shift)),
              ("y_zp", p.y_zp), ("act_min", p.act_min), ("act_max", p.act_max))
    return Plan(f"{a.shape} / {b.shape}",
                (Call("mlk_div_i8", "mlk_div_params", fields, (In(a), In(b), Out(y))),))


@renders("tfl.exp", "tfl.elu", "tfl.gelu")
def _table(node: Node, p: TableParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    fields = (("n", numel(y)), ("table", Table(f"{node.name}_table",
                                                np.asarray(p.table, np.int8))))
    return Plan("256-entry table", (Call("mlk_lut_i8", "mlk_lut_params", fields,
                                         (In(x), Out(y))),))


@renders("tfl.rsqrt")
def _rsqrt(node: Node, p: RsqrtParams) -> Plan:
    """The 256 outputs of the integer RSQRT kernel (``legalize-c`` usually makes it a
    ``c.lut`` already)."""
    x, y = node.arg(0), node.output
    int8_values(x, y)
    fields = (("n", numel(y)), ("table", Table(f"{node.name}_table", rsqrt_table(p))))
    return Plan("256-entry table", (Call("mlk_lut_i8", "mlk_lut_params", fields,
                                         (In(x), Out(y))),))


def strided_copy_fields(x: Value, y: Value, p: StridedSliceParams
                        ) -> tuple[tuple[str, int], ...]:
    """The ``mlk_strided_copy_*`` record of a slice of ``x`` into ``y`` (any element type):
    ``y[i] = x[offset + sum i_k step_k]``, ``offset`` the begin, ``step`` stride x size,
    over at most six merged loops."""
    strides = contiguous_strides(x.shape)
    offset = sum(b * s for b, s in zip(p.begin, strides, strict=True))
    dims, (steps,) = merge_dims([int(n) for n in y.shape],
                                [[k * s for k, s in zip(p.strides, strides, strict=True)]])
    if len(dims) > 6:
        raise ValueError(f"strided slice needs {len(dims)} loops (at most 6)")
    pad = 6 - len(dims)
    return (*((f"n{i}", n) for i, n in enumerate([1] * pad + dims)),
            *((f"s{i}", s) for i, s in enumerate([0] * pad + steps)), ("offset", offset))


@renders("tfl.strided_slice")
def _strided_slice(node: Node, p: StridedSliceParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    fields = strided_copy_fields(x, y, p)
    return Plan(f"begin {list(p.begin)} strides {list(p.strides)}",
                (Call("mlk_strided_copy_i8", "mlk_strided_copy_params", fields,
                      (In(x), Out(y))),))


@renders("tfl.gather")
def _gather(node: Node, p: GatherParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    fields = (("outer", math.prod(x.shape[:p.axis])), ("count", len(p.indices)),
              ("inner", math.prod(x.shape[p.axis + 1:])), ("dim", x.shape[p.axis]),
              ("indices", Table(f"{node.name}_indices", np.asarray(p.indices, np.int32))))
    return Plan(f"axis {p.axis}, {len(p.indices)} indices",
                (Call("mlk_gather_i8", "mlk_gather_params", fields, (In(x), Out(y))),))


@renders("tfl.arg_max", "tfl.arg_min")
def _arg(node: Node, p: ArgParams) -> Plan:
    x, y = node.arg(0), node.output
    if x.dtype != DType.INT8 or y.dtype != DType.INT32:
        raise ValueError(f"arg-max / arg-min of {x.dtype.value} into {y.dtype.value} (the C "
                         "kernel reads int8 and writes int32)")
    fields = (("outer", math.prod(x.shape[:p.axis])), ("n", x.shape[p.axis]),
              ("inner", math.prod(x.shape[p.axis + 1:])), ("is_max", int(p.is_max)))
    return Plan(f"axis {p.axis}", (Call("mlk_arg_i8", "mlk_arg_params", fields,
                                        (In(x), Out(y, "int32_t"))),))


@renders("tfl.reduce_max", "tfl.reduce_min", "tfl.sum")
def _reduce(node: Node, p: ReduceParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    shape = list(x.shape)
    kept = [i for i, d in enumerate(shape) if d != 1 or i in p.axes]
    axes = [i for i in kept if i in p.axes and shape[i] != 1]
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        axes_all = [i for i in kept if i in p.axes]
        raise ValueError(f"reduction over the non-adjacent axes {axes_all} of {x.shape}")
    first = axes[0] if axes else len(shape)
    last = axes[-1] + 1 if axes else len(shape)
    outer, reduce = math.prod(shape[:first]), math.prod(shape[first:last])
    kind = 2 if node.op == "tfl.sum" else p.is_max
    fields = (("outer", outer), ("reduce", reduce), ("inner", math.prod(shape[last:])),
              ("kind", kind), ("x_zp", p.x_zp), ("mult", p.mult),
              ("shift", shift_in_range(p.shift) if kind == 2 else 0), ("y_zp", p.y_zp))
    return Plan(f"axes {list(p.axes)}",
                (Call("mlk_reduce_i8", "mlk_reduce_params", fields, (In(x), Out(y))),))


@renders("tfl.resize_nearest_neighbor", "tfl.resize_bilinear")
def _resize(node: Node, p: ResizeParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    fields = (("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
              ("channels", x.shape[3]), ("out_h", y.shape[1]), ("out_w", y.shape[2]),
              ("bilinear", p.bilinear),
              ("rows", Table(f"{node.name}_rows", np.asarray(p.rows, np.int32).reshape(-1))),
              ("cols", Table(f"{node.name}_cols", np.asarray(p.cols, np.int32).reshape(-1))))
    return Plan(f"{x.shape} -> {y.shape}",
                (Call("mlk_resize_i8", "mlk_resize_params", fields, (In(x), Out(y))),))


@renders("tfl.batch_matmul")
def _batch_matmul(node: Node, p: BatchMatMulParams) -> Plan:
    a, b, y = node.arg(0), node.arg(1), node.output
    int8_values(a, b, y)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batches = math.prod(y.shape[:-2])
    strides = []
    for v, rows, cols in ((a, m, k), (b, k, n)):
        count = math.prod(v.shape[:-2])
        if count not in (1, batches):
            raise ValueError(f"batch broadcasting of {a.shape} by {b.shape} is not supported")
        strides.append(0 if count == 1 and batches > 1 else rows * cols)
    if k * 255 * 255 >= 1 << 31:
        raise ValueError("the int32 accumulator could overflow")
    fields = (("batches", batches), ("a_batch_stride", strides[0]),
              ("b_batch_stride", strides[1]), ("m", m), ("k", k), ("n", n), ("a_zp", p.a_zp),
              ("b_zp", p.b_zp), ("mult", p.mult), ("shift", shift_in_range(p.shift)),
              ("y_zp", p.y_zp))
    return Plan(f"{a.shape} @ {b.shape}",
                (Call("mlk_batch_matmul_i8", "mlk_batch_matmul_params", fields,
                      (In(a), In(b), Out(y))),))


@renders("tfl.transpose_conv")
def _transpose_conv(node: Node, p: TransposeConvParams) -> Plan:
    x, y = node.arg(2), node.output
    int8_values(x, y)
    out_c, kh, kw, in_c = p.weights.shape
    fields = (("batches", x.shape[0]), ("in_h", x.shape[1]), ("in_w", x.shape[2]),
              ("in_c", in_c), ("out_h", y.shape[1]), ("out_w", y.shape[2]), ("out_c", out_c),
              ("k_h", kh), ("k_w", kw), ("stride_h", p.stride_h), ("stride_w", p.stride_w),
              ("x_zp", p.x_zp), ("y_zp", p.y_zp), ("act_min", p.act_min),
              ("act_max", p.act_max), ("weights", Table(f"{node.name}_weights", p.weights)),
              ("bias", Table(f"{node.name}_bias", np.asarray(p.bias, np.int32))),
              ("mult", Table(f"{node.name}_mult", np.asarray(p.mult, np.int32))),
              ("shift", Table(f"{node.name}_shift",
                              np.asarray([shift_in_range(int(s)) for s in p.shift], np.int32))))
    return Plan(f"{x.shape} -> {y.shape}",
                (Call("mlk_transpose_conv_i8", "mlk_transpose_conv_params", fields,
                      (In(x), Out(y))),))
