"""Selection and reductions beyond the mean: ONNX ``ReduceMax`` / ``ReduceMin`` /
``ReduceSum`` / ``ReduceProd`` (``axes`` attribute, all axes when None; ``keepdims``),
``ArgMax`` / ``ArgMin`` (int64 indices of the first extremum along ``axis``) and TFLite's
``tfl.reduce_max`` / ``tfl.reduce_min`` / ``tfl.sum`` / ``tfl.reduce_prod`` (constant int32
axes input 1, ``keep_dims``), ``tfl.arg_max`` / ``tfl.arg_min`` (constant axis input 1,
``output_type``), ``tfl.strided_slice`` (begin / end / strides inputs 1-3, masks as options;
microlith writes every dimension explicitly, ``end_mask`` only for a negative stride that
runs to the beginning) and ``tfl.gather`` (constant indices input 1, ``axis``).

int8: max / min / strided slice / gather move int8 values (``Int8Rule.SAME``); a sum
rescales (``RESCALE``); a product and arg-max / arg-min have no int8 rule here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, NeedsConstant, ShapeError, define_op
from microlith.ir.types import DType, TensorType
from microlith.ops.common import Arrays, define_tfl, need, normalize_axis, operand
from microlith.ops.reduce import reduced_shape, tfl_axes

Reducer = Callable[..., np.ndarray]
_REDUCERS: dict[str, tuple[Reducer, str, Int8Rule]] = {
    "ReduceMax": (np.max, "REDUCE_MAX", Int8Rule.SAME),
    "ReduceMin": (np.min, "REDUCE_MIN", Int8Rule.SAME),
    "ReduceSum": (np.sum, "SUM", Int8Rule.RESCALE),
    "ReduceProd": (np.prod, "REDUCE_PROD", Int8Rule.NONE),
}


def _onnx_axes(node: Node, rank: int) -> list[int]:
    axes = node.attr("axes")
    return list(range(rank)) if axes is None else sorted({normalize_axis(a, rank) for a in axes})


def _reduce_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, reduced_shape(x.shape, _onnx_axes(node, x.rank),
                                              bool(node.attr("keepdims", 1))))]


def _reduce_kernel(fn: Reducer) -> Callable[[Node, Arrays], list[np.ndarray]]:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        x = need(inputs, 0)
        axes = tuple(_onnx_axes(node, x.ndim))
        return [np.asarray(fn(x, axis=axes, keepdims=bool(node.attr("keepdims", 1)))
                           ).astype(x.dtype, copy=False)]

    return kernel


def _tfl_reduce_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, reduced_shape(x.shape, tfl_axes(node, x.rank),
                                              bool(node.attr("keep_dims"))))]


def _tfl_reduce_kernel(fn: Reducer) -> Callable[[Node, Arrays], list[np.ndarray]]:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        x = need(inputs, 0)
        axes = tuple(tfl_axes(node, x.ndim))
        return [np.asarray(fn(x, axis=axes, keepdims=bool(node.attr("keep_dims")))
                           ).astype(x.dtype, copy=False)]

    return kernel


for _name, (_fn, _builtin, _rule) in _REDUCERS.items():
    define_op(_name, f"{_fn.__name__} over axes", infer=_reduce_infer, kernel=_reduce_kernel(_fn),
              attrs={"axes": None, "keepdims": 1}, layout=Layout.AXIS, axis_attr="axes",
              int8=_rule)
    define_tfl(_builtin, f"{_fn.__name__} over the constant axes (input 1)",
               infer=_tfl_reduce_infer, kernel=_tfl_reduce_kernel(_fn), inputs=(2, 2))


# ---- ArgMax / ArgMin -------------------------------------------------------------------------
def _arg_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    axis = normalize_axis(node.attr("axis", 0), x.rank)
    return [TensorType(DType.INT64, reduced_shape(x.shape, [axis],
                                                  bool(node.attr("keepdims", 1))))]


def _arg_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    fn = np.argmax if node.op == "ArgMax" else np.argmin
    out = fn(x, axis=axis)
    if node.attr("keepdims", 1):
        out = np.expand_dims(out, axis)
    return [np.asarray(out, np.int64)]


def _tfl_arg_axis(node: Node, rank: int) -> int:
    axis = node.const_input(1)
    if axis is None:
        raise NeedsConstant("the axis operand is not a constant")
    return normalize_axis(int(np.asarray(axis).reshape(-1)[0]), rank)


_ARG_TYPES = {"int32": DType.INT32, "int64": DType.INT64}


def _arg_type(node: Node) -> DType:
    name = str(node.attr("output_type"))
    if name not in _ARG_TYPES:
        raise ShapeError(f"output_type {name} is not int32 / int64")
    return _ARG_TYPES[name]


def _tfl_arg_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    dtype = _arg_type(node)
    return [TensorType(dtype, reduced_shape(x.shape, [_tfl_arg_axis(node, x.rank)], False))]


def _tfl_arg_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    fn = np.argmax if node.op == "tfl.arg_max" else np.argmin
    return [np.asarray(fn(x, axis=_tfl_arg_axis(node, x.ndim)),
                       _arg_type(node).numpy)]


for _name, _builtin in (("ArgMax", "ARG_MAX"), ("ArgMin", "ARG_MIN")):
    define_op(_name, f"index of the first {_name[3:].lower()}imum along axis (int64)",
              infer=_arg_infer, kernel=_arg_kernel, attrs={"axis": 0, "keepdims": 1},
              int8=Int8Rule.INDEX, layout=Layout.AXIS, axis_attr="axis")
    define_tfl(_builtin, f"index of the first {_name[3:].lower()}imum along the axis input",
               infer=_tfl_arg_infer, kernel=_tfl_arg_kernel, inputs=(2, 2))


# ---- STRIDED_SLICE / GATHER ------------------------------------------------------------------
def strided_index(node: Node, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The numpy index of a ``tfl.strided_slice`` (every dimension explicit, end_mask only)."""
    consts = [node.const_input(i) for i in (1, 2, 3)]
    if any(c is None for c in consts):
        raise NeedsConstant("begin, end and strides must be constants")
    begin, end, strides = (np.asarray(c).reshape(-1).tolist() for c in consts)
    if len(begin) != len(shape) or len(end) != len(shape) or len(strides) != len(shape):
        raise ShapeError(f"begin/end/strides must have {len(shape)} entries")
    for mask in ("begin_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask"):
        if int(node.attr(mask, 0)):
            raise ShapeError(f"{mask} is not supported")
    end_mask = int(node.attr("end_mask", 0))
    return tuple(slice(int(b), None if end_mask >> i & 1 else int(e), int(s))
                 for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)))


def _strided_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, np.empty(x.shape, np.int8)[strided_index(node, x.shape)].shape)]


def _strided_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    return [np.ascontiguousarray(x[strided_index(node, x.shape)])]


define_tfl("STRIDED_SLICE", "x[begin:end:strides] per dimension (constant inputs 1-3)",
           infer=_strided_infer, kernel=_strided_kernel, inputs=(4, 4))


def _tfl_gather_infer(node: Node) -> list[TensorType]:
    x, idx = operand(node, 0).type, operand(node, 1).type
    if int(node.attr("batch_dims", 0)):
        raise ShapeError("batch_dims is not supported")
    axis = normalize_axis(node.attr("axis", 0), x.rank)
    return [TensorType(x.dtype, (*x.shape[:axis], *idx.shape, *x.shape[axis + 1:]))]


def _tfl_gather_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, indices = need(inputs, 0), need(inputs, 1)
    axis = normalize_axis(node.attr("axis", 0), x.ndim)
    return [np.take(x, indices.astype(np.int64), axis=axis)]


define_tfl("GATHER", "take the constant indices (input 1) along axis", infer=_tfl_gather_infer,
           kernel=_tfl_gather_kernel, inputs=(2, 2))
