"""``fold-constants``: evaluate nodes whose inputs are all constants.

A node folds when every input is constant, or when it is a ``Shape`` (shapes
are static). The reference kernels (integer-exact ones for quantize / dequantize) compute
the result, which replaces the
node as a constant named after its output. Quantized values are not folded.
Deliberately not handled: algebraic simplification (x*1, x+0); large results
are still folded (weights pre-processing chains produce them legitimately).
A fold whose result holds NaN/Inf although its inputs are finite (a division by
zero, an overflow) is still folded, as onnxruntime computes it, with one warning
naming the node instead of numpy's RuntimeWarning lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.interpreter import kernel_for
from microlith.ir.core import Graph, Node
from microlith.ops.tensor import shape_value
from microlith.pipeline import Pass, PassContext, register_pass


def foldable(node: Node) -> bool:
    if any(out.quant is not None for out in node.outputs):
        return False
    if node.op == "Shape":
        return True
    present = [v for v in node.inputs if v is not None]
    return bool(present) and all(v.is_constant for v in present)


def _warn_non_finite(node: Node, inputs: list[np.ndarray | None],
                     results: list[np.ndarray], ctx: PassContext) -> None:
    if not all(a is None or a.dtype.kind != "f" or bool(np.isfinite(a).all()) for a in inputs):
        return  # NaN/Inf in a constant was already reported at import
    bad = sum(int(np.count_nonzero(~np.isfinite(r))) for r in results if r.dtype.kind == "f")
    if bad:
        ctx.warn(f"fold-constants: node {node.name!r} ({node.op}) computes {bad} NaN/Inf "
                 f"value(s) from finite constants (division by zero or overflow)")


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
                results = [shape_value(node)]
            else:
                kernel = kernel_for(node)
                if kernel is None:
                    ctx.remark(node, "not folded: no reference kernel")
                    continue
                arrays = [None if v is None else v.data for v in node.inputs]
                with np.errstate(all="ignore"):
                    results = [np.asarray(r).astype(out.dtype.numpy, copy=False) for out, r in
                               zip(node.outputs, kernel(node, arrays), strict=True)]
                _warn_non_finite(node, arrays, results, ctx)
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
