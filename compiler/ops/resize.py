"""Resizing the two spatial axes: ONNX ``Resize`` (``mode`` nearest / linear, the
``coordinate_transformation_mode`` and ``nearest_mode`` of opset 11+, output ``size``
resolved at import) and TFLite's ``tfl.resize_nearest_neighbor`` / ``tfl.resize_bilinear``
(NHWC, output size as the constant int32 input 1, ``align_corners`` /
``half_pixel_centers``).

ONNX, per axis, output index ``o`` reads the input coordinate ``v(o)`` with ``s`` the
scale (``out / in`` unless given): half_pixel ``(o + 0.5) / s - 0.5``, pytorch_half_pixel
the same but 0 for an output of size 1, asymmetric ``o / s``, align_corners
``o (in - 1) / (out - 1)``. Nearest rounds ``v`` by ``nearest_mode`` (round_prefer_floor
``ceil(v - 0.5)``, round_prefer_ceil ``floor(v + 0.5)``, floor, ceil); linear clamps ``v``
to ``[0, in - 1]`` and interpolates between ``floor(v)`` and the next index.

TFLite (``t = in / out``, or ``(in - 1) / (out - 1)`` with align_corners): nearest reads
``min(align ? round(o t) : floor((o + h) t), in - 1)`` (``h`` = 0.5 with
half_pixel_centers, which also clamps at 0); bilinear reads ``(o + 0.5) t - 0.5`` (half
pixel) or ``o t`` between ``max(floor, 0)`` and ``min(ceil, in - 1)``.
"""

from __future__ import annotations

import math

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, NeedsConstant, ShapeError, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import Arrays, define_tfl, need, operand, spatial_axes

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "asymmetric", "align_corners")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def onnx_coordinates(out: int, size: int, scale: float, mode: str) -> np.ndarray:
    o = np.arange(out, dtype=np.float64)
    if mode == "align_corners":
        return o * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if mode == "asymmetric":
        return o / scale
    if mode == "pytorch_half_pixel" and out == 1:
        return np.zeros(out)
    return (o + 0.5) / scale - 0.5


def onnx_nearest(out: int, size: int, scale: float, mode: str, nearest: str) -> np.ndarray:
    v = onnx_coordinates(out, size, scale, mode)
    rounded = {"round_prefer_floor": np.ceil(v - 0.5), "round_prefer_ceil": np.floor(v + 0.5),
               "floor": np.floor(v), "ceil": np.ceil(v)}[nearest]
    return np.clip(rounded, 0, size - 1).astype(np.int64)


def tflite_nearest(out: int, size: int, align: bool, half: bool) -> np.ndarray:
    scale = np.float32((size - 1) / (out - 1) if align and out > 1 else size / out)
    o = np.arange(out, dtype=np.float32)
    if align:
        v = np.copysign(np.floor(np.abs(o * scale) + np.float32(0.5)), o * scale)
    else:
        v = np.floor((o + np.float32(0.5 if half else 0.0)) * scale)
    v = np.minimum(v, size - 1)
    return np.maximum(v, 0).astype(np.int64)


def _linear_taps(v: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.maximum(np.floor(v), 0).astype(np.int64)
    hi = np.minimum(np.ceil(v), size - 1).astype(np.int64)
    return lo, hi, v - lo


def _interpolate(x: np.ndarray, axis: int, taps: tuple[np.ndarray, np.ndarray, np.ndarray]
                 ) -> np.ndarray:
    lo, hi, w = taps
    shape = [1] * x.ndim
    shape[axis] = -1
    w = w.reshape(shape).astype(x.dtype)
    a, b = np.take(x, lo, axis=axis), np.take(x, hi, axis=axis)
    return a * (1 - w) + b * w


def _resize_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    if x.rank != 4:
        raise ShapeError(f"Resize needs a 4-D input, got {x.shape}")
    _, h_ax, w_ax = spatial_axes(node.attr("layout", "NCHW"))
    shape = list(x.shape)
    shape[h_ax], shape[w_ax] = node.attr("size")
    return [TensorType(x.dtype, tuple(shape))]


def _resize_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    _, h_ax, w_ax = spatial_axes(node.attr("layout", "NCHW"))
    mode, coord = node.attr("mode"), node.attr("coordinate_transformation_mode")
    for axis, out, scale in zip((h_ax, w_ax), node.attr("size"), node.attr("scales"),
                                strict=True):
        size = x.shape[axis]
        if mode == "nearest":
            x = np.take(x, onnx_nearest(out, size, scale, coord, node.attr("nearest_mode")),
                        axis=axis)
        else:
            v = np.clip(onnx_coordinates(out, size, scale, coord), 0, size - 1)
            x = _interpolate(x, axis, _linear_taps(v, size))
    return [np.ascontiguousarray(x)]


define_op("Resize", "nearest / linear resize of the two spatial axes to ``size``",
          infer=_resize_infer, kernel=_resize_kernel, layout=Layout.SPATIAL,
          attrs={"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
                 "nearest_mode": "round_prefer_floor", "size": None, "scales": None},
          int8=Int8Rule.SAME)


def tfl_size(node: Node) -> tuple[int, int]:
    size = node.const_input(1)
    if size is None:
        raise NeedsConstant("the size operand is not a constant")
    h, w = (int(v) for v in np.asarray(size).reshape(-1))
    return h, w


def _tfl_resize_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    h, w = tfl_size(node)
    return [TensorType(x.dtype, (x.shape[0], h, w, x.shape[3]))]


def _tfl_nearest_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    align, half = bool(node.attr("align_corners")), bool(node.attr("half_pixel_centers"))
    for axis, out in zip((1, 2), tfl_size(node), strict=True):
        x = np.take(x, tflite_nearest(out, x.shape[axis], align, half), axis=axis)
    return [np.ascontiguousarray(x)]


def tflite_bilinear_coordinates(out: int, size: int, align: bool, half: bool) -> np.ndarray:
    scale = np.float32((size - 1) / (out - 1) if align and out > 1 else size / out)
    o = np.arange(out, dtype=np.float32)
    return ((o + np.float32(0.5)) * scale - np.float32(0.5)) if half else o * scale


def _tfl_bilinear_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    align, half = bool(node.attr("align_corners")), bool(node.attr("half_pixel_centers"))
    for axis, out in zip((1, 2), tfl_size(node), strict=True):
        v = tflite_bilinear_coordinates(out, x.shape[axis], align, half)
        x = _interpolate(x, axis, _linear_taps(v, x.shape[axis]))
    return [np.ascontiguousarray(x)]


define_tfl("RESIZE_NEAREST_NEIGHBOR", "NHWC nearest resize to the constant size (input 1)",
           infer=_tfl_resize_infer, kernel=_tfl_nearest_kernel, inputs=(2, 2))
define_tfl("RESIZE_BILINEAR", "NHWC bilinear resize to the constant size (input 1)",
           infer=_tfl_resize_infer, kernel=_tfl_bilinear_kernel, inputs=(2, 2))


def exact_scale(size: int, out: int, scale: float) -> bool:
    """True when ONNX's scale equals TFLite's ``out / in`` (TFLite derives it from sizes)."""
    return math.isclose(scale, out / size, rel_tol=0, abs_tol=1e-12)
