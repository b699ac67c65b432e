"""The importer registry: one function per ONNX op type returning (IR op, inputs, attrs)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from microlith.diagnostics import FrontendError, WarningSink
from microlith.frontend.onnx_rewrite import REWRITTEN
from microlith.frontend.shape_arithmetic import static_value
from microlith.ir.core import Graph, Value
from microlith.ir.types import DType

Attrs = dict[str, Any]
Importer = Callable[["ImportContext", onnx.NodeProto], tuple[str, list[Value | None], Attrs]]
IMPORTERS: dict[str, Importer] = {}
INT32_MAX = 2**31 - 1

ONNX_DTYPES: dict[int, DType] = {
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
        # the generic node importer (set by onnx_import): composite importers reuse it
        self.import_node: Callable[[ImportContext, onnx.NodeProto], Value] | None = None

    def fail(self, node: onnx.NodeProto, reason: str) -> FrontendError:
        return FrontendError(f"{self.path}: node {node.name!r} ({node.op_type}): {reason}")

    def value(self, name: str) -> Value | None:
        return self.values[name] if name else None

    def inputs(self, node: onnx.NodeProto) -> list[Value | None]:
        return [self.value(name) for name in node.input]

    def required(self, node: onnx.NodeProto, index: int, what: str) -> Value:
        """Input ``index`` of ``node``, which must be present."""
        if index >= len(node.input) or not node.input[index]:
            raise self.fail(node, f"input {index} ({what}) is missing")
        return self.values[node.input[index]]

    def ints(self, node: onnx.NodeProto, attrs: Attrs, name: str, default: tuple[int, ...],
             length: int, minimum: int = 0, maximum: int = INT32_MAX) -> tuple[int, ...]:
        """Integer-list attribute ``name``: ``length`` values in ``[minimum, maximum]``."""
        raw = attrs.get(name, default)
        values = tuple(raw) if isinstance(raw, tuple | list) else (raw,)
        if len(values) != length or not all(isinstance(v, int) for v in values):
            raise self.fail(node, f"attribute {name} must be {length} integers, got "
                                  f"{list(values)}")
        if any(not minimum <= v <= maximum for v in values):
            raise self.fail(node, f"attribute {name} {list(values)} is out of range "
                                  f"({minimum}..{maximum:,})")
        return values

    def finite(self, node: onnx.NodeProto, attrs: Attrs, name: str, default: float) -> float:
        """Float attribute ``name``, which must be finite (NaN/Inf would change the maths)."""
        value = float(attrs.get(name, default))
        if not math.isfinite(value):
            raise self.fail(node, f"attribute {name}={value} is not a finite number")
        return value

    def const_or_none(self, node: onnx.NodeProto, index: int) -> np.ndarray | None:
        """Constant data of input ``index``, or None when it is absent or not constant."""
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.values[node.input[index]].data

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """Constant data of optional input ``index``; non-constant is an error."""
        if index >= len(node.input) or not node.input[index]:
            return None
        value = self.values[node.input[index]]
        data = value.data if value.data is not None else static_value(value)
        if data is None:
            raise self.fail(node, f"{what} must be a constant")
        return data


def importer(*ops: str) -> Callable[[Importer], Importer]:
    def wrap(fn: Importer) -> Importer:
        for op in ops:
            IMPORTERS[op] = fn
        return fn

    return wrap


def supported_ops() -> list[str]:
    return sorted([*IMPORTERS, "Constant", *REWRITTEN])


def node_attrs(node: onnx.NodeProto) -> Attrs:
    out: Attrs = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):  # invalid UTF-8 cannot name anything we support
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                          for v in value)
        out[attr.name] = value
    return out


