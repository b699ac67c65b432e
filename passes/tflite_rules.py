"""The rewrite rules of ``legalize-tflite``: one ``Rule`` (check, rewrite) per ONNX-level op.

A rule's ``check(node)`` returns why the node cannot be lowered (or None); ``rewrite``
turns the node into ``tfl.*`` ops in place (its output value is kept, so names and uses
stay), inserting helper nodes before it. New tensors get the names the ``.tflite`` will
carry (``<node>_pad``, ``<node>_paddings``, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.ops.common import same_valid_pads, spatial_axes
from microlith.quant.params import quantize_array

FLOAT_LOWEST = float(np.finfo(np.float32).min)
Check = Callable[[Node], str | None]
Rewrite = Callable[[Graph, Node], None]


@dataclass(frozen=True)
class Rule:
    rewrite: Rewrite
    check: Check | None = None


RULES: dict[str, Rule] = {}

_HINTS = {
    "BatchNormalization": " (run fold-batchnorm)",
    "Gemm": " (run lower-fc; only constant weights are supported)",
    "MatMul": " (run lower-fc; only constant weights are supported)",
    "Shape": " (run fold-constants)",
}


def hint(op: str) -> str:
    return _HINTS.get(op, "")


def rule(*ops: str, check: Check | None = None) -> Callable[[Rewrite], Rewrite]:
    def wrap(fn: Rewrite) -> Rewrite:
        for op in ops:
            RULES[op] = Rule(fn, check)
        return fn

    return wrap


# ---- helpers ---------------------------------------------------------------------------------
def const(graph: Graph, array: np.ndarray, name: str, quant: QuantParams | None = None) -> Value:
    """A new constant; ``name`` is what it should be called once the operands it replaces
    are gone (``claim_names``)."""
    value = graph.add_constant(np.ascontiguousarray(array), name, quant=quant)
    value.meta["wanted_name"] = name
    return value


def claim_names(graph: Graph) -> None:
    """Give every new value the name it asked for when that name has become free."""
    for value in list(graph.values.values()):
        wanted = value.meta.pop("wanted_name", None)
        if wanted is not None and wanted != value.name and wanted not in graph.values:
            graph.rename_value(value, wanted)


def insert(graph: Graph, node: Node, op: str, inputs: list[Value | None], like: Value,
           name: str, attrs: dict[str, Any] | None = None,
           shape: tuple[int, ...] | None = None) -> Value:
    """A new ``op`` node before ``node`` whose one output is typed like ``like``."""
    out = TensorType(like.dtype, like.shape if shape is None else tuple(shape), like.quant)
    new = graph.add_node(op, inputs, attrs, name=name, output_types=[out],
                         output_names=[name], before=node)
    new.output.meta["wanted_name"] = name
    return new.output


def activation(node: Node) -> str:
    return str(node.attr("activation", "NONE"))


def _nhwc(node: Node) -> str | None:
    return None if node.attr("layout", "NCHW") == "NHWC" else "layout is NCHW (run to-nhwc)"


def padding_mode(node: Node, kernel: tuple[int, int]) -> str | None:
    """'VALID' / 'SAME' when TFLite's padding equals the node's explicit pads, else None."""
    x = node.arg(0)
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    strides, dilations = node.attr("strides"), node.attr("dilations", (1, 1))
    top, left, bottom, right = pads
    _, h_ax, w_ax = spatial_axes("NHWC")
    in_hw = (x.shape[h_ax], x.shape[w_ax])
    for mode in ("VALID", "SAME"):
        t, lft, b, r = same_valid_pads(mode, in_hw, kernel, strides, dilations)
        if (t, lft) != (top, left):
            continue
        outs = [(n + a + c - d * (k - 1) - 1) // s + 1 for n, a, c, k, s, d in
                zip(in_hw, (top, left), (bottom, right), kernel, strides, dilations, strict=True)]
        want = [(n + a + c - d * (k - 1) - 1) // s + 1 for n, a, c, k, s, d in
                zip(in_hw, (t, lft), (b, r), kernel, strides, dilations, strict=True)]
        if outs == want:
            return mode
    return None


def spatial_input(graph: Graph, node: Node, kernel: tuple[int, int],
                  pad_value: float = 0.0) -> tuple[Value, str]:
    """The op's input and padding mode, inserting a PAD when SAME/VALID do not fit."""
    x = node.arg(0)
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    mode = padding_mode(node, kernel)
    if node.op == "AveragePool" and node.attr("count_include_pad", 0) and any(pads):
        mode = None  # TFLite never counts the border: pad explicitly, then pool VALID
    if mode is not None:
        return x, mode
    top, left, bottom, right = pads
    paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
    shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
    pads_t = const(graph, paddings, f"{node.name}_paddings")
    if pad_value == 0.0:  # PAD fills with the zero point: real 0 for quantized tensors
        return insert(graph, node, "tfl.pad", [x, pads_t], x, f"{node.name}_pad",
                      shape=shape), "VALID"
    if x.quant is not None:
        fill = const(graph, np.array([np.iinfo(x.dtype.numpy).min], x.dtype.numpy),
                     f"{node.name}_pad_value", x.quant)
    else:
        fill = const(graph, np.array([pad_value], np.float32), f"{node.name}_pad_value")
    return insert(graph, node, "tfl.padv2", [x, pads_t, fill], x, f"{node.name}_pad",
                  shape=shape), "VALID"


