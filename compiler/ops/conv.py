"""Convolutions: ONNX ``Conv`` / ``ConvTranspose``, TFLite's ``tfl.conv_2d``,
``tfl.depthwise_conv_2d``, ``tfl.transpose_conv`` and the C target's ``c.conv_2d`` /
``c.depthwise_conv_2d`` (explicit pads: out-of-image taps read the zero point).

Weights: ``Conv`` OIHW (NCHW) or OHWI (NHWC); ``tfl.conv_2d`` and ``c.conv_2d`` OHWI
(grouped when ``I < C_in``); the depthwise ops ``[1, KH, KW, C*M]`` (output channel
``c*M + m`` reads input channel ``c``); ``tfl.transpose_conv`` ``[O, KH, KW, I]``.
The float arithmetic is ``microlith.ops.spatial``.
"""

from __future__ import annotations

import math

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Layout, NeedsConstant, ShapeError, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import (
    SPATIAL,
    Arrays,
    conv_output_size,
    define_tfl,
    need,
    operand,
    optional,
    same_valid_pads,
    spatial_axes,
)
from microlith.ops.spatial import (
    conv2d_nhwc,
    conv_transpose2d_nhwc,
    from_nhwc,
    node_pads,
    pair,
    to_nhwc,
)


def spatial_output(node: Node, x: TensorType, kernel: tuple[int, int], channels: int,
                   layout: str, strides: tuple[int, int], dilations: tuple[int, int],
                   pads: tuple[int, int, int, int]) -> list[TensorType]:
    """The output type of a 2-D window op with explicit ``pads`` (top, left, bottom, right)."""
    if x.rank != 4:
        raise ShapeError(f"expects a 4-D input, got shape {x.shape}")
    c_ax, h_ax, w_ax = spatial_axes(layout)
    top, left, bottom, right = pads
    oh = conv_output_size(x.shape[h_ax], kernel[0], strides[0], dilations[0], top, bottom)
    ow = conv_output_size(x.shape[w_ax], kernel[1], strides[1], dilations[1], left, right)
    shape = [x.shape[0], 0, 0, 0]
    shape[c_ax], shape[h_ax], shape[w_ax] = channels, oh, ow
    return [TensorType(x.dtype, tuple(shape))]


def onnx_spatial_output(node: Node, x: TensorType, kernel: tuple[int, int],
                        channels: int) -> list[TensorType]:
    return spatial_output(node, x, kernel, channels, node.attr("layout", "NCHW"),
                          node.attr("strides", (1, 1)), node.attr("dilations", (1, 1)),
                          node.attr("pads", (0, 0, 0, 0)))


