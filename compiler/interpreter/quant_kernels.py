"""QuantizeLinear / DequantizeLinear kernels (parameters come from the value types).

Quantize (float input): ``q = clamp(round(x / s) + zp)`` with ``x / s`` computed in
float32 and round-half-away-from-zero, as TFLite's QUANTIZE does. Integer input
(a requantization, e.g. int8 <-> uint8) goes through the real value
``s_in * (q - zp_in)``; the integer interpreter replaces this with the exact
fixed-point kernel. Dequantize: ``x = s * (q - zp)`` in float32.
"""

from __future__ import annotations

import numpy as np

from compiler.interpreter.registry import need, register
from compiler.ir.core import Node
from compiler.quantization import dequantize_array, round_half_away


@register("QuantizeLinear")
def quantize_linear(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    x = need(inputs, 0)
    source, target = node.inputs[0], node.output
    if target.quant is None:
        raise ValueError(f"output {target.name!r} has no quantization parameters")
    if source is not None and source.quant is not None and x.dtype.kind in "iu":
        x = dequantize_array(x, source.quant)
    scale = np.float32(target.quant.scale[0])
    scaled = (x.astype(np.float32) / scale).astype(np.float64)
    info = np.iinfo(target.dtype.numpy)
    q = round_half_away(scaled) + target.quant.zero_point[0]
    return [np.clip(q, info.min, info.max).astype(target.dtype.numpy)]


@register("DequantizeLinear")
def dequantize_linear(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    source = node.inputs[0]
    if source is None or source.quant is None:
        raise ValueError("input has no quantization parameters")
    return [dequantize_array(need(inputs, 0), source.quant)]
