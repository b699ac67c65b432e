"""Importers for elementwise, reduction and tensor-shuffling ops.

Constant operand inputs that the IR keeps as attributes are read here:
Clip min/max, Squeeze/Unsqueeze axes, ReduceMean axes, Pad pads/value.
``Dropout`` (inference) and ``Identity`` become ``Identity``.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from microlith.frontend.context import ONNX_DTYPES, Attrs, ImportContext, importer, node_attrs
from microlith.ir.core import Value
from microlith.ir.types import DType

Result = tuple[str, list[Value | None], Attrs]


@importer("Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu")
def _binary(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    if len(node.input) != 2:
        raise ctx.fail(node, f"expects exactly 2 inputs, got {len(node.input)}")
    return node.op_type, ctx.inputs(node), {}


@importer("Relu", "Sigmoid", "Tanh", "HardSwish", "Exp", "Sqrt", "Neg", "Abs", "Identity")
def _unary(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return node.op_type, ctx.inputs(node), {}


@importer("Dropout")
def _dropout(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    if len(node.output) > 1 and node.output[1]:
        raise ctx.fail(node, "the mask output of Dropout is not supported")
    return "Identity", ctx.inputs(node)[:1], {}


@importer("LeakyRelu")
def _leaky(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "LeakyRelu", ctx.inputs(node), {"alpha": ctx.finite(node, node_attrs(node), "alpha",
                                                                0.01)}


@importer("HardSigmoid")
def _hard_sigmoid(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    return "HardSigmoid", ctx.inputs(node), {"alpha": ctx.finite(node, attrs, "alpha", 0.2),
                                              "beta": ctx.finite(node, attrs, "beta", 0.5)}


def _clip_bound(ctx: ImportContext, node: onnx.NodeProto, index: int, what: str,
                default: float) -> float:
    """A scalar bound; NaN is refused, +-inf is kept (``max=-inf`` makes every output -inf)."""
    data = ctx.const(node, index, what)
    if data is None:
        return default
    if data.size != 1:
        raise ctx.fail(node, f"{what} must be a scalar, got shape {list(data.shape)}")
    value = float(data.reshape(-1)[0])
    if math.isnan(value):
        raise ctx.fail(node, f"{what} is NaN")
    return value


@importer("Clip")
def _clip(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Clip", ctx.inputs(node)[:1], {"min": _clip_bound(ctx, node, 1, "min", -math.inf),
                                           "max": _clip_bound(ctx, node, 2, "max", math.inf)}


@importer("Softmax")
def _softmax(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Softmax", ctx.inputs(node), {"axis": int(node_attrs(node).get("axis", -1))}


@importer("ReduceMean")
def _reduce_mean(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    axes = attrs.get("axes")
    data = ctx.const(node, 1, "axes")
    if data is not None:
        axes = tuple(int(a) for a in data.reshape(-1))
    if axes is not None and len(axes) == 0:
        axes = None
    if axes is None and int(attrs.get("noop_with_empty_axes", 0)):
        return "Identity", ctx.inputs(node)[:1], {}
    return "ReduceMean", ctx.inputs(node)[:1], {
        "axes": None if axes is None else tuple(int(a) for a in axes),
        "keepdims": int(attrs.get("keepdims", 1))}


@importer("Flatten")
def _flatten(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Flatten", ctx.inputs(node), {"axis": int(node_attrs(node).get("axis", 1))}


@importer("Reshape")
def _reshape(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """``allowzero=1`` differs from the default only where the shape holds a 0: there it
    asks for a zero-size dimension (refused: an empty tensor computes nothing) instead of
    copying the input's dimension. A 0 in the shape shows as a 0 in the output's shape,
    so a shape that is constant only after ``fold-constants`` is checked through ONNX's
    inferred output type; without 0 the node is a plain Reshape."""
    if int(node_attrs(node).get("allowzero", 0)):
        spec = ctx.const_or_none(node, 1)
        if spec is not None:
            zero = 0 in [int(d) for d in spec.reshape(-1)]
        else:
            inferred = ctx.onnx_types.get(node.output[0])
            dims = None if inferred is None or not inferred.tensor_type.HasField("shape") \
                else list(inferred.tensor_type.shape.dim)
            if dims is None or not all(d.HasField("dim_value") for d in dims):
                raise ctx.fail(node, "allowzero=1 with a shape that is not static: cannot "
                                     "tell whether it asks for a zero-size dimension")
            zero = any(d.dim_value == 0 for d in dims)
        if zero:
            raise ctx.fail(node, "allowzero=1 with a 0 in the shape asks for a zero-size "
                                 "dimension (an empty tensor); not supported")
    return "Reshape", ctx.inputs(node), {}


@importer("Squeeze", "Unsqueeze")
def _squeeze(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    data = ctx.const(node, 1, "axes")
    axes = node_attrs(node).get("axes") if data is None else data.reshape(-1).tolist()
    if node.op_type == "Unsqueeze" and axes is None:
        raise ctx.fail(node, "axes are required")
    return node.op_type, ctx.inputs(node)[:1], {
        "axes": None if axes is None else tuple(int(a) for a in axes)}


@importer("Transpose")
def _transpose(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    perm = node_attrs(node).get("perm")
    return "Transpose", ctx.inputs(node), {
        "perm": None if perm is None else tuple(int(p) for p in perm)}


@importer("Concat")
def _concat(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "Concat", ctx.inputs(node), {"axis": int(node_attrs(node)["axis"])}


@importer("Pad")
def _pad(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    mode = attrs.get("mode", "constant")
    if mode != "constant":
        raise ctx.fail(node, f"pad mode {mode!r} is not supported (only 'constant')")
    pads = ctx.const(node, 1, "pads")
    if pads is None:
        raise ctx.fail(node, "pads are required")
    value = ctx.const(node, 2, "constant_value")
    axes = ctx.const(node, 3, "axes")
    x = ctx.values[node.input[0]]
    pads_list = [int(p) for p in pads.reshape(-1)]
    rank = x.type.rank
    if axes is not None:
        axes_list = [int(a) for a in axes.reshape(-1)]
        if len(pads_list) != 2 * len(axes_list) or any(not -rank <= a < rank
                                                         for a in axes_list):
            raise ctx.fail(node, f"pads {pads_list} and axes {axes_list} do not fit an input "
                                 f"of rank {rank}")
        full = [0] * (2 * rank)
        for i, axis in enumerate(a % rank for a in axes_list):
            full[axis], full[axis + rank] = pads_list[i], pads_list[i + len(axes_list)]
        pads_list = full
    if len(pads_list) != 2 * rank:
        raise ctx.fail(node, f"{len(pads_list)} pads do not fit an input of rank {rank}")
    if any(p < 0 for p in pads_list):
        raise ctx.fail(node, "negative pads (cropping) are not supported")
    return "Pad", ctx.inputs(node)[:1], {
        "pads": tuple(pads_list), "value": 0.0 if value is None else float(value.reshape(-1)[0]),
        "mode": "constant"}


@importer("Shape")
def _shape(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    return "Shape", ctx.inputs(node), {"start": int(attrs.get("start", 0)),
                                       "end": attrs.get("end")}


@importer("Gather")
def _gather(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """Constant indices must lie in ``[-n, n - 1]`` for the gathered axis of size ``n``."""
    axis = int(node_attrs(node).get("axis", 0))
    x, indices = ctx.required(node, 0, "data"), ctx.required(node, 1, "indices").data
    if -x.type.rank <= axis < x.type.rank and indices is not None and indices.size:
        size = x.shape[axis]
        low, high = int(indices.min()), int(indices.max())
        if low < -size or high >= size:
            bad = low if low < -size else high
            raise ctx.fail(node, f"index {bad} is out of range for axis {axis} of size {size}")
    return "Gather", ctx.inputs(node), {"axis": axis}


@importer("Cast")
def _cast(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    to = int(node_attrs(node)["to"])
    if to not in ONNX_DTYPES:
        raise ctx.fail(node, f"cast to {onnx.TensorProto.DataType.Name(to)} is not supported")
    return "Cast", ctx.inputs(node), {"to": ONNX_DTYPES[to].value}


@importer("Slice")
def _slice(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    for index, what in [(1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")]:
        ctx.const(node, index, what)
    return "Slice", ctx.inputs(node), {}


@importer("Gemm")
def _gemm(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    attrs = node_attrs(node)
    return "Gemm", ctx.inputs(node), {
        "alpha": ctx.finite(node, attrs, "alpha", 1.0), "beta": ctx.finite(node, attrs, "beta",
                                                                              1.0),
        "transA": int(attrs.get("transA", 0)), "transB": int(attrs.get("transB", 0))}


@importer("MatMul")
def _matmul(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    return "MatMul", ctx.inputs(node), {}


@importer("ConstantOfShape")
def _constant_of_shape(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """The one-element ``value`` tensor becomes a scalar ``value`` and its ``dtype``."""
    value = node_attrs(node).get("value")
    array = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value)
    if array.size != 1:
        raise ctx.fail(node, f"value must hold one element, got {array.size}")
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    if array.dtype.kind not in "fiub":
        raise ctx.fail(node, f"value of type {array.dtype} is not supported")
    scalar = array.reshape(-1)[0].item()
    return "ConstantOfShape", ctx.inputs(node), {
        "value": scalar, "dtype": DType.from_numpy(array.dtype).value}


@importer("Expand")
def _expand(ctx: ImportContext, node: onnx.NodeProto) -> Result:
    """An Expand whose output has its input's shape (ONNX's inferred type says so, or the
    shape is constant) is the identity."""
    x = ctx.required(node, 0, "input")
    inferred = ctx.onnx_types.get(node.output[0])
    dims = None
    if inferred is not None and inferred.tensor_type.HasField("shape"):
        raw = list(inferred.tensor_type.shape.dim)
        if all(d.HasField("dim_value") for d in raw):
            dims = tuple(int(d.dim_value) for d in raw)
    if dims == x.shape and not x.is_constant:
        return "Identity", [x], {}
    return "Expand", ctx.inputs(node), {}
