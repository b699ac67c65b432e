"""Per-op lowerings to TFLite builtins (float32; NHWC layout expected).

Padding: explicit pads equivalent to SAME/VALID use them; others become a PAD
(PADV2 with the lowest float for MaxPool) followed by a VALID op. Grouped
convolutions that are not depthwise become SPLIT + one CONV_2D per group +
CONCATENATION. Clip/HardSigmoid use MAXIMUM/MINIMUM and a RELU6-fused ADD, since
TFLite-Micro has no RELU_N1_TO_1 / RELU_0_TO_1 kernels.
"""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.tflite.lowering import LowerContext, lowers
from microlith.backends.tflite.padding import tflite_padding
from microlith.ir.core import Node
from microlith.ir.opdefs import spatial_axes
from microlith.ir.types import QuantParams

FLOAT_LOWEST = float(np.finfo(np.float32).min)


def _nhwc(node: Node) -> str | None:
    return None if node.attr("layout", "NCHW") == "NHWC" else "layout is NCHW (run to-nhwc)"


def _spatial(ctx: LowerContext, node: Node, kernel: tuple[int, int],
             pad_value: float = 0.0) -> tuple[int, str]:
    """Input tensor index and padding mode, emitting a PAD when SAME/VALID do not fit."""
    x = node.inputs[0]
    _, h_ax, w_ax = spatial_axes("NHWC")
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    mode = tflite_padding((x.shape[h_ax], x.shape[w_ax]), kernel, node.attr("strides"),
                          node.attr("dilations", (1, 1)), pads)
    if node.op == "AveragePool" and node.attr("count_include_pad", 0) and any(pads):
        mode = None  # TFLite never counts the border: pad explicitly, then pool VALID
    if mode is not None:
        return ctx.tensor(x), mode
    top, left, bottom, right = pads
    paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
    shape = [x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]]
    padded = ctx.activation(x, f"{node.name}_pad", shape)
    pads_t = ctx.const(paddings, f"{node.name}_paddings")
    if pad_value == 0.0:  # PAD fills with the zero point: real 0 for quantized tensors
        ctx.emit("PAD", [ctx.tensor(x), pads_t], [padded])
    else:
        if x.quant is not None:
            lowest = np.array([np.iinfo(x.dtype.numpy).min], x.dtype.numpy)
            value = ctx.const(lowest, f"{node.name}_pad_value", x.quant)
        else:
            value = ctx.const(np.array([pad_value], np.float32), f"{node.name}_pad_value")
        ctx.emit("PADV2", [ctx.tensor(x), pads_t, value], [padded])
    return padded, "VALID"


def _bias(ctx: LowerContext, node: Node, channels: int, index: int = 2) -> int:
    """The bias tensor; float graphs get explicit zeros, quantized ones omit it (-1)."""
    if node.input(index) is not None:
        return ctx.tensor(node.input(index))
    if node.inputs[0].quant is not None:
        return -1
    return ctx.const(np.zeros(channels, np.float32), f"{node.name}_bias")


def _conv_options(node: Node, padding: str, activation: str) -> dict:
    sh, sw = node.attr("strides")
    dh, dw = node.attr("dilations", (1, 1))
    return {"padding": padding, "stride_h": sh, "stride_w": sw, "dilation_h_factor": dh,
            "dilation_w_factor": dw, "fused_activation_function": activation}


