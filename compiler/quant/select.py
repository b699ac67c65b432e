"""Integer STRIDED_SLICE, GATHER, REDUCE_MAX / REDUCE_MIN, SUM and ARG_MAX / ARG_MIN, bit-exact
with TFLite-Micro.

STRIDED_SLICE and GATHER copy int8 values (input and output share their quantization).
REDUCE_MAX / REDUCE_MIN take the extremum of the int8 values (TFLite-Micro requires equal
input and output quantization). SUM: the int32 sum ``S`` of the ``n`` reduced values,
``y = clamp(z_y + MBQM(S - z_x n, M))`` with ``M = QuantizeMultiplier(double(s_x) /
double(s_y))`` (measured against TFLite-Micro's runtime; its older float32 formula in
``QuantizedMeanOrSum`` is not what it runs). ARG_MAX / ARG_MIN: the index of the first
extremum of the int8 values along the axis (a positive scale keeps the order of the real
values), int32 or int64 as ``output_type`` says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import as_int, clamp_to_int8
from microlith.quant.nodes import tensor_q
from microlith.quant.registry import integer_op


@dataclass(frozen=True, eq=False)
class StridedSliceParams:
    begin: tuple[int, ...]
    end: tuple[int | None, ...]  # None: to the beginning (a negative stride)
    strides: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class GatherParams:
    axis: int
    indices: tuple[int, ...]
    indices_shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class ReduceParams:
    axes: tuple[int, ...]
    keep_dims: bool
    is_max: int  # REDUCE_MAX 1, REDUCE_MIN 0 (unused by SUM)
    count: int = 1
    x_zp: int = 0
    mult: int = 0  # SUM: QuantizeMultiplier(double(s_x) / double(s_y))
    shift: int = 0
    y_zp: int = 0


def _prepare_strided_slice(node: Node) -> StridedSliceParams:
    from microlith.ops.select import strided_index

    index = strided_index(node, node.arg(0).shape)
    return StridedSliceParams(tuple(int(s.start) for s in index),
                              tuple(None if s.stop is None else int(s.stop) for s in index),
                              tuple(int(s.step) for s in index))


@integer_op("tfl.strided_slice", prepare=_prepare_strided_slice)
def run_strided_slice(p: StridedSliceParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    index = tuple(slice(b, e, s) for b, e, s in zip(p.begin, p.end, p.strides, strict=True))
    return [np.ascontiguousarray(x[index])]


def _prepare_gather(node: Node) -> GatherParams:
    indices = node.const_input(1)
    if indices is None:
        raise ValueError("the gather indices must be constant")
    rank = node.arg(0).type.rank
    return GatherParams(int(node.attr("axis", 0)) % rank,
                        tuple(int(i) for i in np.asarray(indices).reshape(-1)),
                        tuple(int(d) for d in np.asarray(indices).shape))


@integer_op("tfl.gather", prepare=_prepare_gather)
def run_gather(p: GatherParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    taken = np.take(x, np.asarray(p.indices, np.int64).reshape(p.indices_shape), axis=p.axis)
    return [np.ascontiguousarray(taken)]


def _prepare_reduce(node: Node) -> ReduceParams:
    from microlith.ops.reduce import tfl_axes

    x = node.arg(0)
    axes = tuple(tfl_axes(node, x.type.rank))
    keep = bool(node.attr("keep_dims"))
    if node.op != "tfl.sum":
        return ReduceParams(axes, keep, int(node.op == "tfl.reduce_max"))
    (sx, zx), (sy, zy) = tensor_q(x), tensor_q(node.output)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    mult, shift = fp.quantize_multiplier(float(sx) / float(sy))
    return ReduceParams(axes, keep, 0, count, zx, mult, shift, zy)


def run_reduce(p: ReduceParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    fn = np.max if p.is_max else np.min
    return [np.asarray(fn(x, axis=p.axes, keepdims=p.keep_dims), np.int8)]


integer_op("tfl.reduce_max", "tfl.reduce_min", prepare=_prepare_reduce)(run_reduce)


@integer_op("tfl.sum", prepare=_prepare_reduce)
def run_sum(p: ReduceParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    total = as_int(need(args, 0)).sum(axis=p.axes, keepdims=p.keep_dims)
    shifted = fp.wrap_int32(total - p.x_zp * p.count)
    return [clamp_to_int8(p.y_zp + fp.multiply_by_quantized_multiplier(shifted, p.mult,
                                                                       p.shift))]


# ---- BATCH_MATMUL ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BatchMatMulParams:
    a_zp: int
    b_zp: int
    mult: int  # QuantizeMultiplier(double(float32(s_a s_b)) / double(s_y))
    shift: int
    y_zp: int


def batch_matmul_params(*, a_scale: float, a_zp: int, b_scale: float, b_zp: int,
                        y_scale: float, y_zp: int) -> BatchMatMulParams:
    product = float(np.float32(np.float32(a_scale) * np.float32(b_scale)))
    mult, shift = fp.quantize_multiplier(product / float(np.float32(y_scale)))
    return BatchMatMulParams(int(a_zp), int(b_zp), mult, shift, int(y_zp))


def run_batch_matmul(p: BatchMatMulParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """``clamp(z_y + MBQM(sum_k (a - z_a)(b - z_b), M))`` over numpy-broadcast batches."""
    a = as_int(need(args, 0)) - p.a_zp
    b = as_int(need(args, 1)) - p.b_zp
    acc = fp.wrap_int32(np.matmul(a, b))
    return [clamp_to_int8(p.y_zp + fp.multiply_by_quantized_multiplier(acc, p.mult, p.shift))]


def _prepare_batch_matmul(node: Node) -> BatchMatMulParams:
    if node.attr("adj_x") or node.attr("adj_y"):
        raise ValueError("adj_x / adj_y are not supported")
    (sa, za), (sb, zb), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    return batch_matmul_params(a_scale=sa, a_zp=za, b_scale=sb, b_zp=zb, y_scale=sy, y_zp=zy)


integer_op("tfl.batch_matmul", prepare=_prepare_batch_matmul)(run_batch_matmul)


@dataclass(frozen=True, eq=False)
class ArgParams:
    """ARG_MAX / ARG_MIN over ``axis``: ``[outer, n, inner]`` views, ``dtype`` of the index."""

    axis: int
    is_max: bool
    dtype: str


def _prepare_arg(node: Node) -> ArgParams:
    axis = node.const_input(1)
    if axis is None:
        raise ValueError("the arg-max / arg-min axis must be a constant")
    rank = node.arg(0).type.rank
    dtype = str(node.attr("output_type"))
    if dtype not in ("int32", "int64"):
        raise ValueError(f"output_type {dtype} is not int32 / int64")
    return ArgParams(int(np.asarray(axis).reshape(-1)[0]) % rank, node.op == "tfl.arg_max",
                     dtype)


@integer_op("tfl.arg_max", "tfl.arg_min", prepare=_prepare_arg)
def run_arg(p: ArgParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    fn = np.argmax if p.is_max else np.argmin  # the first extremum, as TFLite-Micro
    return [np.asarray(fn(x, axis=p.axis), np.dtype(p.dtype))]
