"""``GraphBuilder``: build IR graphs tersely in tests, tools and plugins.

    b = GraphBuilder("net")
    x = b.input("x", (1, 3, 8, 8))
    y = b.op("Conv", x, np.ones((4, 3, 3, 3), np.float32), pads=(1, 1, 1, 1))
    b.output(b.op("Relu", y))
    graph = b.graph

numpy arrays (and Python scalars/lists) passed as operands become constants;
attributes are keyword arguments; output types come from shape inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from microlith.ir.core import Graph, Value
from microlith.ir.types import DType, TensorType

Operand = Value | np.ndarray | float | int | list | None


class GraphBuilder:
    def __init__(self, name: str = "main") -> None:
        self.graph = Graph(name)

    def input(self, name: str, shape: tuple[int, ...], dtype: DType = DType.FLOAT32) -> Value:
        return self.graph.add_input(name, TensorType(dtype, tuple(shape)))

    def const(self, data: np.ndarray | float | int | list, name: str = "const") -> Value:
        array = np.asarray(data)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        return self.graph.add_constant(array, name)

    def op(self, op: str, *operands: Operand, name: str | None = None, **attrs: Any) -> Value:
        """Add ``op`` and return its (first) output value."""
        inputs = [v if v is None or isinstance(v, Value) else self.const(v, f"{op.lower()}_arg")
                  for v in operands]
        return self.graph.add_node(op, inputs, attrs, name=name).output

    def output(self, *values: Value) -> None:
        self.graph.outputs.extend(values)
