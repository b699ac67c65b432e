"""Quantize / dequantize: ONNX-level ``QuantizeLinear`` / ``DequantizeLinear`` (as
``insert-qdq`` writes them: the parameters live in the value types, not in inputs) and
TFLite's ``tfl.quantize`` / ``tfl.dequantize``.

``QuantizeLinear(x)``: float (or integer, for requantization) -> an integer value whose
type carries the target ``QuantParams``: ``q = clamp(round(x / s) + zp)``;
``DequantizeLinear(q)``: ``x = s (q - zp)`` with ``s, zp`` from ``q``'s type. The
interpreter runs them with the integer-exact kernels of ``microlith.quant`` (there is no
float approximation); the float kernel only widens a float16 input (the float16 weight
form: DEQUANTIZE float16 -> float32 is a float op).
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Layout, ShapeError, define_op
from microlith.ir.types import DType, TensorType
from microlith.ops.common import define_tfl, need


def _quantize_infer(node: Node) -> list[TensorType]:
    x = node.input(0)
    if x is None:
        raise ShapeError("input 0 is required")
    quant = node.outputs[0].quant if node.outputs else None
    dtype = DType(node.attr("to", "i8")) if "to" in node.attrs or not node.outputs else \
        node.outputs[0].dtype
    return [TensorType(dtype, x.shape, quant)]


def _dequantize_infer(node: Node) -> list[TensorType]:
    q = node.input(0)
    if q is None:
        raise ShapeError("input 0 is required")
    if q.quant is None and q.dtype != DType.FLOAT16:
        raise ShapeError(f"input {q.name!r} has no quantization parameters")
    return [TensorType(DType.FLOAT32, q.shape)]


def _widen(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """DEQUANTIZE of a float16 tensor (the float16 weight form): exact widening."""
    return [np.asarray(need(inputs, 0)).astype(np.float32)]


define_op("QuantizeLinear", "q = clamp(round(x / scale) + zero_point); params on the output",
          infer=_quantize_infer, attrs={"to": "i8"}, layout=Layout.ELEMENTWISE)
define_op("DequantizeLinear", "x = scale * (q - zero_point); params on the input "
          "(float16 -> float32 for a float16 input)",
          infer=_dequantize_infer, layout=Layout.ELEMENTWISE, kernel=_widen)
define_tfl("QUANTIZE", "float -> integer, or integer -> integer (requantize)",
           infer=_quantize_infer)
define_tfl("DEQUANTIZE", "integer -> float, or float16 -> float32", infer=_dequantize_infer,
           kernel=_widen)
