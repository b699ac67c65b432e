"""Target ops (``tfl.*``) -> ``TflModel``: a translation table, no graph surgery.

``legalize-tflite`` has already made the graph the model: every node is one operator
(its builtin is the op definition's ``builtin``, its options are the node's attributes,
schema defaults filled in), every value one tensor (constants carry their data, quantized
values their scales and zero points; an absent optional input is index -1). Tensors are
numbered in first-touch order -- the graph inputs, then each operator's operands and
results in node order -- and keep the IR value names, which the frontend carried over from
ONNX. Operator versions are the TFLite converter's (``versions.default_op_version``).

File conventions of the converter are kept: one ``serving_default`` SignatureDef naming
the graph inputs and outputs by their names, and ``min_runtime_version`` metadata
computed from the (builtin, version) pairs written (``runtime_version``).
"""

from __future__ import annotations

import numpy as np

from microlith.backends.tflite.runtime_version import (
    METADATA_NAME,
    metadata_buffer,
    min_runtime_version,
)
from microlith.backends.tflite.versions import default_op_version
from microlith.diagnostics import BackendError, capped
from microlith.formats.tflite.flatbuffer import TflModel, TflOperator, TflQuant, TflTensor
from microlith.formats.tflite.signature import TflSignature
from microlith.ir.core import Graph, Value
from microlith.ir.ops import get_op, is_registered
from microlith.ir.types import QuantParams


def _quant(quant: QuantParams | None) -> TflQuant | None:
    if quant is None:
        return None
    return TflQuant(list(quant.scale), list(quant.zero_point), quant.axis or 0)


def _byte_view(array: np.ndarray) -> memoryview:
    """The bytes of ``array`` without a copy when it is C-contiguous (constants are)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.uint8).data


class _Tensors:
    """IR values -> tensor indices, in first-touch order."""

    def __init__(self) -> None:
        self.tensors: list[TflTensor] = []
        self.index: dict[int, int] = {}

    def __call__(self, value: Value | None) -> int:
        if value is None:
            return -1
        if id(value) not in self.index:
            data = None if value.data is None else _byte_view(value.data)
            self.tensors.append(TflTensor(value.name, [int(d) for d in value.shape],
                                          value.dtype.numpy.name, data, _quant(value.quant)))
            self.index[id(value)] = len(self.tensors) - 1
        return self.index[id(value)]


def check_target_ops(graph: Graph) -> None:
    """One BackendError naming every node that is not a TFLite builtin yet."""
    stray = [f"{n.name} ({n.op})" for n in graph.nodes
             if not is_registered(n.op) or get_op(n.op).builtin is None]
    if stray:
        raise BackendError("tflite backend: the graph is not legalized (run legalize-tflite); "
                           "not TFLite operators: " + capped(stray, "; "))


def graph_to_model(graph: Graph, description: str = "microlith") -> TflModel:
    """Translate a legalized graph into a ``TflModel`` (inputs/outputs keep their names)."""
    check_target_ops(graph)
    tensor = _Tensors()
    inputs = [tensor(v) for v in graph.inputs]
    operators = []
    for node in graph.nodes:
        opdef = get_op(node.op)
        ins = [tensor(v) for v in node.inputs]
        outs = [tensor(v) for v in node.outputs]
        options = {key: node.attr(key) for key in opdef.attrs}
        tensors = tensor.tensors
        quants = [tensors[i].quant for i in ins if i >= 0]
        per_channel = any(q is not None and len(q.scale) > 1 for q in quants)
        builtin = str(opdef.builtin)
        version = default_op_version(
            builtin, [None if i < 0 else tensors[i].dtype for i in ins],
            [tensors[o].dtype for o in outs], options=options,
            input_ranks=[0 if i < 0 else len(tensors[i].shape) for i in ins],
            per_channel=per_channel)
        operators.append(TflOperator(builtin, ins, outs, options, version))
    outputs = []
    for value in graph.outputs:
        if value.producer is None:
            raise BackendError(f"graph output {value.name!r} is not computed by any node")
        outputs.append(tensor(value))
    names = tensor.tensors
    signature = TflSignature(inputs=[(names[i].name, i) for i in inputs],
                             outputs=[(names[o].name, o) for o in outputs])
    runtime = min_runtime_version((op.op, op.version) for op in operators)
    metadata = {METADATA_NAME: metadata_buffer(runtime)} if runtime else {}
    return TflModel(tensor.tensors, operators, inputs, outputs, description=description,
                    subgraph_name=graph.name, metadata=metadata, signatures=[signature])
