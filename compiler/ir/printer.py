"""Deterministic, human-readable IR text.

Values are numbered in definition order (graph inputs ``%arg0..``, constants
``%c0..``, node results ``%0..``), so the text does not depend on ONNX tensor
names; names appear as trailing comments. Constants with more than
``INLINE_LIMIT`` elements print as shape plus a content hash; smaller ones print
their values. Attributes print sorted by key. Example::

    graph @main(%arg0: tensor<1x1x8x8xf32>) {
      %c0 = const tensor<4x1x3x3xf32> #9f2c01ab
      %0 = Conv(%arg0, %c0) {activation="RELU", group=1, ...} : tensor<1x4x8x8xf32>  # conv1
      return %0
    }
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from microlith.ir.core import Graph, Node, Value

INLINE_LIMIT = 8


def constant_digest(data: np.ndarray) -> str:
    """First 8 hex digits of the sha256 of dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(f"{data.dtype.str}{data.shape}".encode())
    h.update(np.ascontiguousarray(data).tobytes())
    return h.hexdigest()[:8]


def format_scalar(x: Any) -> str:
    if isinstance(x, bool | np.bool_):
        return "true" if x else "false"
    if isinstance(x, float | np.floating):
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return f"{float(x):.6g}"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, str):
        return f'"{x}"'
    if isinstance(x, tuple | list):
        return "[" + ", ".join(format_scalar(v) for v in x) + "]"
    if x is None:
        return "none"
    return repr(x)


def format_constant(value: Value) -> str:
    data = value.data
    assert data is not None
    if data.size <= INLINE_LIMIT:
        return f"const {value.type} {format_scalar(data.reshape(-1).tolist())}"
    return f"const {value.type} #{constant_digest(data)}"


class Namer:
    """Stable short names for a graph's values."""

    def __init__(self, graph: Graph) -> None:
        self.names: dict[int, str] = {}
        for i, value in enumerate(graph.inputs):
            self.names[id(value)] = f"%arg{i}"
        count = 0
        for node in graph.nodes:
            for operand in node.inputs:
                if operand is not None and operand.is_constant and id(operand) not in self.names:
                    self.names[id(operand)] = f"%c{count}"
                    count += 1
        for value in graph.outputs:
            if value.is_constant and id(value) not in self.names:
                self.names[id(value)] = f"%c{count}"
                count += 1
        result = 0
        for node in graph.nodes:
            for value in node.outputs:
                self.names[id(value)] = f"%{result}"
                result += 1

    def __call__(self, value: Value | None) -> str:
        if value is None:
            return "none"
        return self.names.get(id(value), f"%<unknown {value.name}>")


def format_node(node: Node, name: Namer) -> str:
    results = ", ".join(name(v) for v in node.outputs)
    args = ", ".join(name(v) for v in node.inputs)
    attrs = ", ".join(f"{k}={format_scalar(node.attrs[k])}" for k in sorted(node.attrs))
    types = ", ".join(str(v.type) for v in node.outputs)
    text = f"{results} = {node.op}({args})"
    if attrs:
        text += f" {{{attrs}}}"
    return f"{text} : {types}  # {node.name}"


def print_graph(graph: Graph) -> str:
    """The whole graph as text (ends with a newline)."""
    name = Namer(graph)
    params = ", ".join(f"{name(v)}: {v.type}" for v in graph.inputs)
    lines = [f"graph @{graph.name}({params}) {{"]
    listed: set[int] = set()
    constants = [v for n in graph.nodes for v in n.inputs if v is not None and v.is_constant]
    constants += [v for v in graph.outputs if v.is_constant]
    for value in constants:
        if id(value) not in listed:
            listed.add(id(value))
            lines.append(f"  {name(value)} = {format_constant(value)}  # {value.name}")
    for node in graph.nodes:
        lines.append("  " + format_node(node, name))
    lines.append("  return " + ", ".join(name(v) for v in graph.outputs))
    lines.append("}")
    return "\n".join(lines) + "\n"
