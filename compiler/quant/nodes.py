"""Reading quantization parameters off IR nodes (as TFLite-Micro reads the flatbuffer)."""

from __future__ import annotations

from microlith.ir.core import Node, Value
from microlith.ir.ops import get_op
from microlith.ir.types import QuantParams
from microlith.quant.arith import f32


def qparams(value: Value | None) -> QuantParams:
    if value is None or value.quant is None:
        raise ValueError(f"value {getattr(value, 'name', None)!r} is not quantized")
    return value.quant


def tensor_q(value: Value | None) -> tuple[float, int]:
    """``(scale as stored in float32, zero point)`` of a per-tensor quantized value."""
    q = qparams(value)
    if q.axis is not None and len(q.scale) != 1:
        raise ValueError(f"{getattr(value, 'name', None)!r} is quantized per axis; the kernel "
                         "needs per tensor")
    return float(f32(q.scale[0])), int(q.zero_point[0])


def activation(node: Node) -> str:
    """The node's fused activation (``NONE`` when the op has none)."""
    attr = get_op(node.op).activation_attr
    return "NONE" if attr is None else str(node.attr(attr, "NONE"))
