"""Importers for spatial and normalization ops: Conv, ConvTranspose, pools, BatchNorm.

``auto_pad`` and pooling ``ceil_mode`` are resolved to explicit ``pads``
(top, left, bottom, right); only 2-D (4-D tensor) forms are accepted.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from microlith.frontend.context import Attrs, ImportContext, importer, node_attrs
from microlith.ir.core import Value

INT16_MAX = 2**15 - 1

# ---- spatial ops ------------------------------------------------------------------------

def _explicit_pads(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs, in_hw: tuple[int, ...],
                   kernel: tuple[int, ...], strides: tuple[int, ...],
                   dilations: tuple[int, ...]) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        return ctx.ints(node, attrs, "pads", (0, 0, 0, 0), 4)  # type: ignore[return-value]
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(node, f"unknown auto_pad {auto_pad!r}")
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begin = small if auto_pad == "SAME_UPPER" else large
        begins.append(begin)
        ends.append(total - begin)
    return (begins[0], begins[1], ends[0], ends[1])


def _spatial_common(ctx: ImportContext, node: onnx.NodeProto, kernel: tuple[int, int],
                    attrs: Attrs, check_fit: bool = True) -> Attrs:
    """Strides, dilations and explicit pads, validated; with ``check_fit`` the (dilated)
    kernel must fit the padded input."""
    x = ctx.required(node, 0, "X")
    if x.type.rank != 4:
        raise ctx.fail(node, f"only 2-D (4-D tensor) inputs are supported, got shape {x.shape}")
    if any(k < 1 for k in kernel):
        raise ctx.fail(node, f"kernel {list(kernel)} has an empty dimension")
    # TFLite's kernels keep strides and dilations in int16 (LiteRT refuses larger ones)
    strides = ctx.ints(node, attrs, "strides", (1, 1), 2, minimum=1, maximum=INT16_MAX)
    dilations = ctx.ints(node, attrs, "dilations", (1, 1), 2, minimum=1, maximum=INT16_MAX)
    pads = _explicit_pads(ctx, node, attrs, x.shape[2:4], kernel, strides, dilations)
    for size, k, d, begin, end in zip(x.shape[2:4], kernel, dilations, pads[:2], pads[2:],
                                      strict=True):
        if check_fit and (k - 1) * d + 1 > size + begin + end:
            raise ctx.fail(node, f"kernel {list(kernel)} (dilations {list(dilations)}) is "
                                 f"larger than the padded input {list(x.shape[2:4])} with "
                                 f"pads {list(pads)}")
    return {"strides": strides, "dilations": dilations, "pads": pads}


def _kernel_of(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs,
               w: Value) -> tuple[int, int]:
    """The weights' spatial shape; a ``kernel_shape`` attribute must agree with it."""
    if w.type.rank != 4:
        raise ctx.fail(node, f"only 2-D convolution is supported (weights {w.shape})")
    kernel = (w.shape[2], w.shape[3])
    if "kernel_shape" in attrs and tuple(attrs["kernel_shape"]) != kernel:
        raise ctx.fail(node, f"kernel_shape {list(attrs['kernel_shape'])} disagrees with the "
                             f"weights' spatial shape {list(kernel)}")
    return kernel


