"""Importers for onnxruntime's QOperator format (``QuantFormat.QOperator``).

Each quantized operator is imported as the Q/DQ form it stands for, so one path
(``import-qdq``, ``insert-qdq``, ``fuse-requantize``) handles both formats:
``QLinearConv(x, sx, zx, w, sw, zw, sy, zy, B)`` becomes
``DQ(x) , DQ(w) , DQ(B) -> Conv -> Q(sy, zy)``, where the int32 bias ``B`` has scale
``sx * sw[c]`` and zero point 0 (as the operator defines it). Operand pairs ``(s, z)``
of activations must match the producer's ``QuantizeLinear`` (the frontend's Q/DQ check).

* ai.onnx: QLinearConv -> Conv, QLinearMatMul -> MatMul;
* com.microsoft: QGemm -> Gemm, QLinearAdd -> Add, QLinearMul -> Mul,
  QLinearAveragePool -> AveragePool, QLinearGlobalAveragePool -> GlobalAveragePool,
  QLinearSigmoid -> Sigmoid, QLinearSoftmax -> Softmax, QLinearLeakyRelu -> LeakyRelu,
  QLinearConcat -> Concat.

onnxruntime runs data-movement ops (MaxPool, Flatten, Reshape, Transpose, ...) directly
on the quantized tensors; ``PASSTHROUGH`` ops whose input is such a tensor become
``DQ -> op -> Q`` with the input's parameters. ``channels_last=1`` pools and QGemm
without an output scale (a float output) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper

from microlith.frontend.context import ImportContext, node_attrs
from microlith.frontend.importers_qdq import (
    QUANTIZED_OPS,
    VALUE_IMPORTERS,
    import_dequantize,
    import_quantize,
)
from microlith.ir.core import Value
from microlith.ir.types import DType, QuantParams, TensorType

MS = "com.microsoft"
#: op -> (domain, float op, operand triples (data, scale, zero point), output (scale, zp))
SPECS: dict[str, tuple[str, str, tuple[tuple[int, int, int], ...], tuple[int, int]]] = {
    "QLinearConv": ("", "Conv", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMatMul": ("", "MatMul", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QGemm": (MS, "Gemm", ((0, 1, 2), (3, 4, 5)), (7, 8)),
    "QLinearAdd": (MS, "Add", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMul": (MS, "Mul", ((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearAveragePool": (MS, "AveragePool", ((0, 1, 2),), (3, 4)),
    "QLinearGlobalAveragePool": (MS, "GlobalAveragePool", ((0, 1, 2),), (3, 4)),
    "QLinearSigmoid": (MS, "Sigmoid", ((0, 1, 2),), (3, 4)),
    "QLinearSoftmax": (MS, "Softmax", ((0, 1, 2),), (3, 4)),
    "QLinearLeakyRelu": (MS, "LeakyRelu", ((0, 1, 2),), (3, 4)),
    "QLinearConcat": (MS, "Concat", (), (0, 1)),
}
#: bias input and the operand triples whose scales multiply into its scale
_BIAS = {"QLinearConv": 8, "QGemm": 6}
_DROPPED_ATTRS = {"channels_last", "opset", "beta"}
PASSTHROUGH = ("MaxPool", "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Squeeze",
               "Unsqueeze", "Identity")


def qoperator_ops() -> list[str]:
    """The names ``check_supported`` knows them by (``domain::op`` outside ONNX's domain)."""
    return [op if domain == "" else f"{domain}::{op}" for op, (domain, *_) in SPECS.items()]


QOPERATOR_OPS = qoperator_ops()


def _weight_axis(node: onnx.NodeProto, rank: int) -> int:
    if node.op_type == "QGemm":
        trans_b = int(node_attrs(node).get("transB", 0))
        return 0 if trans_b else 1
    if node.op_type == "QLinearMatMul":
        return rank - 1
    return 0


def _fresh(ctx: ImportContext, base: str) -> str:
    name, k = base, 0
    while name in ctx.values:
        k += 1
        name = f"{base}_{k}"
    return name


def _dequantized(ctx: ImportContext, node: onnx.NodeProto, triple: Sequence[int], role: str
                 ) -> str:
    data, scale, zp = (node.input[i] if i < len(node.input) else "" for i in triple)
    value = ctx.values[data]
    fake = helper.make_node("DequantizeLinear", [data, scale, zp], [_fresh(ctx, data + "_dq")],
                            name=f"{node.name}:{role}")
    if value.is_constant and value.type.rank > 0:
        fake.attribute.append(helper.make_attribute("axis", _weight_axis(node, value.type.rank)))
    ctx.values[fake.output[0]] = import_dequantize(ctx, fake)
    return fake.output[0]


def _bias(ctx: ImportContext, node: onnx.NodeProto, index: int) -> str:
    """The int32 bias as ``DQ`` with scale ``s_x * s_w`` (per channel with the weights)."""
    bias = ctx.values[node.input[index]]
    data = bias.data
    if data is None or np.asarray(data).dtype != np.int32:
        raise ctx.fail(node, f"bias {node.input[index]!r} must be an int32 constant")
    x_scale = ctx.const(node, 1, "the input scale")
    w_scale = ctx.const(node, 4, "the weight scale")
    assert x_scale is not None and w_scale is not None
    scales = (np.float32(np.asarray(x_scale).reshape(-1)[0]) *
              np.asarray(w_scale, np.float32).reshape(-1)).astype(np.float32)
    n = int(np.asarray(data).size)
    if scales.size not in (1, n) or np.any(~np.isfinite(scales)) or np.any(scales <= 0):
        raise ctx.fail(node, f"bias scale s_x * s_w is unusable ({scales.size} scales for "
                             f"{n} biases)")
    if scales.size == 1 and n > 1:
        scales = np.full(n, scales[0], np.float32)
    if n > 1:
        qp = QuantParams(tuple(float(s) for s in scales), (0,) * n, 0)
    else:
        qp = QuantParams((float(scales[0]),), (0,))
    source = ctx.graph.add_constant(np.asarray(data), bias.name + "_q", quant=qp)
    created = ctx.graph.add_node("DequantizeLinear", [source], name=f"{node.name}:bias",
                                 output_types=[TensorType(DType.FLOAT32, source.shape)],
                                 output_names=[_fresh(ctx, bias.name + "_dq")])
    created.meta["onnx_op"] = "DequantizeLinear"
    ctx.values[created.output.name] = created.output
    return created.output.name


def _import_qoperator(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    _, float_op, triples, (ys, yz) = SPECS[node.op_type]
    attrs = {k: v for k, v in node_attrs(node).items() if k not in _DROPPED_ATTRS}
    if int(node_attrs(node).get("channels_last", 0)):
        raise ctx.fail(node, "channels_last=1 is not supported")
    if node.op_type == "QLinearConcat":
        triples = tuple((i, i + 1, i + 2) for i in range(2, len(node.input), 3))
    inputs = [_dequantized(ctx, node, t, f"in{k}") for k, t in enumerate(triples)]
    bias = _BIAS.get(node.op_type)
    if bias is not None and bias < len(node.input) and node.input[bias]:
        inputs.append(_bias(ctx, node, bias))
    if node.op_type == "QGemm":
        if ys >= len(node.input) or not node.input[ys]:
            raise ctx.fail(node, "QGemm without an output scale (a float output) is not "
                                 "supported")
        attrs["beta"] = 1.0
    fake = helper.make_node(float_op, inputs, [_fresh(ctx, node.output[0] + "_float")],
                            name=node.name + ":float", **attrs)
    assert ctx.import_node is not None, "set by onnx_import"
    ctx.values[fake.output[0]] = ctx.import_node(ctx, fake)
    q = helper.make_node("QuantizeLinear", [fake.output[0], node.input[ys],
                                            node.input[yz] if yz < len(node.input) else ""],
                         [node.output[0]], name=node.name)
    return import_quantize(ctx, q)


for _op in SPECS:
    VALUE_IMPORTERS[_op] = _import_qoperator
    QUANTIZED_OPS.add(_op)


def integer_inputs(ctx: ImportContext, node: onnx.NodeProto) -> bool:
    """Input 0 is an int8 activation produced by a QuantizeLinear (onnxruntime runs data
    movement directly on quantized tensors in QOperator models)."""
    value = ctx.values.get(node.input[0]) if node.input else None
    return value is not None and not value.is_constant and value.dtype == DType.INT8 and \
        value.producer is not None and value.producer.op == "QuantizeLinear"


def import_on_integers(ctx: ImportContext, node: onnx.NodeProto) -> Value:
    """``DQ -> op -> Q`` with the input's parameters around a data-movement op."""
    source = ctx.values[node.input[0]]
    assert source.quant is not None and source.producer is not None
    dq = ctx.graph.add_node("DequantizeLinear", [source], name=node.name + ":dq",
                            output_types=[TensorType(DType.FLOAT32, source.shape)],
                            output_names=[_fresh(ctx, source.name + "_dq")])
    dq.meta["onnx_op"] = "DequantizeLinear"
    ctx.values[dq.output.name] = dq.output
    fake = helper.make_node(node.op_type, [dq.output.name, *node.input[1:]],
                            [_fresh(ctx, node.output[0] + "_float")], name=node.name + ":float")
    fake.attribute.extend(node.attribute)
    assert ctx.import_node is not None, "set by onnx_import"
    out = ctx.import_node(ctx, fake)
    ctx.values[fake.output[0]] = out
    q = ctx.graph.add_node("QuantizeLinear", [out], {"to": "i8"}, name=node.name,
                           output_types=[TensorType(DType.INT8, out.shape, source.quant)],
                           output_names=[node.output[0]])
    q.meta["onnx_op"] = "QuantizeLinear"
    q.meta["onnx_type"] = source.producer.meta.get("onnx_type", "int8")
    return q.output
