"""Importers for the ops real models add on top of the basic set (issue 9, item 4).

* ``Div`` by a constant becomes ``Mul`` by its float32 reciprocal (the TF converter's
  rewrite: one MUL, which every runtime has in int8); a zero divisor keeps the ``Div``.
* ``Pow`` with a constant scalar exponent: 2 is ``Mul(x, x)``, 0.5 is ``Sqrt``, 1 is the
  identity; any other exponent is refused (TFLite's POW has no int8 kernel anywhere).
* ``Elu`` keeps ``alpha`` (TFLite's ELU is alpha = 1; ``legalize-tflite`` refuses others).
* ``Split`` (``split`` input or attribute, or opset 18's ``num_outputs``) becomes one
  ``Slice`` per output: output 0 is the node itself, the others are added here.
* 1-D ``Conv`` / ``ConvTranspose`` / ``MaxPool`` / ``AveragePool`` (a 3-D ``[N, C, L]``
  input): the 2-D op over ``[N, C, 1, L]`` between ``Unsqueeze`` and ``Squeeze``.
* ``Resize``, ``LRN``, ``Gelu`` / ``Erf``, ``LayerNormalization`` (decomposed).
* ``ReduceMax`` / ``ReduceMin`` / ``ReduceSum`` / ``ReduceProd`` with constant axes
  (attribute or, from opset 13/18, input 1) and ``ArgMax`` / ``ArgMin``
  (``select_last_index=0`` only).
"""

from __future__ import annotations

import math

import numpy as np
import onnx

import microlith.frontend.importers_nn  # noqa: F401  (first: Conv / pools are wrapped here)
import microlith.frontend.importers_tensor  # noqa: F401  (first: its Div is replaced here)
from microlith.frontend.context import IMPORTERS, Attrs, ImportContext, importer, node_attrs
from microlith.ir.core import Value
from microlith.ir.types import TensorType

Result = tuple[str, list[Value | None], Attrs]


