"""Reductions: ONNX ``ReduceMean`` (``axes`` attribute; all axes when absent) and TFLite's
``tfl.mean`` (axes as a constant int32 input, ``keep_dims`` option)."""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, NeedsConstant, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import Arrays, define_tfl, need, normalize_axis, operand


def reduced_shape(shape: tuple[int, ...], axes: list[int], keep: bool) -> tuple[int, ...]:
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)


def _mean_dtype(x: np.ndarray) -> np.dtype | None:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else None


def _reduce_mean_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    axes = node.attr("axes")
    axes = list(range(x.rank)) if axes is None else [normalize_axis(a, x.rank) for a in axes]
    return [TensorType(x.dtype, reduced_shape(x.shape, axes, bool(node.attr("keepdims", 1))))]


def _reduce_mean_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Mean over ``axes`` (all axes when None), keeping them as size 1 if ``keepdims``."""
    x = need(inputs, 0)
    axes = node.attr("axes")
    axis = None if axes is None else tuple(int(a) % x.ndim for a in axes)
    keep = bool(node.attr("keepdims", 1))
    return [np.asarray(np.mean(x, axis=axis, keepdims=keep, dtype=_mean_dtype(x)))]


define_op("ReduceMean", "mean over axes", infer=_reduce_mean_infer, kernel=_reduce_mean_kernel,
          attrs={"axes": None, "keepdims": 1}, layout=Layout.AXIS, axis_attr="axes",
          int8=Int8Rule.RESCALE, int16=True)


def tfl_axes(node: Node, rank: int) -> list[int]:
    """The constant axes operand (input 1) of a TFLite reducer, normalized and sorted."""
    axes = node.const_input(1)
    if axes is None:
        raise NeedsConstant("the axes operand is not a constant")
    return sorted({normalize_axis(int(a), rank) for a in np.asarray(axes).reshape(-1)})


def _tfl_mean_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, reduced_shape(x.shape, tfl_axes(node, x.rank),
                                              bool(node.attr("keep_dims"))))]


def _tfl_mean_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    axes = tuple(tfl_axes(node, x.ndim))
    return [np.asarray(np.mean(x, axis=axes, keepdims=bool(node.attr("keep_dims")),
                               dtype=_mean_dtype(x)))]


define_tfl("MEAN", "mean over the constant axes (input 1)", infer=_tfl_mean_infer,
           kernel=_tfl_mean_kernel, inputs=(2, 2))
