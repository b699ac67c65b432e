"""ONNX-level rewrites done on the ``ModelProto`` before any check: forms that are one
ONNX node but several IR nodes.

* n-ary ``Sum`` / ``Max`` / ``Min`` / ``Mean`` (variadic, 1..N inputs, numpy broadcasting
  between all of them): a left-to-right chain of binary ``Add`` / ``Max`` / ``Min``
  (``((a + b) + c) + ...``, the order onnxruntime sums in); ``Mean`` then multiplies by
  ``1/N`` (a float32 constant). One input is an ``Identity``. Each new node and tensor is
  named after the original node (``<name>/0``, ...); the last node keeps the original
  output name, so graph outputs and consumers are unchanged.
* ``Dropout`` whose ``mask`` output nobody reads (no consumer, not a graph output): the
  mask output is dropped (at inference Dropout is the identity); a mask that is read is
  still refused by the Dropout importer.

Deliberately not handled: a variadic op with zero inputs (the checker refuses it).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

BINARY_OF = {"Sum": "Add", "Max": "Max", "Min": "Min", "Mean": "Add"}
ONNX_DOMAINS = ("", "ai.onnx")
REWRITTEN = ("Sum", "Mean")  # ops that exist only through this rewrite


def _unique(base: str, taken: set[str]) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def _chain(node: onnx.NodeProto, index: int, taken: set[str],
           initializers: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    label = node.name or f"{node.op_type}_{index}"
    inputs = [name for name in node.input if name]
    out = node.output[0]
    if len(inputs) == 1 and node.op_type != "Mean":
        return [helper.make_node("Identity", inputs, [out], name=label)]
    binary = BINARY_OF[node.op_type]
    nodes: list[onnx.NodeProto] = []
    acc = inputs[0]
    steps = len(inputs) - 1 + (node.op_type == "Mean")
    for k, operand in enumerate(inputs[1:]):
        last = k == steps - 1
        target = out if last else _unique(f"{label}/{k}", taken)
        nodes.append(helper.make_node(binary, [acc, operand], [target],
                                      name=label if last else target))
        acc = target
    if node.op_type == "Mean":
        scale = _unique(f"{label}/reciprocal", taken)
        initializers.append(numpy_helper.from_array(
            np.array(1.0 / len(inputs), np.float32), scale))
        nodes.append(helper.make_node("Mul", [acc, scale], [out], name=label))
    return nodes


def rewrite_model(model: onnx.ModelProto) -> None:
    """Rewrite the main graph in place (see the module docstring)."""
    graph = model.graph
    if not any(n.op_type in BINARY_OF or n.op_type == "Dropout" for n in graph.node):
        return
    taken = {name for n in graph.node for name in (*n.input, *n.output, n.name)}
    taken.update(v.name for v in [*graph.input, *graph.initializer])
    read = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    new_nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    changed = False
    for index, node in enumerate(graph.node):
        if node.domain not in ONNX_DOMAINS:
            new_nodes.append(node)
            continue
        variadic = node.op_type in REWRITTEN or (node.op_type in BINARY_OF
                                                 and len(node.input) != 2)
        if variadic and len(node.output) == 1 and any(node.input):
            new_nodes.extend(_chain(node, index, taken, initializers))
            changed = True
            continue
        if node.op_type == "Dropout" and len(node.output) > 1 and node.output[1] and \
                node.output[1] not in read:
            del node.output[1:]
            changed = True
        new_nodes.append(node)
    if changed:
        del graph.node[:]
        graph.node.extend(new_nodes)
        graph.initializer.extend(initializers)
