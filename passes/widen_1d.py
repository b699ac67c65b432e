"""``widen-1d``: consecutive 1-D ops share one 2-D form (no reshape pair between them).

The importer runs a 1-D ``Conv`` / ``ConvTranspose`` / ``MaxPool`` / ``AveragePool`` on a
3-D ``[N, C, L]`` tensor as the 2-D op over ``Unsqueeze(x, 2) = [N, C, 1, L]`` followed by
``Squeeze(., 2)``. This pass moves each such ``Squeeze`` (axes ``(2,)``, on a 4-D value with
``shape[2] == 1``) down past the ops that compute the same thing on ``[N, C, 1, L]``:

* unary element-wise ops (``Layout.ELEMENTWISE``: ``op(squeeze(x)) = squeeze(op(x))``);
* ``BatchNormalization`` (its channel axis stays axis 1) -- so ``fold-batchnorm`` then
  folds it into the 4-D convolution, and ``fuse-activation`` fuses a Relu after it;
* broadcasting binary ops (``Layout.BROADCAST``) whose other operands are squeezes of the
  same kind or constants (a constant of rank ``r <= 3`` broadcasts as
  ``reshape(c, (1,) * (3 - r) + c.shape)`` and gets a unit axis 2: the same values);

and cancels it against an ``Unsqueeze`` (axes ``(2,)``) that reads it
(``unsqueeze(squeeze(x)) = x``). A chain Conv1d -> BatchNorm1d -> ReLU -> MaxPool1d ->
Conv1d is then 4-D from the first ``Unsqueeze`` to the last ``Squeeze``; ``to-nhwc``
stores it NHWC with H = 1 (``[N, 1, L, C]``, the TF converter's form of Keras ``Conv1D``),
so only the model's interface has a RESHAPE.

Deliberately not handled: a squeeze that is a graph output (the model's interface), ops
with an axis attribute (Softmax, Concat, reductions: their axes would need remapping) and
squeezes of another axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Layout, get_op
from microlith.pipeline import Pass, PassContext, register_pass


def _axes(node: Node) -> tuple[int, ...]:
    axes = node.attr("axes")
    if axes is None and len(node.inputs) > 1:
        axes = node.const_input(1)
    return () if axes is None else tuple(int(a) for a in np.asarray(axes).reshape(-1))


def is_h_squeeze(node: Node | None) -> bool:
    """``Squeeze(x, axes=2)`` of a 4-D ``x`` with ``shape[2] == 1`` (the 1-D importer's)."""
    if node is None or node.op != "Squeeze" or node.input(0) is None:
        return False
    x = node.arg(0)
    return (x.type.rank == 4 and x.shape[2] == 1
            and tuple(a % 4 for a in _axes(node)) == (2,))


def _is_h_unsqueeze(node: Node) -> bool:
    return (node.op == "Unsqueeze" and node.arg(0).type.rank == 3
            and tuple(a % 4 for a in _axes(node)) == (2,))


def _widened(graph: Graph, value: Value) -> Value | None:
    """Operand ``value`` of ``node`` as a 4-D ``[N, C, 1, L]`` value, or None."""
    if is_h_squeeze(value.producer):
        return value.producer.arg(0)  # type: ignore[union-attr]
    if value.is_constant and value.type.rank <= 3:
        data = value.constant.reshape((1,) * (3 - value.type.rank) + value.shape)
        return graph.add_constant(np.ascontiguousarray(data[:, :, None, :]),
                                  f"{value.name}_2d")
    return None


def _sink(graph: Graph, squeeze: Node, user: Node) -> Node | None:
    """``user`` recomputed on the 4-D values, followed by a new squeeze; None if it can't."""
    layout = get_op(user.op).layout
    if len(user.outputs) != 1 or user.output.type.rank != 3:
        return None
    if user.op == "BatchNormalization" or layout is Layout.ELEMENTWISE:
        if user.inputs[0] is not squeeze.output or any(
                v is squeeze.output for v in user.inputs[1:]):
            return None
        inputs: list[Value | None] = [squeeze.arg(0), *user.inputs[1:]]
    elif layout is Layout.BROADCAST:
        inputs = []
        for value in user.inputs:
            wide = None if value is None else _widened(graph, value)
            if value is not None and wide is None:
                return None
            inputs.append(wide)
    else:
        return None
    wide_node = graph.add_node(user.op, inputs, dict(user.attrs), name=f"{user.name}/2d",
                               before=user)
    wide_node.meta.update(user.meta)
    out = user.output
    new_squeeze = graph.add_node("Squeeze", [wide_node.output], {"axes": (2,)},
                                 name=f"{user.name}/squeeze", before=user)
    graph.replace_all_uses(out, new_squeeze.output)
    graph.remove_node(user)
    graph.rename_value(new_squeeze.output, out.name)
    return new_squeeze


@register_pass
@dataclass(frozen=True)
class Widen1D(Pass):
    name = "widen-1d"
    summary = "keep consecutive 1-D ops in their 2-D (H = 1) form: sink and cancel squeezes"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        work = [n for n in graph.nodes if is_h_squeeze(n)]
        while work:
            squeeze = work.pop(0)
            if squeeze.graph is not graph:
                continue
            for user in list(squeeze.output.users()):
                if user.graph is not graph:
                    continue
                if _is_h_unsqueeze(user) and user.output not in graph.outputs:
                    graph.replace_all_uses(user.output, squeeze.arg(0))
                    graph.remove_node(user)
                    ctx.remark(user.name, "removed: cancels the squeeze of a 1-D op")
                    continue
                new = _sink(graph, squeeze, user)
                if new is not None:
                    ctx.remark(new, f"{user.op} moved before the squeeze (H = 1 kept)")
                    work.append(new)
            if not squeeze.output.uses and squeeze.output not in graph.outputs:
                graph.remove_node(squeeze)
