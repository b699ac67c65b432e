"""Quantize / dequantize ops. Their quantization lives in the value types, not in inputs.

``QuantizeLinear(x)``: float (or integer, for requantization) -> integer value whose
type carries the target ``QuantParams``: ``q = clamp(round(x / s) + zp)``.
``DequantizeLinear(q)``: ``x = s * (q - zp)`` with ``s, zp`` from ``q``'s type.
"""

from __future__ import annotations

from microlith.ir.core import Node
from microlith.ir.ops import ShapeError, register_op
from microlith.ir.types import DType, TensorType


@register_op("QuantizeLinear", "q = clamp(round(x / scale) + zero_point); params on the output",
             attrs={"to": "i8"})
def _quantize(node: Node) -> list[TensorType]:
    x = node.inputs[0]
    if x is None:
        raise ShapeError("input 0 is required")
    quant = node.outputs[0].quant if node.outputs else None
    return [TensorType(DType(node.attr("to", "i8")), x.shape, quant)]


@register_op("DequantizeLinear", "x = scale * (q - zero_point); params on the input")
def _dequantize(node: Node) -> list[TensorType]:
    q = node.inputs[0]
    if q is None:
        raise ShapeError("input 0 is required")
    if q.quant is None:
        raise ShapeError(f"input {q.name!r} has no quantization parameters")
    return [TensorType(DType.FLOAT32, q.shape)]
