"""``prepare``: compute each integer node's parameter record once (``node.params``).

The record is what TFLite-Micro's Prepare computes from the flatbuffer -- per-channel
multipliers and shifts, offsets, clamp ranges, geometry, zero-point-folded biases -- made
by ``microlith.quant`` from the node's value types and attributes. The interpreter runs
its kernel on it; the C backend writes it as a ``static const`` struct; ``plan-memory``
reads the kernel scratch it declares. A node whose parameters TFLite would refuse (an
int8 softmax whose output is not 1/256, a multiplier that rounds to 1.0, ...) is an error
naming it. Float nodes have no record.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import MEMORY_PLANNED, PREPARED, TARGET_OPS
from microlith.quant.registry import integer_ops, is_integer_node, lookup


@register_pass
@dataclass(frozen=True)
class Prepare(Pass):
    name = "prepare"
    summary = "compute each integer target op's parameter record once (multipliers, geometry)"
    requires = (TARGET_OPS,)
    provides = (PREPARED,)
    invalidates = (MEMORY_PLANNED,)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        table = integer_ops()
        for node in graph.nodes:
            node.params = None
            if not is_integer_node(node):
                continue
            if node.op not in table:
                raise self.fail(node, f"no integer kernel for {node.op} (legalize the graph "
                                      "for a target first)")
            try:
                node.params = lookup(node).prepare(node)  # the 16x8 kernel for int16 nodes
            except ValueError as exc:
                raise self.fail(node, str(exc)) from None
