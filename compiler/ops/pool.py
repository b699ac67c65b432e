"""Pooling: ONNX ``MaxPool`` / ``AveragePool`` / ``GlobalAveragePool``, TFLite's
``tfl.max_pool_2d`` / ``tfl.average_pool_2d`` (SAME/VALID: taps outside the image are
skipped, the average is over the taps inside) and the C target's ``c.max_pool_2d`` /
``c.average_pool_2d`` (explicit pads; ``count_include_pad=1`` averages over all
``KH*KW`` taps with the border counted as zero).
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, ShapeError, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import Arrays, define_tfl, need, operand, same_valid_pads, spatial_axes
from microlith.ops.conv import onnx_spatial_output, spatial_output
from microlith.ops.spatial import (
    average_pool_nhwc,
    from_nhwc,
    max_pool_nhwc,
    node_pads,
    pair,
    to_nhwc,
)


def _kernel_shape(node: Node) -> tuple[int, int]:
    kernel_shape = node.attr("kernel_shape")
    if kernel_shape is None:
        raise ValueError("kernel_shape is required")
    return pair(kernel_shape, "kernel_shape")


def _pool_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    c_ax = spatial_axes(node.attr("layout", "NCHW"))[0]
    return onnx_spatial_output(node, x, tuple(node.attr("kernel_shape")), x.shape[c_ax])


def _max_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Window maximum; padding counts as -inf (never selected)."""
    layout = node.attr("layout")
    x = to_nhwc(need(inputs, 0), layout)
    y = max_pool_nhwc(x, _kernel_shape(node), pair(node.attr("strides"), "strides"),
                      node_pads(node), pair(node.attr("dilations", (1, 1)), "dilations"))
    return [from_nhwc(y, layout)]


def _average_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Window mean; divides by KH*KW if ``count_include_pad`` else by the unpadded count."""
    layout = node.attr("layout")
    x = to_nhwc(need(inputs, 0), layout)
    y = average_pool_nhwc(x, _kernel_shape(node), pair(node.attr("strides"), "strides"),
                          node_pads(node), bool(node.attr("count_include_pad", 0)),
                          pair(node.attr("dilations", (1, 1)), "dilations"))
    return [from_nhwc(y, layout)]


POOL_ATTRS = {"kernel_shape": None, "strides": (1, 1), "pads": (0, 0, 0, 0)}
define_op("MaxPool", "2-D max pooling", infer=_pool_infer, kernel=_max_pool_kernel,
          attrs=dict(POOL_ATTRS), layout=Layout.SPATIAL, int8=Int8Rule.SAME, int16=True,
          activation_attr="activation")
define_op("AveragePool", "2-D average pooling", infer=_pool_infer, kernel=_average_pool_kernel,
          attrs={**POOL_ATTRS, "count_include_pad": 0}, layout=Layout.SPATIAL,
          int8=Int8Rule.SAME, int16=True, activation_attr="activation")


def _global_pool_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    _, h_ax, w_ax = spatial_axes(node.attr("layout", "NCHW"))
    shape = list(x.shape)
    shape[h_ax] = shape[w_ax] = 1
    return [TensorType(x.dtype, tuple(shape))]


def _global_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Mean over H and W, kept as size-1 dimensions."""
    x = need(inputs, 0)
    _, h_ax, w_ax = spatial_axes(node.attr("layout"))
    if x.ndim != 4:
        raise ValueError(f"expects a 4-D input, got shape {x.shape}")
    return [np.mean(x, axis=(h_ax, w_ax), keepdims=True)]


define_op("GlobalAveragePool", "mean over the spatial dims, kept as size 1",
          infer=_global_pool_infer, kernel=_global_pool_kernel, layout=Layout.SPATIAL,
          int8=Int8Rule.RESCALE, int16=True)


# ---- tfl.max_pool_2d / tfl.average_pool_2d ---------------------------------------------------
def tfl_pool_geometry(node: Node, x: TensorType
                      ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(filter, strides, explicit pads) of a TFLite pooling op."""
    if x.rank != 4:
        raise ShapeError(f"expects a 4-D NHWC input, got shape {x.shape}")
    kernel = (int(node.attr("filter_height")), int(node.attr("filter_width")))
    strides = (int(node.attr("stride_h")), int(node.attr("stride_w")))
    return kernel, strides, same_valid_pads(node.attr("padding"), x.shape[1:3], kernel, strides)


def _tfl_pool_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    kernel, strides, pads = tfl_pool_geometry(node, x)
    return spatial_output(node, x, kernel, x.shape[3], "NHWC", strides, (1, 1), pads)


def _tfl_max_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    kernel, strides, pads = tfl_pool_geometry(node, node.arg(0).type)
    return [max_pool_nhwc(need(inputs, 0), kernel, strides, pads)]


def _tfl_average_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    kernel, strides, pads = tfl_pool_geometry(node, node.arg(0).type)
    return [average_pool_nhwc(need(inputs, 0), kernel, strides, pads, False)]


define_tfl("MAX_POOL_2D", "NHWC max pooling, SAME/VALID", infer=_tfl_pool_infer,
           kernel=_tfl_max_pool_kernel)
define_tfl("AVERAGE_POOL_2D", "NHWC average pooling over in-image taps, SAME/VALID",
           infer=_tfl_pool_infer, kernel=_tfl_average_pool_kernel)


# ---- c.max_pool_2d / c.average_pool_2d --------------------------------------------------------
def _c_pool_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return spatial_output(node, x, tuple(node.attr("kernel_shape")), x.shape[3], "NHWC",
                          node.attr("strides"), (1, 1), node.attr("pads"))


def _c_max_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    return [max_pool_nhwc(need(inputs, 0), _kernel_shape(node),
                          pair(node.attr("strides"), "strides"), node_pads(node))]


def _c_average_pool_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    return [average_pool_nhwc(need(inputs, 0), _kernel_shape(node),
                              pair(node.attr("strides"), "strides"), node_pads(node),
                              bool(node.attr("count_include_pad")))]


define_op("c.max_pool_2d", "NHWC max pooling, explicit pads (the border is never selected)",
          infer=_c_pool_infer, kernel=_c_max_pool_kernel, attrs=dict(POOL_ATTRS),
          activation_attr="activation")
define_op("c.average_pool_2d", "NHWC average pooling, explicit pads", infer=_c_pool_infer,
          kernel=_c_average_pool_kernel, attrs={**POOL_ATTRS, "count_include_pad": 0},
          activation_attr="activation")
