"""Importers for spatial and normalization ops: Conv, ConvTranspose, pools, BatchNorm.

``auto_pad`` and pooling ``ceil_mode`` are resolved to explicit ``pads``
(top, left, bottom, right); only 2-D (4-D tensor) forms are accepted.
"""

from __future__ import annotations

import math

import onnx

from microlith.frontend.context import Attrs, ImportContext, importer, node_attrs
from microlith.ir.core import Value

# ---- spatial ops ------------------------------------------------------------------------

def _explicit_pads(ctx: ImportContext, node: onnx.NodeProto, attrs: Attrs, in_hw: tuple[int, int],
                   kernel: tuple[int, int], strides: tuple[int, int],
                   dilations: tuple[int, int]) -> tuple[int, int, int, int]:
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad in ("NOTSET", ""):
        pads = tuple(int(p) for p in attrs.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4:
            raise ctx.fail(node, f"expects 4 pads for a 2-D op, got {list(pads)}")
        return pads  # type: ignore[return-value]
    if auto_pad == "VALID":
        return (0, 0, 0, 0)
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
                    attrs: Attrs) -> Attrs:
    x = ctx.values[node.input[0]]
    if x.type.rank != 4:
        raise ctx.fail(node, f"only 2-D (4-D tensor) inputs are supported, got shape {x.shape}")
    strides = tuple(int(s) for s in attrs.get("strides", (1, 1)))
    dilations = tuple(int(d) for d in attrs.get("dilations", (1, 1)))
    pads = _explicit_pads(ctx, node, attrs, x.shape[2:4], kernel, strides, dilations)
    return {"strides": strides, "dilations": dilations, "pads": pads}


@importer("Conv")
def _conv(ctx: ImportContext, node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    w = ctx.values[node.input[1]]
    if w.type.rank != 4:
        raise ctx.fail(node, f"only 2-D convolution is supported (weights {w.shape})")
    out = _spatial_common(ctx, node, (w.shape[2], w.shape[3]), attrs)
    out["group"] = int(attrs.get("group", 1))
    return "Conv", ctx.inputs(node), out


@importer("ConvTranspose")
def _conv_transpose(ctx: ImportContext,
                    node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "") or "output_shape" in attrs:
        raise ctx.fail(node, "auto_pad and output_shape are not supported; use explicit pads")
    if tuple(attrs.get("dilations", (1, 1))) != (1, 1) or int(attrs.get("group", 1)) != 1:
        raise ctx.fail(node, "only dilation 1 and group 1 are supported")
    w = ctx.values[node.input[1]]
    out = _spatial_common(ctx, node, (w.shape[2], w.shape[3]), attrs)
    out["output_padding"] = tuple(int(p) for p in attrs.get("output_padding", (0, 0)))
    return "ConvTranspose", ctx.inputs(node), out


@importer("MaxPool", "AveragePool")
def _pool(ctx: ImportContext, node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    if len(node.output) > 1 and node.output[1]:
        raise ctx.fail(node, "the Indices output is not supported")
    if int(attrs.get("storage_order", 0)) or tuple(attrs.get("dilations", (1, 1))) != (1, 1):
        raise ctx.fail(node, "storage_order and dilations are not supported")
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    if len(kernel) != 2:
        raise ctx.fail(node, f"only 2-D pooling is supported (kernel {list(kernel)})")
    out = _spatial_common(ctx, node, kernel, attrs)  # type: ignore[arg-type]
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
    if ctx.values[node.input[0]].type.rank != 4:
        raise ctx.fail(node, "only 4-D inputs are supported")
    return "GlobalAveragePool", ctx.inputs(node), {}


@importer("BatchNormalization")
def _batchnorm(ctx: ImportContext,
               node: onnx.NodeProto) -> tuple[str, list[Value | None], Attrs]:
    attrs = node_attrs(node)
    if int(attrs.get("training_mode", 0)) or any(node.output[1:]):
        raise ctx.fail(node, "training-mode BatchNormalization (extra outputs) is not supported")
    return "BatchNormalization", ctx.inputs(node), {"epsilon": float(attrs.get("epsilon", 1e-5))}
