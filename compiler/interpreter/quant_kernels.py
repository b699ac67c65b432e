"""QuantizeLinear / DequantizeLinear in the float kernel table.

``run_graph`` sends these two ops to the TFLite-Micro-exact integer kernels
(``int8_graph_kernels``); the float table holds the same functions, so that a
lookup in ``KERNELS`` (fold-constants, tools) gets the one implementation rather
than an approximation of it. Parameters come from the value types.
"""

from __future__ import annotations

import numpy as np

from microlith.interpreter.registry import register
from microlith.ir.core import Node


@register("QuantizeLinear")
def quantize_linear(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    from microlith.interpreter.int8_graph_kernels import quantize

    return quantize(node, inputs)


@register("DequantizeLinear")
def dequantize_linear(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    from microlith.interpreter.int8_graph_kernels import dequantize

    return dequantize(node, inputs)
