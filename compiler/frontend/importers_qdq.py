"""Importers for ONNX ``QuantizeLinear`` / ``DequantizeLinear`` (opset 10-21).

The IR keeps quantization parameters in value types, not as inputs, so these two ops
build their values directly (``VALUE_IMPORTERS``) instead of going through the generic
``(op, inputs, attrs)`` importer:

* ``QuantizeLinear(x, y_scale, y_zero_point)`` on an activation: an IR ``QuantizeLinear``
  whose int8 output type carries ``QuantParams(scale, zero_point)``. Per tensor only
  (TFLite quantizes activations per tensor).
* ``DequantizeLinear(q, x_scale, x_zero_point)`` on a constant: the constant becomes an
  integer constant carrying its parameters (per tensor, or per axis along ``axis``),
  read through an IR ``DequantizeLinear``. int32 constants (biases) need zero point 0.
* ``DequantizeLinear`` on an activation: its input must be the output of a
  ``QuantizeLinear`` with the same scale and zero point (a Q/DQ pair); anything else
  ("DequantizeLinear on an activation with no matching QuantizeLinear") is refused.

uint8 becomes int8 with the zero point shifted by 128 (``q - 128`` for constants), which
is exact: ``s (q - z) = s ((q - 128) - (z - 128))``. Scales must be finite and positive,
zero points of the quantized type; int16/uint16, int4/uint4, float8 and blocked
quantization (``block_size``, opset 21) are refused with a clear error. Scales are kept
as float32, as ONNX stores them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import onnx

from microlith.diagnostics import FrontendError, MicrolithError
from microlith.frontend.context import ImportContext, node_attrs
from microlith.frontend.onnx_checks import MAX_DIM, MAX_TENSOR_BYTES
from microlith.ir.core import Value
from microlith.ir.types import DType, QuantParams, TensorType

ValueImporter = Callable[[ImportContext, onnx.NodeProto], Value]
VALUE_IMPORTERS: dict[str, ValueImporter] = {}
#: op types that make a model a quantized one (``model_quantization``); QOperator ops add theirs
QUANTIZED_OPS: set[str] = {"QuantizeLinear", "DequantizeLinear"}

#: numpy dtype of the quantized data -> (IR dtype, zero-point shift, valid range)
_TYPES: dict[str, tuple[DType, int, tuple[int, int]]] = {
    "int8": (DType.INT8, 0, (-128, 127)),
    "uint8": (DType.INT8, -128, (0, 255)),
}
_ONNX_NAMES: dict[int, str] = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8"}


def _value_importer(op: str) -> Callable[[ValueImporter], ValueImporter]:
    def wrap(fn: ValueImporter) -> ValueImporter:
        VALUE_IMPORTERS[op] = fn
        return fn

    return wrap


def _unsupported_type(ctx: ImportContext, node: onnx.NodeProto, type_name: str) -> FrontendError:
    return ctx.fail(node, f"quantized type {type_name} is not supported (int8 and uint8 are; "
                          f"TFLite int8 models carry no {type_name} tensors here)")


def _params(ctx: ImportContext, node: onnx.NodeProto, data_shape: tuple[int, ...],
            q_type: str, *, weights: bool) -> tuple[QuantParams, int, np.ndarray]:
    """``(IR parameters, zero-point shift, raw zero points)`` from inputs 1 and 2."""
    attrs = node_attrs(node)
    if int(attrs.get("block_size", 0)) != 0:
        raise ctx.fail(node, "blocked quantization (block_size) is not supported")
    scale = ctx.const(node, 1, "the scale")
    if scale is None:
        raise ctx.fail(node, "input 1 (the scale) is missing")
    scale = np.asarray(scale)
    if scale.dtype != np.float32:
        raise ctx.fail(node, f"scale has type {scale.dtype}; only float32 scales are supported")
    zp = ctx.const(node, 2, "the zero point")
    if zp is not None and np.asarray(zp).dtype.name != q_type:
        raise ctx.fail(node, f"zero point has type {np.asarray(zp).dtype}, not the quantized "
                             f"type {q_type}")
    flat = scale.reshape(-1).astype(np.float64)
    if not np.all(np.isfinite(flat)) or np.any(flat <= 0):
        bad = flat[~np.isfinite(flat) | (flat <= 0)][0]
        raise ctx.fail(node, f"scale {bad:g} must be finite and positive")
    zeros = np.zeros(flat.shape, np.int64) if zp is None else np.asarray(zp, np.int64)
    if zeros.size != scale.size:
        raise ctx.fail(node, f"zero point shape {list(zeros.shape)} differs from scale shape "
                             f"{list(scale.shape)}")
    zeros = zeros.reshape(-1)
    shift = 0
    if q_type in _TYPES:
        _, shift, (lo, hi) = _TYPES[q_type]
        if np.any((zeros < lo) | (zeros > hi)):
            raise ctx.fail(node, f"zero point {int(zeros[(zeros < lo) | (zeros > hi)][0])} is "
                                 f"outside {q_type} [{lo}, {hi}]")
    elif q_type == "int32":
        if np.any(zeros != 0):
            raise ctx.fail(node, "an int32 DequantizeLinear needs zero point 0")
    if scale.ndim == 0 or scale.size == 1 and scale.ndim <= 1 and "axis" not in attrs:
        return (QuantParams((float(flat[0]),), (int(zeros[0]) + shift,)), shift, zeros)
    if scale.ndim != 1:
        raise ctx.fail(node, f"scale must be a scalar or 1-D, got shape {list(scale.shape)}")
    rank = len(data_shape)
    axis = int(attrs.get("axis", 1))
    if not -rank <= axis < rank:
        raise ctx.fail(node, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    if data_shape[axis] != scale.size:
        raise ctx.fail(node, f"per-axis scale has {scale.size} entries but axis {axis} of the "
                             f"input has {data_shape[axis]}")
    if not weights:
        if scale.size == 1:
            return (QuantParams((float(flat[0]),), (int(zeros[0]) + shift,)), shift, zeros)
        raise ctx.fail(node, "per-axis quantization of an activation is not supported "
                             "(TFLite quantizes activations per tensor)")
    return (QuantParams(tuple(float(s) for s in flat), tuple(int(z) + shift for z in zeros),
                        axis), shift, zeros)


def _output_type_name(ctx: ImportContext, node: onnx.NodeProto) -> str:
    attrs = node_attrs(node)
    if len(node.input) > 2 and node.input[2]:
        zp = ctx.values[node.input[2]]
        if zp.data is None:
            raise ctx.fail(node, "the zero point must be a constant")
        return str(np.asarray(zp.data).dtype.name)
    if "output_dtype" in attrs and int(attrs["output_dtype"]) != 0:
        code = int(attrs["output_dtype"])
        return _ONNX_NAMES.get(code, onnx.TensorProto.DataType.Name(code).lower())
    return "uint8"


@_value_importer("QuantizeLinear")
def import_quantize(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    x = ctx.required(node, 0, "the input")
    if x.is_constant:
        raise ctx.fail(node, f"QuantizeLinear of constant {x.name!r} is not supported "
                             "(quantize weights offline and use DequantizeLinear)")
    if x.dtype != DType.FLOAT32:
        raise ctx.fail(node, f"input {x.name!r} has type {x.dtype}; float32 is supported")
    q_type = _output_type_name(ctx, node)
    if q_type not in _TYPES:
        raise _unsupported_type(ctx, node, q_type)
    qp, _, _ = _params(ctx, node, x.shape, q_type, weights=False)
    created = ctx.graph.add_node(
        "QuantizeLinear", [x], {"to": "i8"}, name=node.name,
        output_types=[TensorType(DType.INT8, x.shape, qp)], output_names=[node.output[0]])
    created.meta["onnx_op"] = node.op_type
    created.meta["onnx_type"] = q_type
    return created.output


@_value_importer("DequantizeLinear")
def import_dequantize(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    q = ctx.required(node, 0, "the input")
    if q.is_constant:
        data = np.asarray(q.constant)
        q_type = data.dtype.name
        if q_type not in _TYPES and q_type != "int32":
            raise _unsupported_type(ctx, node, q_type)
        qp, shift, _ = _params(ctx, node, tuple(data.shape), q_type, weights=True)
        if q_type == "int32":
            stored = data
        else:
            stored = (data.astype(np.int16) + shift).astype(np.int8)
        source = ctx.graph.add_constant(stored, q.name, quant=qp)
    else:
        producer = q.producer
        if producer is None or producer.op != "QuantizeLinear":
            raise ctx.fail(node, f"DequantizeLinear on activation {q.name!r} with no matching "
                                 f"QuantizeLinear (it is {_origin(ctx, q)})")
        q_type = str(producer.meta.get("onnx_type", "int8"))
        qp, _, _ = _params(ctx, node, q.shape, q_type, weights=False)
        if q.quant != qp:
            raise ctx.fail(node, f"DequantizeLinear on activation {q.name!r} with no matching "
                                 f"QuantizeLinear: its parameters {qp} differ from those of "
                                 f"{producer.name!r} ({q.quant})")
        source = q
    created = ctx.graph.add_node(
        "DequantizeLinear", [source], name=node.name,
        output_types=[TensorType(DType.FLOAT32, source.shape)], output_names=[node.output[0]])
    created.meta["onnx_op"] = node.op_type
    return created.output


def model_quantization(path: str | os.PathLike[str]) -> str | None:
    """How the ONNX file is quantized, read once: ``"weight-only"`` (its only quantization
    is ``DequantizeLinear`` of initializers: int8 weights, float activations, the hybrid
    form tf2onnx writes), ``"qdq"`` (other QuantizeLinear/DequantizeLinear or QOperator
    nodes) or None (a float model, or unreadable: ``load_onnx`` then names the problem)."""
    from microlith.frontend.onnx_loader import read_model

    try:
        model = read_model(path)  # bounded, refuses FIFOs and devices
    except MicrolithError:
        return None
    quantized = [n for n in model.graph.node if n.op_type in QUANTIZED_OPS]
    if not quantized:
        return None
    constants = {t.name for t in model.graph.initializer}
    constants.update(out for n in model.graph.node if n.op_type == "Constant" for out in n.output)
    weight_only = all(n.op_type == "DequantizeLinear" and n.input[0] in constants
                      for n in quantized)
    return "weight-only" if weight_only else "qdq"


@_value_importer("ConstantOfShape")
def import_constant_of_shape(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    """A constant (the legacy torch exporter writes bias zero points this way)."""
    shape = ctx.const(node, 0, "the shape")
    if shape is None:
        raise ctx.fail(node, "input 0 (the shape) is missing")
    dims = [int(d) for d in np.asarray(shape).reshape(-1)]
    attrs = node_attrs(node)
    fill = onnx.numpy_helper.to_array(attrs["value"]) if "value" in attrs else \
        np.zeros(1, np.float32)
    if any(d < 0 or d > MAX_DIM for d in dims) or \
            math.prod(dims) * fill.dtype.itemsize > MAX_TENSOR_BYTES:
        raise ctx.fail(node, f"shape {dims} is negative or too large (at most "
                       f"{MAX_TENSOR_BYTES:,} bytes)")
    return ctx.graph.add_constant(np.full(dims, fill.reshape(-1)[0], fill.dtype), node.output[0])


def cast_alias(ctx: ImportContext, node: onnx.NodeProto) -> Value | None:
    """The input of a ``Cast`` that changes nothing about quantized data (the legacy torch
    exporter puts one between each QuantizeLinear and DequantizeLinear), else None."""
    source = ctx.values.get(node.input[0]) if node.input else None
    to = node_attrs(node).get("to")
    if source is None or not isinstance(to, int):
        return None
    target = onnx.helper.tensor_dtype_to_np_dtype(to).name if to else ""
    if source.is_constant and not source.dtype.is_float and source.dtype.numpy.name == target:
        return source
    producer = source.producer
    if producer is not None and producer.op == "QuantizeLinear" and \
            producer.meta.get("onnx_type") == target:
        return source
    return None


def _origin(ctx: ImportContext, value: Value) -> str:
    if value in ctx.graph.inputs:
        return "a graph input"
    producer = value.producer
    return "unknown" if producer is None else f"the output of {producer.name!r} ({producer.op})"
