"""``fold-constants``: evaluate nodes whose inputs are all constants.

A node folds when every input is constant, or when it is a ``Shape`` (shapes
are static). The reference kernels (integer-exact ones for quantize / dequantize) compute
the result, which replaces the
node as a constant named after its output. Quantized values are not folded.
Deliberately not handled: algebraic simplification (x*1, x+0); large results
are still folded (weights pre-processing chains produce them legitimately).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.interpreter import kernel_for
from microlith.ir.core import Graph, Node
from microlith.pipeline import Pass, PassContext, register_pass


def foldable(node: Node) -> bool:
    if any(out.quant is not None for out in node.outputs):
        return False
    if node.op == "Shape":
        return True
    present = [v for v in node.inputs if v is not None]
    return bool(present) and all(v.is_constant for v in present)


@register_pass
@dataclass(frozen=True)
class FoldConstants(Pass):
    name = "fold-constants"
    summary = "evaluate nodes whose inputs are all constant"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for node in list(graph.nodes):
            if not foldable(node):
                continue
            if node.op == "Shape":
                shape = node.arg(0).shape
                results = [np.array(shape[node.attr("start", 0):node.attr("end")], np.int64)]
            else:
                kernel = kernel_for(node)
                if kernel is None:
                    ctx.remark(node, "not folded: no reference kernel")
                    continue
                results = kernel(node, [None if v is None else v.data for v in node.inputs])
            folded = []
            for out, array in zip(node.outputs, results, strict=True):
                array = np.asarray(array).astype(out.dtype.numpy, copy=False)
                const = graph.add_constant(array.reshape(out.shape), out.name + "_folded")
                graph.replace_all_uses(out, const)
                folded.append((out.name, const))
            ctx.remark(node, "folded to a constant")
            graph.remove_node(node)
            for name, const in folded:  # the constant takes over the folded value's name
                graph.rename_value(const, name)
