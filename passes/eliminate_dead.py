"""``eliminate-dead``: remove nodes whose results nobody uses, no-op nodes, unused constants.

A node is dead when none of its outputs is used or is a graph output; removing
it may make its producers dead, so removal runs from the graph's end backwards.
``Identity`` nodes are bypassed (their users read the input directly; an
Identity producing a graph output renames its input to keep the output's name,
and stays when the input has a name of its own to keep: a graph input or output,
or a constant).
Unused constants are dropped from the value table. Graph inputs always stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph, Value
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import bypass


def _can_take_name(graph: Graph, value: Value) -> bool:
    """Whether ``value`` can be renamed to a graph output's name (it has no name to keep)."""
    return not (value in graph.inputs or value in graph.outputs or value.is_constant)


@register_pass
@dataclass(frozen=True)
class EliminateDead(Pass):
    name = "eliminate-dead"
    summary = "remove unused nodes and constants and bypass Identity"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for node in list(graph.nodes):
            if node.op == "Identity" and node.inputs[0] is not None and not (
                    node.output in graph.outputs and not _can_take_name(graph, node.arg(0))):
                bypass(graph, node)
        for node in reversed(list(graph.nodes)):
            if not any(out.uses or out in graph.outputs for out in node.outputs):
                ctx.remark(node, "removed: result unused")
                graph.remove_node(node)
        for value in list(graph.values.values()):
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
