"""The importer registry: one function per ONNX op type returning (IR op, inputs, attrs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from microlith.diagnostics import FrontendError, WarningSink
from microlith.ir.core import Graph, Value
from microlith.ir.types import DType

Attrs = dict[str, Any]
Importer = Callable[["ImportContext", onnx.NodeProto], tuple[str, list[Value | None], Attrs]]
IMPORTERS: dict[str, Importer] = {}

ONNX_DTYPES = {
    onnx.TensorProto.FLOAT: DType.FLOAT32, onnx.TensorProto.FLOAT16: DType.FLOAT16,
    onnx.TensorProto.INT8: DType.INT8, onnx.TensorProto.UINT8: DType.UINT8,
    onnx.TensorProto.INT16: DType.INT16, onnx.TensorProto.INT32: DType.INT32,
    onnx.TensorProto.INT64: DType.INT64, onnx.TensorProto.BOOL: DType.BOOL,
}


class ImportContext:
    """State while importing one model: the graph, its values, ONNX's inferred types."""

    def __init__(self, path: str, graph: Graph, onnx_types: dict[str, onnx.TypeProto],
                 warn: WarningSink) -> None:
        self.path, self.graph, self.onnx_types, self.warn = path, graph, onnx_types, warn
        self.values: dict[str, Value] = {}

    def fail(self, node: onnx.NodeProto, reason: str) -> FrontendError:
        return FrontendError(f"{self.path}: node {node.name!r} ({node.op_type}): {reason}")

    def value(self, name: str) -> Value | None:
        return self.values[name] if name else None

    def inputs(self, node: onnx.NodeProto) -> list[Value | None]:
        return [self.value(name) for name in node.input]

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """Constant data of optional input ``index``; non-constant is an error."""
        if index >= len(node.input) or not node.input[index]:
            return None
        value = self.values[node.input[index]]
        if value.data is None:
            raise self.fail(node, f"{what} must be a constant")
        return value.data


def importer(*ops: str) -> Callable[[Importer], Importer]:
    def wrap(fn: Importer) -> Importer:
        for op in ops:
            IMPORTERS[op] = fn
        return fn

    return wrap


def supported_ops() -> list[str]:
    return sorted([*IMPORTERS, "Constant"])


def node_attrs(node: onnx.NodeProto) -> Attrs:
    out: Attrs = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, list):
            value = tuple(v.decode() if isinstance(v, bytes) else v for v in value)
        out[attr.name] = value
    return out