@importer("Div")
def _div(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    if len(node.input) != 2:
        raise ctx.fail(node, f"expects exactly 2 inputs, got {len(node.input)}")
    a, b = ctx.required(node, 0, "A"), ctx.required(node, 1, "B")
    data = b.data
    if data is not None and a.dtype.is_float and data.dtype.kind == "f" and data.size \
            and np.all(data != 0) and np.all(np.isfinite(data)):
        reciprocal = (np.float64(1.0) / data.astype(np.float64)).astype(data.dtype)
        if np.all(np.isfinite(reciprocal)):
            constant = ctx.graph.add_constant(reciprocal, f"{node.name}_reciprocal")
            return "Mul", [a, constant], {}
    return "Div", [a, b], {}


@importer("Pow")
def _pow(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    x = ctx.required(node, 0, "X")
    exponent = ctx.const(node, 1, "exponent")
    if exponent is None:
        raise ctx.fail(node, "input 1 (exponent) is missing")
    if exponent.size != 1:
        raise ctx.fail(node, f"the exponent must be a scalar, got shape {list(exponent.shape)}")
    value = float(exponent.reshape(-1)[0])
    if value == 2.0:
        return "Mul", [x, x], {}
    if value == 0.5:
        return "Sqrt", [x], {}
    if value == 1.0:
        return "Identity", [x], {}
    raise ctx.fail(node, f"exponent {value} is not supported (only 2, 0.5 and 1)")


@importer("Elu")
def _elu(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Elu", ctx.inputs(node), {"alpha": ctx.finite(node, node_attrs(node), "alpha", 1.0)}


def _split_sizes(ctx: ImportContext, node: onnx.NodeProto, dim: int) -> list[int]:
    attrs = node_attrs(node)
    count = len(node.output)
    split = ctx.const(node, 1, "split")
    sizes = [int(s) for s in split.reshape(-1)] if split is not None else (
        [int(s) for s in attrs["split"]] if "split" in attrs else None)
    if sizes is None:
        parts = int(attrs.get("num_outputs", count))
        if parts != count or parts <= 0:
            raise ctx.fail(node, f"num_outputs={parts} but the node has {count} outputs")
        chunk = -(-dim // parts)  # opset 18: the last chunk may be smaller
        sizes = [min(chunk, dim - k * chunk) for k in range(parts)]
    if len(sizes) != count or any(s < 0 for s in sizes) or sum(sizes) != dim:
        raise ctx.fail(node, f"split sizes {sizes} do not divide a dimension of {dim} into "
                             f"{count} outputs")
    if any(s == 0 for s in sizes):
        raise ctx.fail(node, f"split sizes {sizes} ask for an empty output")
    return sizes


@importer("Split")
def _split(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    x = ctx.required(node, 0, "input")
    rank = x.type.rank
    axis = int(node_attrs(node).get("axis", 0))
    if not -rank <= axis < rank:
        raise ctx.fail(node, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    sizes = _split_sizes(ctx, node, x.shape[axis])
    starts = np.cumsum([0, *sizes[:-1]])
    slices: list[list[Value | None]] = []
    for k, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        bounds = (("start", start), ("end", start + size), ("axis", axis))
        inputs: list[Value | None] = [x, *(ctx.graph.add_constant(
            np.array([v], np.int64), f"{node.name}_{what}{k}") for what, v in bounds)]
        slices.append(inputs)
    for k in range(1, len(sizes)):
        if not node.output[k]:
            continue
        shape = list(x.shape)
        shape[axis] = sizes[k]
        created = ctx.graph.add_node("Slice", slices[k], {}, name=f"{node.name}_{k}",
                                     output_types=[TensorType(x.dtype, tuple(shape))],
                                     output_names=[node.output[k]])
        created.meta["onnx_op"] = "Split"
        ctx.values[node.output[k]] = created.output
    return "Slice", slices[0], {}


def _reduce_axes(ctx: ImportContext, node: onnx.NodeProto) -> tuple[int, ...] | None:
    attrs = node_attrs(node)
    axes = attrs.get("axes")
    data = ctx.const(node, 1, "axes")
    if data is not None:
        axes = tuple(int(a) for a in data.reshape(-1))
    return None if axes is None or len(axes) == 0 else tuple(int(a) for a in axes)


@importer("ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd")
def _reduce(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    axes = _reduce_axes(ctx, node)
    if axes is None and int(attrs.get("noop_with_empty_axes", 0)):
        return "Identity", ctx.inputs(node)[:1], {}
    return node.op_type, ctx.inputs(node)[:1], {"axes": axes,
                                                "keepdims": int(attrs.get("keepdims", 1))}


@importer("ArgMax", "ArgMin")
def _arg(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    if int(attrs.get("select_last_index", 0)):
        raise ctx.fail(node, "select_last_index=1 is not supported")
    return node.op_type, ctx.inputs(node), {"axis": int(attrs.get("axis", 0)),
                                            "keepdims": int(attrs.get("keepdims", 1))}


@importer("Resize")
def _resize(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """Opset 11+ ``Resize`` of a 4-D NCHW input over H and W only (constant scales or
    sizes); ``cubic``, ``tf_crop_and_resize``, ``antialias`` and ``axes`` are refused."""
    from microlith.ops.resize import COORDINATE_MODES, NEAREST_MODES

    attrs = node_attrs(node)
    x = ctx.required(node, 0, "X")
    mode = str(attrs.get("mode", "nearest"))
    coord = str(attrs.get("coordinate_transformation_mode", "half_pixel"))
    nearest = str(attrs.get("nearest_mode", "round_prefer_floor"))
    if mode not in ("nearest", "linear"):
        raise ctx.fail(node, f"mode {mode!r} is not supported (nearest, linear)")
    if coord not in COORDINATE_MODES:
        raise ctx.fail(node, f"coordinate_transformation_mode {coord!r} is not supported")
    if mode == "nearest" and nearest not in NEAREST_MODES:
        raise ctx.fail(node, f"nearest_mode {nearest!r} is not supported")
    if int(attrs.get("antialias", 0)) or "axes" in attrs or \
            str(attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
        raise ctx.fail(node, "antialias, axes and keep_aspect_ratio_policy are not supported")
    if x.type.rank != 4:
        raise ctx.fail(node, f"only a 4-D (NCHW) input is supported, got {list(x.shape)}")
    scales = ctx.const(node, 2, "scales")
    sizes = ctx.const(node, 3, "sizes")
    if sizes is not None and sizes.size:
        out = [int(v) for v in sizes.reshape(-1)]
        factors = [o / i for o, i in zip(out, x.shape, strict=True)]
    elif scales is not None and scales.size:
        factors = [float(v) for v in scales.reshape(-1)]
        out = [int(math.floor(i * f)) for i, f in zip(x.shape, factors, strict=True)]
    else:
        raise ctx.fail(node, "needs constant scales or sizes")
    if len(out) != 4 or out[:2] != list(x.shape[:2]) or min(out) <= 0:
        raise ctx.fail(node, f"only H and W may change size (output {out}, input "
                             f"{list(x.shape)})")
    return "Resize", [x], {"mode": mode, "coordinate_transformation_mode": coord,
                           "nearest_mode": nearest, "size": (out[2], out[3]),
                           "scales": (factors[2], factors[3])}


@importer("LRN")
def _lrn(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    if "size" not in attrs:
        raise ctx.fail(node, "attribute size is required")
    size = ctx.ints(node, attrs, "size", (1,), 1, minimum=1)[0]
    return "LRN", ctx.inputs(node), {
        "size": size, "alpha": ctx.finite(node, attrs, "alpha", 1e-4),
        "beta": ctx.finite(node, attrs, "beta", 0.75), "bias": ctx.finite(node, attrs, "bias", 1.0)}


@importer("Gelu")
def _gelu(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    approximate = str(node_attrs(node).get("approximate", "none"))
    if approximate not in ("none", "tanh"):
        raise ctx.fail(node, f"approximate={approximate!r} is not 'none' or 'tanh'")
    return "Gelu", ctx.inputs(node), {"approximate": approximate}


@importer("Erf")
def _erf(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Erf", ctx.inputs(node), {}


@importer("LayerNormalization")
def _layer_norm(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """``(x - mean) / sqrt(var + epsilon) * scale + B`` over the axes from ``axis`` on,
    decomposed into ReduceMean / Sub / Mul / Add / Rsqrt / Mul nodes (TFLite has no
    layer-norm builtin; every piece has an int8 TFLite-Micro kernel, RSQRT included).
    Mean / InvStdDev outputs that are used are refused."""
    if any(name for name in node.output[1:]):
        raise ctx.fail(node, "the Mean / InvStdDev outputs are not supported")
    attrs = node_attrs(node)
    x, scale = ctx.required(node, 0, "X"), ctx.required(node, 1, "Scale")
    bias = ctx.value(node.input[2]) if len(node.input) > 2 else None
    rank = x.type.rank
    axis = int(attrs.get("axis", -1))
    if not -rank <= axis < rank:
        raise ctx.fail(node, f"axis {axis} is out of range for rank {rank}")
    axes = tuple(range(axis % rank, rank))
    eps = ctx.finite(node, attrs, "epsilon", 1e-5)
    graph, base = ctx.graph, node.name

    def add(op: str, inputs: list[Value | None], suffix: str, **extra: object) -> Value:
        created = graph.add_node(op, inputs, dict(extra), name=f"{base}/{suffix}",
                                 output_names=[f"{base}/{suffix}"])
        created.meta["onnx_op"] = "LayerNormalization"
        return created.output

    mean = add("ReduceMean", [x], "mean", axes=axes, keepdims=1)
    centered = add("Sub", [x, mean], "centered")
    variance = add("ReduceMean", [add("Mul", [centered, centered], "square")], "variance",
                   axes=axes, keepdims=1)
    epsilon = graph.add_constant(np.array(eps, np.float32), f"{base}/epsilon")
    inv_deviation = add("Rsqrt", [add("Add", [variance, epsilon], "variance_eps")],
                        "inv_deviation")
    normalized = add("Mul", [centered, inv_deviation], "normalized")
    if bias is None:
        return "Mul", [normalized, scale], {}
    return "Add", [add("Mul", [normalized, scale], "scaled"), bias], {}


# ---- 1-D convolution and pooling as 2-D with H = 1 --------------------------------------------
_SPATIAL_1D = ("Conv", "ConvTranspose", "MaxPool", "AveragePool")
_AS_2D = {op: IMPORTERS[op] for op in _SPATIAL_1D}  # the 2-D importers (importers_nn)


def _widen(attrs: Attrs) -> list[onnx.AttributeProto]:
    """1-D attributes as 2-D ones over (1, L): ``pads [b, e]`` -> ``[0, b, 0, e]``."""
    out = []
    for name, value in attrs.items():
        if name in ("kernel_shape", "strides", "dilations", "output_padding"):
            value = [0 if name == "output_padding" else 1, *value]
        elif name == "pads" and len(value) == 2:
            value = [0, value[0], 0, value[1]]
        out.append(onnx.helper.make_attribute(name, value))
    return out


def _spatial(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """A 3-D ``[N, C, L]`` input runs the 2-D op on ``Unsqueeze(x, 2)`` (weights
    ``[O, I, 1, K]``), then ``Squeeze(., 2)``; 4-D inputs go to the 2-D importer."""
    x = ctx.required(node, 0, "X")
    if x.type.rank != 3:
        return _AS_2D[node.op_type](ctx, node)
    graph, base = ctx.graph, node.name
    wide = graph.add_node("Unsqueeze", [x], {"axes": (2,)}, name=f"{base}/as_2d",
                          output_names=[f"{base}/as_2d"])
    ctx.values[wide.output.name] = wide.output
    inputs = [wide.output.name, *node.input[1:]]
    if len(node.input) > 1 and node.input[1]:
        w = ctx.required(node, 1, "W")
        if w.data is None or w.type.rank != 3:
            raise ctx.fail(node, "a 1-D convolution needs constant 3-D weights")
        w2 = graph.add_constant(np.ascontiguousarray(w.data[:, :, None, :]), f"{w.name}_2d")
        ctx.values[w2.name] = w2
        inputs[1] = w2.name
    proto = onnx.helper.make_node(node.op_type, inputs, [f"{base}/2d"], name=f"{base}/2d")
    proto.attribute.extend(_widen(node_attrs(node)))
    op, args, attrs = _AS_2D[node.op_type](ctx, proto)
    created = graph.add_node(op, args, attrs, name=f"{base}/2d", output_names=[f"{base}/2d"])
    created.meta["onnx_op"] = node.op_type
    return "Squeeze", [created.output], {"axes": (2,)}


for _op in _SPATIAL_1D:
    importer(_op)(_spatial)
