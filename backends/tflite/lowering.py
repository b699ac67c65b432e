"""IR graph (after ``to-nhwc``) -> ``TflModel``: tensors, constants and operators.

``lower_graph`` first checks every node (all problems reported in one
``BackendError``), then walks the nodes in order calling the per-op lowering
function from ``LOWERINGS`` (``microlith.backends.tflite.ops``). Tensor names are the IR
value names, which the frontend carried over from ONNX.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from microlith.backends.tflite.versions import default_op_version
from microlith.diagnostics import BackendError
from microlith.formats.tflite.flatbuffer import TflModel, TflOperator, TflQuant, TflTensor
from microlith.ir.core import Graph, Node, Value
from microlith.ir.types import QuantParams

Lowering = Callable[["LowerContext", Node], None]
Check = Callable[[Node], str | None]
LOWERINGS: dict[str, Lowering] = {}
CHECKS: dict[str, Check] = {}


def lowers(*ops: str, check: Check | None = None) -> Callable[[Lowering], Lowering]:
    """Register a lowering (and an optional legality check returning a reason)."""

    def wrap(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
            if check is not None:
                CHECKS[op] = check
        return fn

    return wrap


def _quant(quant: QuantParams | None) -> TflQuant | None:
    if quant is None:
        return None
    return TflQuant(list(quant.scale), list(quant.zero_point), quant.axis or 0)


class LowerContext:
    """Accumulates tensors and operators; maps IR values to tensor indices."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.tensors: list[TflTensor] = []
        self.operators: list[TflOperator] = []
        self.index: dict[int, int] = {}
        self.names: set[str] = set()

    def _name(self, hint: str) -> str:
        name, i = hint, 1
        while name in self.names:
            name, i = f"{hint}_{i}", i + 1
        self.names.add(name)
        return name

    def tensor(self, value: Value | None) -> int:
        """The tensor index of ``value`` (constants carry their data), -1 for None."""
        if value is None:
            return -1
        if id(value) not in self.index:
            data = None if value.data is None else np.ascontiguousarray(value.data).tobytes()
            self.index[id(value)] = self._add(value.name, value.shape, value.dtype.numpy.name,
                                              data, _quant(value.quant))
        return self.index[id(value)]

    def const(self, array: np.ndarray, name: str, quant: QuantParams | None = None) -> int:
        """A new constant tensor (e.g. a shape operand or a re-laid-out weight)."""
        array = np.ascontiguousarray(array)
        return self._add(name, list(array.shape), array.dtype.name, array.tobytes(),
                         _quant(quant))

    def activation(self, like: Value, name: str, shape: Sequence[int] | None = None) -> int:
        """A new intermediate tensor with ``like``'s dtype and quantization."""
        return self._add(name, list(like.shape if shape is None else shape),
                         like.dtype.numpy.name, None, _quant(like.quant))

    def _add(self, name: str, shape: Sequence[int], dtype: str, data: bytes | None,
             quant: TflQuant | None) -> int:
        self.tensors.append(TflTensor(self._name(name), [int(d) for d in shape], dtype, data,
                                      quant))
        return len(self.tensors) - 1

    def emit(self, op: str, inputs: Sequence[int], outputs: Sequence[int],
             options: dict[str, Any] | None = None) -> None:
        dtypes = [None if i < 0 else self.tensors[i].dtype for i in inputs]
        out_dtypes = [self.tensors[i].dtype for i in outputs]
        ranks = [0 if i < 0 else len(self.tensors[i].shape) for i in inputs]
        per_channel = any(i >= 0 and self.tensors[i].quant is not None
                          and len(self.tensors[i].quant.scale) > 1 for i in inputs)
        version = default_op_version(op, dtypes, out_dtypes, options=options or {},
                                     input_ranks=ranks, per_channel=per_channel)
        self.operators.append(TflOperator(op, list(inputs), list(outputs), dict(options or {}),
                                          version))


def check_legal(graph: Graph) -> None:
    """Raise one BackendError listing every node the TFLite backend cannot emit."""
    import microlith.backends.tflite.ops  # noqa: F401  (registers lowerings)

    problems: list[str] = []
    for node in graph.nodes:
        if node.op not in LOWERINGS:
            problems.append(f"{node.name} ({node.op}): no TFLite lowering"
                            + _hint(node.op))
            continue
        reason = CHECKS[node.op](node) if node.op in CHECKS else None
        if reason:
            problems.append(f"{node.name} ({node.op}): {reason}")
    if problems:
        raise BackendError("tflite backend cannot emit: " + "; ".join(problems))


def _hint(op: str) -> str:
    return {
        "BatchNormalization": " (run fold-batchnorm)",
        "Gemm": " (run lower-fc; only constant weights are supported)",
        "MatMul": " (run lower-fc; only constant weights are supported)",
        "Shape": " (run fold-constants)",
    }.get(op, "")


def lower_graph(graph: Graph, description: str = "microlith") -> TflModel:
    """Translate a legal graph into a ``TflModel`` (inputs/outputs keep their names)."""
    check_legal(graph)
    ctx = LowerContext(graph)
    inputs = [ctx.tensor(v) for v in graph.inputs]
    for node in graph.nodes:
        LOWERINGS[node.op](ctx, node)
    outputs = []
    for value in graph.outputs:
        if value.producer is None:
            raise BackendError(f"graph output {value.name!r} is not computed by any node")
        outputs.append(ctx.tensor(value))
    return TflModel(ctx.tensors, ctx.operators, inputs, outputs, description=description,
                    subgraph_name=graph.name)
