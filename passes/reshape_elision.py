"""Reshapes that a target op makes redundant, removed after legalization (``legalize-tflite``
and ``legalize-c`` call ``drop_redundant_reshapes`` last).

* ``tfl.reshape`` to ``[B, K]`` read only as input 0 of ``tfl.fully_connected`` ops
  without ``keep_num_dims`` whose weights are ``[N, K]``: FULLY_CONNECTED reads its input
  as ``[-1, K]`` itself (TFLite, TFLite-Micro and our kernels), so it reads the reshape's
  input directly; the bytes are the same.
* ``tfl.reshape`` whose input is a ``tfl.mean`` with ``keep_dims`` read by nothing else,
  when the reshape only drops the reduced (size-1) axes: the MEAN gets
  ``keep_dims=False`` and writes that shape itself.

Deliberately not handled: a reshape that is a graph output (its name and shape are the
model's interface), or whose quantization differs from its input's (a requantizing
reshape is not a no-op).
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.pipeline import PassContext
from microlith.rewriter import bypass


def _fc_reads_flat(reshape: Node) -> bool:
    out = reshape.output
    users = out.users()
    if out.type.rank != 2 or not users:
        return False
    for user in users:
        w = user.input(1)
        if user.op != "tfl.fully_connected" or user.attr("keep_num_dims") or \
                user.inputs[0] is not out or any(v is out for v in user.inputs[1:]) or \
                w is None or w.type.rank != 2 or w.shape[1] != out.shape[1]:
            return False
    return True


def _mean_axes(mean: Node) -> list[int] | None:
    axes = mean.const_input(1)
    if axes is None:
        return None
    rank = mean.arg(0).type.rank
    return sorted({int(a) % rank for a in np.asarray(axes).reshape(-1)})


def _mean_drops_axes(graph: Graph, reshape: Node) -> Node | None:
    mean = reshape.arg(0).producer
    if mean is None or mean.op != "tfl.mean" or not mean.attr("keep_dims"):
        return None
    if len(mean.output.uses) != 1 or mean.output in graph.outputs:
        return None
    axes = _mean_axes(mean)
    if axes is None:
        return None
    kept = tuple(d for i, d in enumerate(mean.output.shape) if i not in axes)
    return mean if kept == reshape.output.shape else None


def drop_redundant_reshapes(graph: Graph, ctx: PassContext) -> None:
    """Remove the reshapes described in the module docstring."""
    for node in list(graph.nodes):
        if node.op != "tfl.reshape" or node.output in graph.outputs:
            continue
        x = node.arg(0)
        if x.quant != node.output.quant:
            continue
        if _fc_reads_flat(node):
            bypass(graph, node)
            ctx.remark(node.name, "removed: FULLY_CONNECTED flattens its input itself")
            continue
        mean = _mean_drops_axes(graph, node)
        if mean is not None:
            mean.attrs["keep_dims"] = False
            mean.output.set_type(node.output.type)
            bypass(graph, node)
            ctx.remark(node.name, "removed: MEAN drops the reduced axes itself")
