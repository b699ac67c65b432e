"""``infer-shapes``: recompute every node's output types from its inputs.

Types follow the op registry's inference functions in topological order; a
mismatch with the stored type is repaired (the stored type is replaced). An op
whose operand is not constant yet (e.g. a Reshape fed by a Shape chain) keeps
its imported type until ``fold-constants`` makes the operand constant.
Quantization parameters already on a value are kept when the shape is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph
from microlith.ir.ops import NeedsConstant, ShapeError, infer_types
from microlith.pipeline import Pass, PassContext, register_pass


@register_pass
@dataclass(frozen=True)
class InferShapes(Pass):
    name = "infer-shapes"
    summary = "recompute output shapes and dtypes of every node"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for node in graph.nodes:
            try:
                types = infer_types(node)
            except NeedsConstant:
                continue  # keeps its imported type until fold-constants
            except ShapeError as exc:
                raise self.fail(node, str(exc)) from None
            for value, type in zip(node.outputs, types, strict=False):
                if value.type.shape != type.shape or value.type.dtype != type.dtype:
                    value.set_type(type)
