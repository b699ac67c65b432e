"""IR nodes with quantized (integer) outputs -> the TFLite-Micro-exact int8 functions.

Each entry reads quantization parameters from the node's value types and calls
the matching function of ``microlith.interpreter.int8_ops``, mirroring how the
TFLite backend lowers the node, so that our integer interpreter and
TFLite-Micro running our ``.tflite`` agree byte for byte on every tensor:
convolutions get their explicit pads as a zero-point border and run VALID
(identical to TFLite's implicit padding: a border tap adds ``(zp - zp) * w = 0``);
pools use SAME/VALID when the backend does and an explicit border otherwise
(-128 for max pooling, the zero point for average pooling that counts it).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.backends.tflite.padding import tflite_padding
from microlith.interpreter import int8_ops as q8
from microlith.ir.core import Node, Value
from microlith.ir.types import QuantParams

GraphKernel = Callable[[Node, list[np.ndarray | None]], list[np.ndarray]]
INT8_GRAPH_KERNELS: dict[str, GraphKernel] = {}


def kernel(*ops: str) -> Callable[[GraphKernel], GraphKernel]:
    def wrap(fn: GraphKernel) -> GraphKernel:
        for op in ops:
            INT8_GRAPH_KERNELS[op] = fn
        return fn

    return wrap


def is_integer_node(node: Node) -> bool:
    """True when the node computes on quantized integers (or converts to/from them)."""
    if node.op in ("QuantizeLinear", "DequantizeLinear"):
        return True
    return any(out.quant is not None and not out.dtype.is_float for out in node.outputs)


def _q(value: Value | None) -> QuantParams:
    if value is None or value.quant is None:
        raise ValueError(f"value {getattr(value, 'name', None)!r} is not quantized")
    return value.quant


def _xy(node: Node) -> dict[str, float | int]:
    x, y = _q(node.inputs[0]), _q(node.output)
    return {"x_scale": x.scale[0], "x_zero_point": x.zero_point[0], "y_scale": y.scale[0],
            "y_zero_point": y.zero_point[0]}


def _border(x: np.ndarray, pads: tuple[int, int, int, int], value: int) -> np.ndarray:
    top, left, bottom, right = pads
    return q8.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)], y_zero_point=value)


@kernel("Conv")
def conv(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, bias = args[0], args[1], args[2] if len(args) > 2 else None
    wq, params = node.inputs[1], _xy(node)
    xp = _border(x, node.attr("pads"), params["x_zero_point"])
    common = {"w_scales": list(_q(wq).scale), **params, "stride": node.attr("strides"),
              "dilation": node.attr("dilations", (1, 1)), "padding": "VALID",
              "activation": node.attr("activation", "NONE")}
    group, in_c = node.attr("group", 1), x.shape[3]
    if group > 1 and group == in_c and w.shape[3] == 1:
        return [q8.depthwise_conv_2d(xp, w.transpose(3, 1, 2, 0), bias,
                                     depth_multiplier=w.shape[0] // in_c, **common)]
    return [q8.conv_2d(xp, w, bias, **common)]


@kernel("FullyConnected")
def fully_connected(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    bias = args[2] if len(args) > 2 else None
    return [q8.fully_connected(args[0], args[1], bias, w_scales=list(_q(node.inputs[1]).scale),
                               **_xy(node), activation=node.attr("activation", "NONE"),
                               keep_num_dims=node.inputs[0].type.rank > 2)]


@kernel("MaxPool", "AveragePool")
def pool(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, params = args[0], _xy(node)
    kernel_hw, strides, pads = node.attr("kernel_shape"), node.attr("strides"), node.attr("pads")
    padding = tflite_padding(x.shape[1:3], kernel_hw, strides, (1, 1), pads)
    if node.op == "AveragePool" and node.attr("count_include_pad", 0) and any(pads):
        padding = None
    if padding is None:
        fill = -128 if node.op == "MaxPool" else params["x_zero_point"]
        x, padding = _border(x, pads, int(fill)), "VALID"
    fn = q8.max_pool_2d if node.op == "MaxPool" else q8.average_pool_2d
    return [fn(x, filter_hw=kernel_hw, stride=strides, padding=padding,
               y_scale=params["y_scale"], y_zero_point=params["y_zero_point"],
               activation=node.attr("activation", "NONE"))]


@kernel("GlobalAveragePool", "ReduceMean")
def mean(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    rank = args[0].ndim
    if node.op == "GlobalAveragePool":
        axes, keep = [1, 2], True
    else:
        axes = node.attr("axes")
        axes = list(range(rank)) if axes is None else sorted(a % rank for a in axes)
        keep = bool(node.attr("keepdims", 1))
    return [q8.mean(args[0], axes, keep_dims=keep, **_xy(node))]


@kernel("Add", "Sub", "Mul")
def binary(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    a, b, y = _q(node.inputs[0]), _q(node.inputs[1]), _q(node.output)
    fn = {"Add": q8.add, "Sub": q8.sub, "Mul": q8.mul}[node.op]
    return [fn(args[0], args[1], a_scale=a.scale[0], a_zero_point=a.zero_point[0],
               b_scale=b.scale[0], b_zero_point=b.zero_point[0], y_scale=y.scale[0],
               y_zero_point=y.zero_point[0], activation=node.attr("activation", "NONE"))]


@kernel("Max", "Min")
def extremum(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    fn = q8.maximum if node.op == "Max" else q8.minimum
    return [fn(args[0], args[1])]


@kernel("Softmax")
def softmax(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    y = _q(node.output)
    return [q8.softmax(args[0], beta=1.0, x_scale=_q(node.inputs[0]).scale[0],
                       y_scale=y.scale[0], y_zero_point=y.zero_point[0])]


@kernel("Sigmoid", "Tanh")
def sigmoid_like(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = _q(node.inputs[0])
    fn = q8.logistic if node.op == "Sigmoid" else q8.tanh
    return [fn(args[0], x_scale=x.scale[0], x_zero_point=x.zero_point[0])]


@kernel("HardSwish", "Relu")
def rescaling_unary(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    fn = q8.hard_swish if node.op == "HardSwish" else q8.relu
    return [fn(args[0], **_xy(node))]


@kernel("LeakyRelu")
def leaky_relu(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [q8.leaky_relu(args[0], alpha=float(node.attr("alpha")), **_xy(node))]


@kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def reshape(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Reshape to the IR output type; a batch dimension the type keeps is kept from the array.

    Like the float kernel: when the typed input and output agree on dimension 0 and
    the array's leading dimension differs from it (a batch of samples run at once),
    the target is ``(N, *typed_out[1:])``.
    """
    x, typed_in, out_shape = args[0], node.inputs[0].shape, node.output.shape
    if (x.ndim == len(typed_in) and x.ndim > 0 and len(out_shape) > 0
            and x.shape[0] != typed_in[0] and typed_in[0] == out_shape[0]
            and x.shape[1:] == tuple(typed_in[1:])):
        out_shape = (x.shape[0], *out_shape[1:])
    return [q8.reshape(x, out_shape)]