def bias_of(graph: Graph, node: Node, channels: int, index: int = 2) -> Value | None:
    """The bias operand; float graphs get explicit zeros, quantized ones leave it absent."""
    if node.input(index) is not None:
        return node.input(index)
    if node.arg(0).quant is not None:
        return None
    return const(graph, np.zeros(channels, np.float32), f"{node.name}_bias")


def conv_options(node: Node, padding: str) -> dict[str, Any]:
    sh, sw = node.attr("strides")
    dh, dw = node.attr("dilations", (1, 1))
    return {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "fused_activation_function": activation(node)}


def slice_quant(quant: QuantParams | None, part: slice) -> QuantParams | None:
    """Per-axis parameters restricted to channels ``part`` (per-tensor ones unchanged)."""
    if quant is None or quant.axis is None:
        return quant
    return QuantParams(quant.scale[part], quant.zero_point[part], quant.axis)


# ---- convolutions and pooling ---------------------------------------------------------------
@rule("Conv", check=_nhwc)
def _conv(graph: Graph, node: Node) -> None:
    x, w = node.arg(0), node.arg(1)
    out_c, kh, kw, in_per_group = w.shape
    group = node.attr("group", 1)
    in_c = x.shape[3]
    x_t, padding = spatial_input(graph, node, (kh, kw))
    if group == 1:
        graph.rewrite_node(node, "tfl.conv_2d", [x_t, w, bias_of(graph, node, out_c)],
                           conv_options(node, padding))
    elif group == in_c and in_per_group == 1:
        quant = None if w.quant is None else QuantParams(
            w.quant.scale, w.quant.zero_point, 3 if w.quant.axis is not None else None)
        weights = const(graph, w.constant.transpose(3, 1, 2, 0), w.name + "_dw", quant)
        options = conv_options(node, padding)
        options["depth_multiplier"] = out_c // in_c
        graph.rewrite_node(node, "tfl.depthwise_conv_2d",
                           [x_t, weights, bias_of(graph, node, out_c)], options)
    else:
        _grouped_conv(graph, node, x_t, padding, group)