def tfl_window(node: Node, x: TensorType, kernel: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(strides, dilations, explicit pads) of a TFLite window op's options."""
    strides = (int(node.attr("stride_h")), int(node.attr("stride_w")))
    dilations = (int(node.attr("dilation_h_factor", 1)), int(node.attr("dilation_w_factor", 1)))
    if x.rank != 4:
        raise ShapeError(f"expects a 4-D NHWC input, got shape {x.shape}")
    pads = same_valid_pads(node.attr("padding"), x.shape[1:3], kernel, strides, dilations)
    return strides, dilations, pads


def conv_macs(node: Node) -> int:
    """Every output element reads one filter row: ``numel(y) * prod(w) / out_channels``."""
    w = node.arg(1).shape
    return node.output.type.numel * math.prod(w) // max(w[0], 1)


def depthwise_macs(node: Node) -> int:
    """Every output element reads one ``KH x KW`` window of filter ``[1, KH, KW, C*M]``."""
    w = node.arg(1).shape
    return node.output.type.numel * w[1] * w[2]


# ---- ONNX Conv / ConvTranspose --------------------------------------------------------------
def _conv_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    if w.rank != 4:
        raise ShapeError(f"weights must be 4-D, got {w.shape}")
    layout = node.attr("layout", "NCHW")
    kernel = (w.shape[2], w.shape[3]) if layout == "NCHW" else (w.shape[1], w.shape[2])
    w_in = w.shape[1] if layout == "NCHW" else w.shape[3]
    c_ax = spatial_axes(layout)[0]
    group = node.attr("group", 1)
    if x.rank == 4 and x.shape[c_ax] != w_in * group:
        raise ShapeError(f"input has {x.shape[c_ax]} channels, weights expect "
                         f"{w_in} x group {group}")
    return onnx_spatial_output(node, x, kernel, w.shape[0])


def _conv_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX Conv with explicit pads; weights OIHW in NCHW, OHWI in NHWC."""
    layout = node.attr("layout")
    x, w = to_nhwc(need(inputs, 0), layout), need(inputs, 1)
    if w.ndim != 4:
        raise ValueError(f"weights must be 4-D, got {w.shape}")
    if layout == "NCHW":
        w = w.transpose(0, 2, 3, 1)
    y = conv2d_nhwc(x, w, optional(inputs, 2), strides=pair(node.attr("strides"), "strides"),
                    dilations=pair(node.attr("dilations"), "dilations"), pads=node_pads(node),
                    group=int(node.attr("group")))
    return [from_nhwc(y, layout)]


define_op("Conv", "2-D convolution (grouped/depthwise via group), explicit pads",
          infer=_conv_infer, kernel=_conv_kernel, inputs=(2, 3), attrs={**SPATIAL, "group": 1},
          layout=Layout.SPATIAL, nhwc_weights=(0, 2, 3, 1), int8=Int8Rule.WEIGHTED, int16=True,
          activation_attr="activation", macs=conv_macs)


def _conv_transpose_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    layout = node.attr("layout", "NCHW")
    c_ax, h_ax, w_ax = spatial_axes(layout)
    # NCHW weights: [C_in, C_out/group, kH, kW]; NHWC weights: [C_out, kH, kW, C_in].
    if layout == "NCHW":
        out_c, kh, kw = w.shape[1] * node.attr("group", 1), w.shape[2], w.shape[3]
    else:
        out_c, kh, kw = w.shape[0], w.shape[1], w.shape[2]
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    top, left, bottom, right = node.attr("pads", (0, 0, 0, 0))
    oph, opw = node.attr("output_padding", (0, 0))
    oh = sh * (x.shape[h_ax] - 1) + oph + dh * (kh - 1) + 1 - top - bottom
    ow = sw * (x.shape[w_ax] - 1) + opw + dw * (kw - 1) + 1 - left - right
    shape = [x.shape[0], 0, 0, 0]
    shape[c_ax], shape[h_ax], shape[w_ax] = out_c, oh, ow
    return [TensorType(x.dtype, tuple(shape))]


def _conv_transpose_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX ConvTranspose with explicit pads.

    Weights are ``[C_in, C_out/group, KH, KW]`` in NCHW and ``[C_out, KH, KW, C_in/group]``
    in NHWC (TFLite TRANSPOSE_CONV order; with group > 1 the output channels of group
    ``g`` are rows ``g*C_out/group ...``).
    """
    layout = node.attr("layout")
    x, w = to_nhwc(need(inputs, 0), layout), need(inputs, 1)
    if w.ndim != 4:
        raise ValueError(f"weights must be 4-D, got {w.shape}")
    group = int(node.attr("group"))
    if layout == "NHWC":  # [O, KH, KW, I/G] -> [I, O/G, KH, KW]
        o, kh, kw, ig = w.shape
        if o % group:
            raise ValueError(f"{o} output channels do not split into {group} groups")
        w = w.reshape(group, o // group, kh, kw, ig).transpose(0, 4, 1, 2, 3)
        w = w.reshape(group * ig, o // group, kh, kw)
    y = conv_transpose2d_nhwc(
        x, w, optional(inputs, 2), strides=pair(node.attr("strides"), "strides"),
        dilations=pair(node.attr("dilations"), "dilations"), pads=node_pads(node),
        output_padding=pair(node.attr("output_padding"), "pads"), group=group)
    return [from_nhwc(y, layout)]


define_op("ConvTranspose", "2-D transposed convolution", infer=_conv_transpose_infer,
          kernel=_conv_transpose_kernel, inputs=(2, 3),
          attrs={**SPATIAL, "group": 1, "output_padding": (0, 0)}, layout=Layout.SPATIAL,
          nhwc_weights=(1, 2, 3, 0), activation_attr="activation")


# ---- tfl.conv_2d / tfl.depthwise_conv_2d / tfl.transpose_conv -----------------------------
def depthwise_as_ohwi(w: np.ndarray) -> np.ndarray:
    """Depthwise weights ``[1, KH, KW, C*M]`` as grouped OHWI ``[C*M, KH, KW, 1]``."""
    return np.ascontiguousarray(w[0].transpose(2, 0, 1)[..., None])


def _tfl_conv_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    if w.rank != 4 or x.rank != 4 or x.shape[3] % w.shape[3]:
        raise ShapeError(f"input {x.shape} does not fit filter {w.shape}")
    kernel = (w.shape[1], w.shape[2])
    strides, dilations, pads = tfl_window(node, x, kernel)
    return spatial_output(node, x, kernel, w.shape[0], "NHWC", strides, dilations, pads)


def _tfl_conv_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, w = need(inputs, 0), need(inputs, 1)
    strides, dilations, pads = tfl_window(node, node.arg(0).type, (w.shape[1], w.shape[2]))
    return [conv2d_nhwc(x, w, optional(inputs, 2), strides=strides, dilations=dilations,
                        pads=pads, group=x.shape[3] // w.shape[3])]


define_tfl("CONV_2D", "NHWC convolution, OHWI filter, SAME/VALID padding",
           infer=_tfl_conv_infer, kernel=_tfl_conv_kernel, inputs=(2, 3), macs=conv_macs)


def _tfl_depthwise_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    multiplier = int(node.attr("depth_multiplier"))
    if w.rank != 4 or w.shape[0] != 1 or x.rank != 4 or w.shape[3] != x.shape[3] * multiplier:
        raise ShapeError(f"input {x.shape} does not fit depthwise filter {w.shape} "
                         f"x {multiplier}")
    kernel = (w.shape[1], w.shape[2])
    strides, dilations, pads = tfl_window(node, x, kernel)
    return spatial_output(node, x, kernel, w.shape[3], "NHWC", strides, dilations, pads)


def _tfl_depthwise_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, w = need(inputs, 0), need(inputs, 1)
    strides, dilations, pads = tfl_window(node, node.arg(0).type, (w.shape[1], w.shape[2]))
    return [conv2d_nhwc(x, depthwise_as_ohwi(w), optional(inputs, 2), strides=strides,
                        dilations=dilations, pads=pads, group=x.shape[3])]


define_tfl("DEPTHWISE_CONV_2D", "NHWC depthwise convolution, filter [1, KH, KW, C*M]",
           infer=_tfl_depthwise_infer, kernel=_tfl_depthwise_kernel, inputs=(2, 3),
           macs=depthwise_macs)


def _tfl_transpose_conv_infer(node: Node) -> list[TensorType]:
    shape = node.const_input(0)
    if shape is None:
        raise NeedsConstant("the output shape is not a constant")
    return [TensorType(operand(node, 2).dtype, tuple(int(d) for d in shape))]


def _tfl_transpose_conv_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    shape, w, x = need(inputs, 0), need(inputs, 1), need(inputs, 2)
    if node.attr("padding") != "VALID":
        raise ValueError("only VALID transposed convolution is implemented")
    strides = (int(node.attr("stride_h")), int(node.attr("stride_w")))
    full = [strides[a] * (x.shape[1 + a] - 1) + w.shape[1 + a] for a in (0, 1)]
    extra = (int(shape[1]) - full[0], int(shape[2]) - full[1])
    return [conv_transpose2d_nhwc(x, w.transpose(3, 0, 1, 2), optional(inputs, 3),
                                  strides=strides, dilations=(1, 1), pads=(0, 0, 0, 0),
                                  output_padding=extra, group=1)]


define_tfl("TRANSPOSE_CONV", "NHWC transposed convolution (output_shape, [O,KH,KW,I], x, b)",
           infer=_tfl_transpose_conv_infer, kernel=_tfl_transpose_conv_kernel, inputs=(3, 4))


# ---- c.conv_2d / c.depthwise_conv_2d --------------------------------------------------------
C_WINDOW = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0)}


def _c_conv_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    group = int(node.attr("group"))
    if w.rank != 4 or x.rank != 4 or x.shape[3] != w.shape[3] * group or w.shape[0] % group:
        raise ShapeError(f"input {x.shape} does not fit filter {w.shape} in {group} groups")
    return spatial_output(node, x, (w.shape[1], w.shape[2]), w.shape[0], "NHWC",
                          node.attr("strides"), node.attr("dilations"), node.attr("pads"))


def _c_conv_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    return [conv2d_nhwc(need(inputs, 0), need(inputs, 1), optional(inputs, 2),
                        strides=tuple(node.attr("strides")),
                        dilations=tuple(node.attr("dilations")), pads=node_pads(node),
                        group=int(node.attr("group")))]


define_op("c.conv_2d", "NHWC grouped convolution, OHWI filter, explicit pads",
          infer=_c_conv_infer, kernel=_c_conv_kernel, inputs=(2, 3),
          attrs={**C_WINDOW, "group": 1}, activation_attr="activation", macs=conv_macs)


def _c_depthwise_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    multiplier = int(node.attr("depth_multiplier"))
    if w.rank != 4 or w.shape[0] != 1 or x.rank != 4 or w.shape[3] != x.shape[3] * multiplier:
        raise ShapeError(f"input {x.shape} does not fit depthwise filter {w.shape}")
    return spatial_output(node, x, (w.shape[1], w.shape[2]), w.shape[3], "NHWC",
                          node.attr("strides"), node.attr("dilations"), node.attr("pads"))


def _c_depthwise_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, w = need(inputs, 0), need(inputs, 1)
    return [conv2d_nhwc(x, depthwise_as_ohwi(w), optional(inputs, 2),
                        strides=tuple(node.attr("strides")),
                        dilations=tuple(node.attr("dilations")), pads=node_pads(node),
                        group=x.shape[3])]


define_op("c.depthwise_conv_2d", "NHWC depthwise convolution, filter [1, KH, KW, C*M], "
          "explicit pads", infer=_c_depthwise_infer, kernel=_c_depthwise_kernel, inputs=(2, 3),
          attrs={**C_WINDOW, "depth_multiplier": 1}, activation_attr="activation",
          macs=depthwise_macs)