@lowers("Conv", check=_nhwc)
def conv(ctx: LowerContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    out_c, kh, kw, in_per_group = w.shape
    group = node.attr("group", 1)
    in_c = x.shape[3]
    x_t, padding = _spatial(ctx, node, (kh, kw))
    act = node.attr("activation", "NONE")
    if group == 1:
        ctx.emit("CONV_2D", [x_t, ctx.tensor(w), _bias(ctx, node, out_c)],
                 [ctx.tensor(node.output)], _conv_options(node, padding, act))
    elif group == in_c and in_per_group == 1:
        quant = None if w.quant is None else QuantParams(w.quant.scale, w.quant.zero_point,
                                                         3 if w.quant.axis is not None else None)
        weights = ctx.const(np.ascontiguousarray(w.data.transpose(3, 1, 2, 0)), w.name + "_dw",
                            quant)
        options = _conv_options(node, padding, act)
        options["depth_multiplier"] = out_c // in_c
        ctx.emit("DEPTHWISE_CONV_2D", [x_t, weights, _bias(ctx, node, out_c)],
                 [ctx.tensor(node.output)], options)
    else:
        _grouped_conv(ctx, node, x_t, padding, group)


def _grouped_conv(ctx: LowerContext, node: Node, x_t: int, padding: str, group: int) -> None:
    """SPLIT along channels, one CONV_2D per group, CONCATENATION of the results."""
    w, out = node.inputs[1], node.output
    per_out = w.shape[0] // group
    x_shape = ctx.tensors[x_t].shape
    parts = [ctx.activation(node.inputs[0], f"{node.name}_in{g}",
                            [*x_shape[:3], x_shape[3] // group]) for g in range(group)]
    axis = ctx.const(np.array(3, np.int32), f"{node.name}_split_axis")
    ctx.emit("SPLIT", [axis, x_t], parts, {"num_splits": group})
    bias = node.input(2)
    results = []
    for g in range(group):
        part = slice(g * per_out, (g + 1) * per_out)
        weights = ctx.const(np.ascontiguousarray(w.data[part]), f"{w.name}_g{g}",
                            _slice_quant(w.quant, part))
        if bias is not None:
            b = ctx.const(bias.data[part], f"{node.name}_bias_g{g}", _slice_quant(bias.quant, part))
        elif w.quant is not None:
            b = -1
        else:
            b = ctx.const(np.zeros(per_out, np.float32), f"{node.name}_bias_g{g}")
        result = ctx.activation(out, f"{node.name}_out{g}", [*out.shape[:3], per_out])
        ctx.emit("CONV_2D", [parts[g], weights, b],
                 [result], _conv_options(node, padding, node.attr("activation", "NONE")))
        results.append(result)
    ctx.emit("CONCATENATION", results, [ctx.tensor(out)], {"axis": 3})


def _slice_quant(quant: QuantParams | None, part: slice) -> QuantParams | None:
    """Per-axis parameters restricted to channels ``part`` (per-tensor ones unchanged)."""
    if quant is None or quant.axis is None:
        return quant
    return QuantParams(quant.scale[part], quant.zero_point[part], quant.axis)


def _conv_transpose_check(node: Node) -> str | None:
    if _nhwc(node):
        return _nhwc(node)
    if any(node.attr("pads", (0, 0, 0, 0))) or any(node.attr("output_padding", (0, 0))):
        return "only VALID transposed convolution (no pads, no output_padding) is supported"
    return None


@lowers("ConvTranspose", check=_conv_transpose_check)
def conv_transpose(ctx: LowerContext, node: Node) -> None:
    x, w, out = node.inputs[0], node.inputs[1], node.output
    shape = ctx.const(np.array(out.shape, np.int32), f"{node.name}_output_shape")
    sh, sw = node.attr("strides")
    ctx.emit("TRANSPOSE_CONV", [shape, ctx.tensor(w), ctx.tensor(x), _bias(ctx, node, w.shape[0],
                                                                            2)],
             [ctx.tensor(out)], {"padding": "VALID", "stride_h": sh, "stride_w": sw,
                                 "fused_activation_function": node.attr("activation", "NONE")})


def _pool_check(node: Node) -> str | None:
    if _nhwc(node):
        return _nhwc(node)
    x = node.inputs[0]
    if node.op == "AveragePool" and not node.attr("count_include_pad", 0) and tflite_padding(
            (x.shape[1], x.shape[2]), node.attr("kernel_shape"), node.attr("strides"), (1, 1),
            node.attr("pads")) is None:
        return "pads that are neither SAME nor VALID with count_include_pad=0"
    return None


@lowers("MaxPool", "AveragePool", check=_pool_check)
def pool(ctx: LowerContext, node: Node) -> None:
    kh, kw = node.attr("kernel_shape")
    x_t, padding = _spatial(ctx, node, (kh, kw),
                            FLOAT_LOWEST if node.op == "MaxPool" else 0.0)
    sh, sw = node.attr("strides")
    ctx.emit("MAX_POOL_2D" if node.op == "MaxPool" else "AVERAGE_POOL_2D", [x_t],
             [ctx.tensor(node.output)],
             {"padding": padding, "stride_h": sh, "stride_w": sw, "filter_height": kh,
              "filter_width": kw, "fused_activation_function": node.attr("activation", "NONE")})


@lowers("GlobalAveragePool", check=_nhwc)
def global_pool(ctx: LowerContext, node: Node) -> None:
    axes = ctx.const(np.array([1, 2], np.int32), f"{node.name}_axes")
    ctx.emit("MEAN", [ctx.tensor(node.inputs[0]), axes], [ctx.tensor(node.output)],
             {"keep_dims": True})


@lowers("ReduceMean")
def reduce_mean(ctx: LowerContext, node: Node) -> None:
    rank = node.inputs[0].type.rank
    axes = node.attr("axes")
    axes = list(range(rank)) if axes is None else sorted(a % rank for a in axes)
    axes_t = ctx.const(np.array(axes, np.int32), f"{node.name}_axes")
    ctx.emit("MEAN", [ctx.tensor(node.inputs[0]), axes_t], [ctx.tensor(node.output)],
             {"keep_dims": bool(node.attr("keepdims", 1))})


@lowers("FullyConnected")
def fully_connected(ctx: LowerContext, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    ctx.emit("FULLY_CONNECTED", [ctx.tensor(x), ctx.tensor(w), _bias(ctx, node, w.shape[0])],
             [ctx.tensor(node.output)],
             {"fused_activation_function": node.attr("activation", "NONE"),
              "keep_num_dims": x.type.rank > 2})


BINARY = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Max": "MAXIMUM",
          "Min": "MINIMUM"}


@lowers(*BINARY)
def binary(ctx: LowerContext, node: Node) -> None:
    options = {}
    if node.op in ("Add", "Sub", "Mul", "Div"):
        options["fused_activation_function"] = node.attr("activation", "NONE")
    ctx.emit(BINARY[node.op], [ctx.tensor(v) for v in node.inputs], [ctx.tensor(node.output)],
             options)


UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH",
         "Exp": "EXP", "Sqrt": "SQRT", "Neg": "NEG", "Abs": "ABS"}


@lowers(*UNARY)
def unary(ctx: LowerContext, node: Node) -> None:
    ctx.emit(UNARY[node.op], [ctx.tensor(node.inputs[0])], [ctx.tensor(node.output)])


@lowers("LeakyRelu")
def leaky_relu(ctx: LowerContext, node: Node) -> None:
    ctx.emit("LEAKY_RELU", [ctx.tensor(node.inputs[0])], [ctx.tensor(node.output)],
             {"alpha": float(node.attr("alpha"))})


@lowers("Clip")
def clip(ctx: LowerContext, node: Node) -> None:
    low, high = float(node.attr("min")), float(node.attr("max"))
    x, out = node.inputs[0], node.output
    if (low, high) == (0.0, 6.0):
        ctx.emit("RELU6", [ctx.tensor(x)], [ctx.tensor(out)])
        return
    if (low, high) == (0.0, math.inf):
        ctx.emit("RELU", [ctx.tensor(x)], [ctx.tensor(out)])
        return
    current = ctx.tensor(x)
    steps = [(op, bound) for op, bound, identity in (("MAXIMUM", low, -math.inf),
                                                     ("MINIMUM", high, math.inf))
             if bound != identity]  # max=-inf is not "no bound": every output is -inf
    if not steps:
        ctx.emit("RESHAPE", [current, ctx.const(np.array(out.shape, np.int32),
                                                f"{node.name}_shape")],
                 [ctx.tensor(out)], {"new_shape": list(out.shape)})
        return
    for i, (op, bound) in enumerate(steps):
        target = ctx.tensor(out) if i == len(steps) - 1 else ctx.activation(
            out, f"{node.name}_{op.lower()}")
        ctx.emit(op, [current, ctx.const(np.array(bound, np.float32), f"{node.name}_{op.lower()}"
                                         "_bound")], [target])
        current = target


@lowers("HardSigmoid")
def hard_sigmoid(ctx: LowerContext, node: Node) -> None:
    """max(0, min(1, a*x + b)) = relu6(6a*x + 6b) / 6."""
    x, out = node.inputs[0], node.output
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    scaled = ctx.activation(out, f"{node.name}_scaled")
    shifted = ctx.activation(out, f"{node.name}_relu6")
    ctx.emit("MUL", [ctx.tensor(x), ctx.const(np.array(6 * alpha, np.float32), f"{node.name}_a")],
             [scaled], {"fused_activation_function": "NONE"})
    ctx.emit("ADD", [scaled, ctx.const(np.array(6 * beta, np.float32), f"{node.name}_b")],
             [shifted], {"fused_activation_function": "RELU6"})
    ctx.emit("MUL", [shifted, ctx.const(np.array(1 / 6, np.float32), f"{node.name}_sixth")],
             [ctx.tensor(out)], {"fused_activation_function": "NONE"})


def _softmax_check(node: Node) -> str | None:
    rank = node.inputs[0].type.rank
    if node.attr("axis") % rank != rank - 1:
        return f"softmax over axis {node.attr('axis')} is not the last axis"
    return None


@lowers("Softmax", check=_softmax_check)
def softmax(ctx: LowerContext, node: Node) -> None:
    ctx.emit("SOFTMAX", [ctx.tensor(node.inputs[0])], [ctx.tensor(node.output)], {"beta": 1.0})


@lowers("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
def reshape(ctx: LowerContext, node: Node) -> None:
    shape = list(node.output.shape)
    ctx.emit("RESHAPE", [ctx.tensor(node.inputs[0]),
                         ctx.const(np.array(shape, np.int32), f"{node.name}_shape")],
             [ctx.tensor(node.output)], {"new_shape": shape})


@lowers("Transpose")
def transpose(ctx: LowerContext, node: Node) -> None:
    perm = ctx.const(np.array(node.attr("perm"), np.int32), f"{node.name}_perm")
    ctx.emit("TRANSPOSE", [ctx.tensor(node.inputs[0]), perm], [ctx.tensor(node.output)])


@lowers("Concat")
def concat(ctx: LowerContext, node: Node) -> None:
    """CONCATENATION; a fused activation becomes an op of its own after it.

    The TFLite and TFLite-Micro CONCATENATION kernels refuse any
    ``fused_activation_function`` but NONE (checked in their Prepare).
    """
    axis = node.attr("axis") % node.output.type.rank
    activation = node.attr("activation", "NONE")
    out = ctx.tensor(node.output)
    joined = out if activation == "NONE" else ctx.activation(node.output, f"{node.name}_concat")
    ctx.emit("CONCATENATION", [ctx.tensor(v) for v in node.inputs], [joined],
             {"axis": axis, "fused_activation_function": "NONE"})
    if activation != "NONE":
        _standalone_activation(ctx, node, joined, out, activation)


def _standalone_activation(ctx: LowerContext, node: Node, x_t: int, out_t: int,
                           activation: str) -> None:
    """``activation`` as separate op(s) from tensor ``x_t`` to ``out_t``."""
    if activation in ("RELU", "RELU6"):
        ctx.emit(activation, [x_t], [out_t])
        return
    if activation != "RELU_N1_TO_1":
        raise ValueError(f"{node.name}: unknown activation {activation!r}")
    # As Clip(-1, 1) is lowered: TFLite-Micro has no RELU_N1_TO_1 kernel.
    clamped = ctx.activation(node.output, f"{node.name}_maximum")
    ctx.emit("MAXIMUM", [x_t, ctx.const(np.array(-1.0, np.float32),
                                        f"{node.name}_maximum_bound")], [clamped])
    ctx.emit("MINIMUM", [clamped, ctx.const(np.array(1.0, np.float32),
                                            f"{node.name}_minimum_bound")], [out_t])


@lowers("Pad")
def pad(ctx: LowerContext, node: Node) -> None:
    pads = node.attr("pads")
    rank = len(pads) // 2
    paddings = np.array([[pads[i], pads[i + rank]] for i in range(rank)], np.int32)
    inputs = [ctx.tensor(node.inputs[0]), ctx.const(paddings, f"{node.name}_paddings")]
    value = float(node.attr("value", 0.0))
    out = node.output
    if value == 0.0:  # PAD fills with the zero point, i.e. real 0 when quantized
        ctx.emit("PAD", inputs, [ctx.tensor(out)])
        return
    if out.quant is not None:
        from microlith.quantization import quantize_array

        fill = quantize_array(np.array([value], np.float32), out.quant, out.dtype.numpy)
        inputs.append(ctx.const(fill, f"{node.name}_value", out.quant))
    else:
        inputs.append(ctx.const(np.array([value], np.float32), f"{node.name}_value"))
    ctx.emit("PADV2", inputs, [ctx.tensor(out)])


@lowers("QuantizeLinear")
def quantize(ctx: LowerContext, node: Node) -> None:
    ctx.emit("QUANTIZE", [ctx.tensor(node.inputs[0])], [ctx.tensor(node.output)])


@lowers("DequantizeLinear")
def dequantize(ctx: LowerContext, node: Node) -> None:
    ctx.emit("DEQUANTIZE", [ctx.tensor(node.inputs[0])], [ctx.tensor(node.output)])