@kernel("Transpose")
def transpose(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [q8.transpose(args[0], node.attr("perm"))]


@kernel("Concat")
def concat(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    rank = node.output.type.rank
    y = q8.concatenation([a for a in args if a is not None], node.attr("axis") % rank)
    activation = node.attr("activation", "NONE")
    if activation == "RELU":  # the backend emits it as a separate RELU (same parameters)
        y = q8.relu(y, **_xy(node) | {"x_scale": _q(node.output).scale[0],
                                      "x_zero_point": _q(node.output).zero_point[0]})
    elif activation == "RELU6":
        y = q8.relu6(y, x_scale=_q(node.output).scale[0],
                     x_zero_point=_q(node.output).zero_point[0])
    elif activation != "NONE":
        raise ValueError(f"int8 concat with fused {activation} is not supported")
    return [y]


@kernel("Pad")
def pad(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    pads = node.attr("pads")
    rank = len(pads) // 2
    y = _q(node.output)
    value = float(node.attr("value", 0.0))
    constant = None
    if value != 0.0:
        constant = int(np.clip(q8.quantize(np.array([value], np.float32), y_scale=y.scale[0],
                                           y_zero_point=y.zero_point[0])[0], -128, 127))
    return [q8.pad(args[0], [(pads[i], pads[i + rank]) for i in range(rank)],
                   y_zero_point=y.zero_point[0], constant=constant)]


@kernel("QuantizeLinear")
def quantize(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    source, y = node.inputs[0], _q(node.output)
    extra = {}
    if source is not None and source.quant is not None:
        extra = {"x_scale": source.quant.scale[0], "x_zero_point": source.quant.zero_point[0]}
    return [q8.quantize(args[0], y_scale=y.scale[0], y_zero_point=y.zero_point[0],
                        out_dtype=node.output.dtype.numpy, **extra)]


@kernel("DequantizeLinear")
def dequantize(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = _q(node.inputs[0])
    if x.axis is not None:  # a per-channel weight feeding a float fallback op
        from microlith.quantization import dequantize_array

        return [dequantize_array(args[0], x)]
    return [q8.dequantize(args[0], x_scale=x.scale[0], x_zero_point=x.zero_point[0])]