def _grouped_conv(graph: Graph, node: Node, x_t: Value, padding: str, group: int) -> None:
    """SPLIT along channels, one CONV_2D per group, CONCATENATION of the results."""
    w, out, bias = node.arg(1), node.output, node.input(2)
    per_out = w.shape[0] // group
    axis = const(graph, np.array(3, np.int32), f"{node.name}_split_axis")
    part_type = TensorType(x_t.dtype, (*x_t.shape[:3], x_t.shape[3] // group), x_t.quant)
    split = graph.add_node("tfl.split", [axis, x_t], {"num_splits": group},
                           name=f"{node.name}_split", output_types=[part_type] * group,
                           output_names=[f"{node.name}_in{g}" for g in range(group)],
                           before=node)
    results = []
    for g in range(group):
        part = slice(g * per_out, (g + 1) * per_out)
        weights = const(graph, w.constant[part], f"{w.name}_g{g}", slice_quant(w.quant, part))
        if bias is not None:
            b: Value | None = const(graph, bias.constant[part], f"{node.name}_bias_g{g}",
                                    slice_quant(bias.quant, part))
        elif w.quant is not None:
            b = None
        else:
            b = const(graph, np.zeros(per_out, np.float32), f"{node.name}_bias_g{g}")
        results.append(insert(graph, node, "tfl.conv_2d", [split.outputs[g], weights, b], out,
                              f"{node.name}_out{g}", conv_options(node, padding),
                              shape=(*out.shape[:3], per_out)))
    graph.rewrite_node(node, "tfl.concatenation", results, {"axis": 3})


def _conv_transpose_check(node: Node) -> str | None:
    if _nhwc(node):
        return _nhwc(node)
    top, left, bottom, right = node.attr("pads", (0, 0, 0, 0))
    out_h, out_w = node.attr("output_padding", (0, 0))
    if out_h > bottom or out_w > right:
        return (f"output_padding {[out_h, out_w]} beyond the end pads {[bottom, right]} "
                "(rows of bias only) has no TRANSPOSE_CONV form")
    return None


@rule("ConvTranspose", check=_conv_transpose_check)
def _conv_transpose(graph: Graph, node: Node) -> None:
    """VALID TRANSPOSE_CONV of the full size ``s (n - 1) + k``; ONNX's pads (and an
    output_padding within the end pads) crop it: ``y = full[b : b + out]``, a STRIDED_SLICE."""
    x, w, out = node.arg(0), node.arg(1), node.output
    sh, sw = node.attr("strides")
    full = (out.shape[0], sh * (x.shape[1] - 1) + w.shape[1], sw * (x.shape[2] - 1) + w.shape[2],
            out.shape[3])
    shape = const(graph, np.array(full, np.int32), f"{node.name}_output_shape")
    inputs = [shape, w, x, bias_of(graph, node, w.shape[0])]
    options = {"padding": "VALID", "stride_h": sh, "stride_w": sw,
               "fused_activation_function": activation(node)}
    if full == out.shape:
        graph.rewrite_node(node, "tfl.transpose_conv", inputs, options)
        return
    top, left = node.attr("pads", (0, 0, 0, 0))[:2]
    y = insert(graph, node, "tfl.transpose_conv", inputs, out, f"{node.name}_full", options,
               shape=full)
    begin = [0, top, left, 0]
    end = [b + n for b, n in zip(begin, out.shape, strict=True)]
    tensors = [const(graph, np.array(v, np.int32), f"{node.name}_{what}")
               for what, v in (("begin", begin), ("end", end), ("strides", [1, 1, 1, 1]))]
    graph.rewrite_node(node, "tfl.strided_slice", [y, *tensors],
                       {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0,
                        "new_axis_mask": 0, "shrink_axis_mask": 0, "offset": False})


def _pool_check(node: Node) -> str | None:
    if _nhwc(node):
        return _nhwc(node)
    if node.op == "AveragePool" and not node.attr("count_include_pad", 0) and padding_mode(
            node, tuple(node.attr("kernel_shape"))) is None:
        return "pads that are neither SAME nor VALID with count_include_pad=0"
    return None


@rule("MaxPool", "AveragePool", check=_pool_check)
def _pool(graph: Graph, node: Node) -> None:
    kh, kw = node.attr("kernel_shape")
    x_t, padding = spatial_input(graph, node, (kh, kw),
                                 FLOAT_LOWEST if node.op == "MaxPool" else 0.0)
    sh, sw = node.attr("strides")
    graph.rewrite_node(node, "tfl.max_pool_2d" if node.op == "MaxPool" else "tfl.average_pool_2d",
                       [x_t], {"padding": padding, "stride_h": sh, "stride_w": sw,
                               "filter_height": kh, "filter_width": kw,
                               "fused_activation_function": activation(node)})


@rule("GlobalAveragePool", check=_nhwc)
def _global_pool(graph: Graph, node: Node) -> None:
    axes = const(graph, np.array([1, 2], np.int32), f"{node.name}_axes")
    graph.rewrite_node(node, "tfl.mean", [node.arg(0), axes], {"keep_dims": True})


@rule("ReduceMean")
def _reduce_mean(graph: Graph, node: Node) -> None:
    rank = node.arg(0).type.rank
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else sorted(a % rank for a in axes)
    axes_t = const(graph, np.array(axes, np.int32), f"{node.name}_axes")
    graph.rewrite_node(node, "tfl.mean", [node.arg(0), axes_t],
                       {"keep_dims": bool(node.attr("keepdims", 1))})


@rule("FullyConnected")
def _fully_connected(graph: Graph, node: Node) -> None:
    x, w = node.arg(0), node.arg(1)
    hybrid = x.dtype == DType.FLOAT32 and w.dtype == DType.INT8
    graph.rewrite_node(node, "tfl.fully_connected", [x, w, bias_of(graph, node, w.shape[0])],
                       {"fused_activation_function": activation(node),
                        "keep_num_dims": x.type.rank > 2, "asymmetric_quantize_inputs": hybrid})


# ---- element-wise -------------------------------------------------------------------------------
BINARY = {"Add": "tfl.add", "Sub": "tfl.sub", "Mul": "tfl.mul", "Div": "tfl.div",
          "Max": "tfl.maximum", "Min": "tfl.minimum", "PRelu": "tfl.prelu"}
UNARY = {"Relu": "tfl.relu", "Sigmoid": "tfl.logistic", "Tanh": "tfl.tanh",
         "HardSwish": "tfl.hard_swish", "Exp": "tfl.exp", "Sqrt": "tfl.sqrt", "Neg": "tfl.neg",
         "Abs": "tfl.abs", "Rsqrt": "tfl.rsqrt"}


@rule(*BINARY)
def _binary(graph: Graph, node: Node) -> None:
    attrs = {}
    if node.op in ("Add", "Sub", "Mul", "Div"):
        attrs["fused_activation_function"] = activation(node)
    graph.rewrite_node(node, BINARY[node.op], list(node.inputs), attrs)


@rule(*UNARY)
def _unary(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, UNARY[node.op], [node.arg(0)])


@rule("LeakyRelu")
def _leaky_relu(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.leaky_relu", [node.arg(0)],
                       {"alpha": float(node.attr("alpha"))})


@rule("Clip")
def _clip(graph: Graph, node: Node) -> None:
    low, high = float(node.attr("min")), float(node.attr("max"))
    x, out = node.arg(0), node.output
    if (low, high) == (0.0, 6.0):
        graph.rewrite_node(node, "tfl.relu6", [x])
        return
    if (low, high) == (0.0, math.inf):
        graph.rewrite_node(node, "tfl.relu", [x])
        return
    steps = [(op, bound) for op, bound, identity in (("maximum", low, -math.inf),
                                                     ("minimum", high, math.inf))
             if bound != identity]  # max=-inf is not "no bound": every output is -inf
    if not steps:
        shape = const(graph, np.array(out.shape, np.int32), f"{node.name}_shape")
        graph.rewrite_node(node, "tfl.reshape", [x, shape], {"new_shape": list(out.shape)})
        return
    current = x
    for i, (op, bound) in enumerate(steps):
        bound_t = const(graph, np.array(bound, np.float32), f"{node.name}_{op}_bound")
        if i == len(steps) - 1:
            graph.rewrite_node(node, f"tfl.{op}", [current, bound_t])
        else:
            current = insert(graph, node, f"tfl.{op}", [current, bound_t], out,
                             f"{node.name}_{op}")


@rule("HardSigmoid")
def _hard_sigmoid(graph: Graph, node: Node) -> None:
    """max(0, min(1, a*x + b)) = relu6(6a*x + 6b) / 6; when 6a or 6b is beyond float32
    (inf * 0 would be NaN), min(relu(a*x + b), 1) -- one op more, the same values."""
    x, out = node.arg(0), node.output
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    if not all(abs(6 * v) <= float(np.finfo(np.float32).max) for v in (alpha, beta)):
        a = const(graph, np.array(alpha, np.float32), f"{node.name}_a")
        scaled = insert(graph, node, "tfl.mul", [x, a], out, f"{node.name}_scaled",
                        {"fused_activation_function": "NONE"})
        b = const(graph, np.array(beta, np.float32), f"{node.name}_b")
        shifted = insert(graph, node, "tfl.add", [scaled, b], out, f"{node.name}_relu",
                         {"fused_activation_function": "RELU"})
        one = const(graph, np.array(1, np.float32), f"{node.name}_one")
        graph.rewrite_node(node, "tfl.minimum", [shifted, one])
        return
    a = const(graph, np.array(6 * alpha, np.float32), f"{node.name}_a")
    scaled = insert(graph, node, "tfl.mul", [x, a], out, f"{node.name}_scaled",
                    {"fused_activation_function": "NONE"})
    b = const(graph, np.array(6 * beta, np.float32), f"{node.name}_b")
    shifted = insert(graph, node, "tfl.add", [scaled, b], out, f"{node.name}_relu6",
                     {"fused_activation_function": "RELU6"})
    sixth = const(graph, np.array(1 / 6, np.float32), f"{node.name}_sixth")
    graph.rewrite_node(node, "tfl.mul", [shifted, sixth], {"fused_activation_function": "NONE"})


# Softmax (any axis): passes/tflite_rules_extra.py


# ---- data movement ------------------------------------------------------------------------------
@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def _reshape(graph: Graph, node: Node) -> None:
    shape = list(node.output.shape)
    shape_t = const(graph, np.array(shape, np.int32), f"{node.name}_shape")
    graph.rewrite_node(node, "tfl.reshape", [node.arg(0), shape_t], {"new_shape": shape})


@rule("Transpose")
def _transpose(graph: Graph, node: Node) -> None:
    perm = const(graph, np.array(node.attr("perm"), np.int32), f"{node.name}_perm")
    graph.rewrite_node(node, "tfl.transpose", [node.arg(0), perm])


@rule("Concat")
def _concat(graph: Graph, node: Node) -> None:
    axis = node.attr("axis") % node.output.type.rank
    graph.rewrite_node(node, "tfl.concatenation", list(node.inputs),
                       {"axis": axis, "fused_activation_function": "NONE"})


@rule("Pad")
def _pad(graph: Graph, node: Node) -> None:
    pads = node.attr("pads")
    rank = len(pads) // 2
    paddings = const(graph, np.array([[pads[i], pads[i + rank]] for i in range(rank)], np.int32),
                     f"{node.name}_paddings")
    value = float(node.attr("value", 0.0))
    x, out = node.arg(0), node.output
    if value == 0.0:  # PAD fills with the zero point, i.e. real 0 when quantized
        graph.rewrite_node(node, "tfl.pad", [x, paddings])
        return
    if out.quant is not None:
        fill = quantize_array(np.array([value], np.float32), out.quant, out.dtype.numpy.type)
        fill_t = const(graph, fill, f"{node.name}_value", out.quant)
    else:
        fill_t = const(graph, np.array([value], np.float32), f"{node.name}_value")
    graph.rewrite_node(node, "tfl.padv2", [x, paddings, fill_t])


@rule("QuantizeLinear")
def _quantize(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.quantize", [node.arg(0)])


@rule("DequantizeLinear")
def _dequantize(graph: Graph, node: Node) -> None:
    graph.rewrite_node(node, "tfl.dequantize", [node.arg(0)])


import microlith.passes.tflite_rules_extra  # noqa: E402, F401  (registers more rules)