@importer("Conv")
def _conv(ctx: ImportContext, node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    w = ctx.required(node, 1, "W")
    out = _spatial_common(ctx, node, _kernel_of(ctx, node, attrs, w), attrs)
    out["group"] = ctx.ints(node, attrs, "group", (1,), 1, minimum=1)[0]
    return "Conv", ctx.inputs(node), out


@importer("ConvTranspose")
def _conv_transpose(ctx: ImportContext,
                    node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "") or "output_shape" in attrs:
        raise ctx.fail(node, "auto_pad and output_shape are not supported; use explicit pads")
    if tuple(attrs.get("dilations", (1, 1))) != (1, 1):
        raise ctx.fail(node, "only dilation 1 is supported")
    w = ctx.required(node, 1, "W")
    out = _spatial_common(ctx, node, _kernel_of(ctx, node, attrs, w), attrs, check_fit=False)
    out["output_padding"] = ctx.ints(node, attrs, "output_padding", (0, 0), 2)
    x = ctx.values[node.input[0]]
    for axis, (size, k, s, p) in enumerate(zip(x.shape[2:4], w.shape[2:4], out["strides"],
                                               out["output_padding"], strict=True)):
        if s * (size - 1) + p + k - out["pads"][axis] - out["pads"][axis + 2] < 1:
            raise ctx.fail(node, f"pads {list(out['pads'])} remove the whole output")
    group = int(attrs.get("group", 1))
    if group == 1:
        return "ConvTranspose", ctx.inputs(node), out
    return _grouped_conv_transpose(ctx, node, group, out)


def _grouped_conv_transpose(ctx: ImportContext, node: onnx.NodeProto, group: int,
                            attrs: Attrs) -> tuple[str, list[Value | None], Attrs]:
    """``group`` > 1: input channels ``[g I/G, (g+1) I/G)`` (a Slice) through weights
    ``W[g I/G : (g+1) I/G]`` (``[I, O/G, KH, KW]``) and the bias of output channels
    ``[g O/G, (g+1) O/G)``, one ConvTranspose per group, joined by Concat on channels."""
    x, w = ctx.values[node.input[0]], ctx.required(node, 1, "W")
    bias = ctx.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    channels = x.shape[1]
    if w.data is None or (bias is not None and bias.data is None):
        raise ctx.fail(node, f"group {group} needs constant weights and bias")
    if channels % group or w.shape[0] != channels:
        raise ctx.fail(node, f"group {group} does not divide the {channels} input channels "
                             f"(weights {list(w.shape)})")
    per_in, per_out = channels // group, w.shape[1]
    graph, parts = ctx.graph, list[Value | None]()
    for g in range(group):
        bounds = [graph.add_constant(np.array([v], np.int64), f"{node.name}_{what}{g}")
                  for what, v in (("start", g * per_in), ("end", (g + 1) * per_in),
                                  ("axis", 1))]
        part = graph.add_node("Slice", [x, *bounds], name=f"{node.name}/in{g}")
        inputs: list[Value | None] = [part.output, graph.add_constant(
            np.ascontiguousarray(w.data[g * per_in:(g + 1) * per_in]), f"{w.name}_g{g}")]
        if bias is not None:
            inputs.append(graph.add_constant(
                np.ascontiguousarray(bias.data[g * per_out:(g + 1) * per_out]),  # type: ignore[index]
                f"{bias.name}_g{g}"))
        created = graph.add_node("ConvTranspose", inputs, dict(attrs), name=f"{node.name}/g{g}")
        created.meta["onnx_op"] = "ConvTranspose"
        parts.append(created.output)
    return "Concat", parts, {"axis": 1}


@importer("MaxPool", "AveragePool")
def _pool(ctx: ImportContext, node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    if len(node.output) > 1 and node.output[1]:
        raise ctx.fail(node, "the Indices output is not supported")
    if int(attrs.get("storage_order", 0)) or tuple(attrs.get("dilations", (1, 1))) != (1, 1):
        raise ctx.fail(node, "storage_order and dilations are not supported")
    if "kernel_shape" not in attrs:
        raise ctx.fail(node, "attribute kernel_shape is missing")
    if len(attrs["kernel_shape"]) != 2:
        raise ctx.fail(node, f"only 2-D pooling is supported (kernel "
                             f"{list(attrs['kernel_shape'])})")
    kernel = ctx.ints(node, attrs, "kernel_shape", (), 2, minimum=1)
    out = _spatial_common(ctx, node, kernel, attrs)  # type: ignore[arg-type]
    if any(p >= k for p, k in zip(out["pads"], kernel * 2, strict=True)):
        raise ctx.fail(node, f"pads {list(out['pads'])} must be smaller than the kernel "
                             f"{list(kernel)} (a window would hold only padding)")
    del out["dilations"]
    out["kernel_shape"] = kernel
    include_pad = int(attrs.get("count_include_pad", 0))
    if node.op_type == "AveragePool":
        out["count_include_pad"] = include_pad
    if int(attrs.get("ceil_mode", 0)):
        x = ctx.values[node.input[0]]
        if node.op_type == "AveragePool" and include_pad:
            raise ctx.fail(node, "ceil_mode with count_include_pad is not supported")
        top, left, bottom, right = out["pads"]
        extra = []
        for size, k, s, b, e in zip(x.shape[2:4], kernel, out["strides"], (top, left),
                                    (bottom, right), strict=True):
            span = size + b + e - k
            ceil_out = -(-span // s) + 1
            if (ceil_out - 1) * s >= size + b:  # ONNX drops a window starting in end padding
                ceil_out -= 1
            extra.append(max((ceil_out - 1) * s + k - (size + b + e), 0))
        out["pads"] = (top, left, bottom + extra[0], right + extra[1])
    return node.op_type, ctx.inputs(node)[:1], out


@importer("GlobalAveragePool")
def _global_pool(ctx: ImportContext,
                 node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    if ctx.required(node, 0, "X").type.rank != 4:
        raise ctx.fail(node, "only 4-D inputs are supported")
    return "GlobalAveragePool", ctx.inputs(node), {}


@importer("BatchNormalization")
def _batchnorm(ctx: ImportContext,
               node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    """Scale, bias, mean and variance: one value per channel (axis 1 of X)."""
    attrs = node_attrs(node)
    if int(attrs.get("training_mode", 0)) or any(node.output[1:]):
        raise ctx.fail(node, "training-mode BatchNormalization (extra outputs) is not supported")
    x = ctx.required(node, 0, "X")
    channels = x.shape[1] if x.type.rank > 1 else 1
    for index, what in enumerate(("scale", "B", "mean", "var"), start=1):
        param = ctx.required(node, index, what)
        if param.shape != (channels,):
            raise ctx.fail(node, f"{what} has shape {list(param.shape)}; expected "
                                 f"[{channels}] (one value per channel of {list(x.shape)})")
    epsilon = ctx.finite(node, attrs, "epsilon", 1e-5)
    if epsilon < 0:
        raise ctx.fail(node, f"epsilon {epsilon} is negative")
    return "BatchNormalization", ctx.inputs(node), {"epsilon": epsilon}
