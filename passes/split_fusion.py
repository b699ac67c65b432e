"""Slices that tile one axis, fused after legalization into one ``tfl.split`` / ``tfl.split_v``
(``legalize-tflite`` and ``legalize-c`` call ``fuse_splits`` after their rules).

ONNX ``Split`` is imported as one ``Slice`` per output (the importer and every pass in
between then handle a single-output op); after ``legalize-*`` these are ``tfl.strided_slice``
nodes. A set of them is one TFLite ``SPLIT`` (equal parts; inputs ``axis, x``) or ``SPLIT_V``
(inputs ``x, size_splits, axis``), as the TF converter writes ``tf.split``, when:

* they read the same tensor ``x`` (float32 or int8), each with strides 1 and no masks, and
  each takes ``[0, d)`` of every dimension but one axis ``a``, the same for all;
* their ranges ``[b_k, e_k)`` on ``a`` tile ``[0, x.shape[a])`` exactly (no gap, no
  overlap, at least two parts);
* every output has the quantization of ``x`` (TFLite-Micro's SPLIT / SPLIT_V copy bytes:
  the outputs share the input's scale and zero point; a requantizing slice stays a slice).

Output ``k`` of the fused node is the part starting at the ``k``-th smallest ``b``; it keeps
the slice output's name. The bytes are those of the slices (``y_k = x[..., b_k:e_k, ...]``).

Deliberately not handled: parts that leave a gap (an unused ``Split`` output removed by
``eliminate-dead``) or overlap, slices with a step, and int16 tensors; they stay
``STRIDED_SLICE``.
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.ir.types import DType
from microlith.passes.tflite_rules import const
from microlith.pipeline import PassContext

_DTYPES = (DType.FLOAT32, DType.INT8)


def _part(node: Node) -> tuple[int, int, int] | None:
    """(axis, begin, end) of a strided slice that cuts one axis with step 1, else None."""
    x = node.arg(0)
    if x.dtype not in _DTYPES or node.output.quant != x.quant:
        return None
    if any(int(node.attr(m, 0)) for m in ("begin_mask", "end_mask", "ellipsis_mask",
                                          "new_axis_mask", "shrink_axis_mask")):
        return None
    if node.attr("offset"):
        return None
    arrays = [node.const_input(i) for i in (1, 2, 3)]
    if any(a is None for a in arrays):
        return None
    begin, end, strides = (np.asarray(a).reshape(-1).tolist() for a in arrays)
    if len(begin) != x.type.rank or any(s != 1 for s in strides):
        return None
    cut = [a for a, d in enumerate(x.shape) if (begin[a], end[a]) != (0, d)]
    if len(cut) != 1:
        return None
    a = cut[0]
    return (a, int(begin[a]), int(end[a])) if 0 <= begin[a] < end[a] <= x.shape[a] else None


def _tiling(x_dim: int, parts: list[tuple[Node, int, int]]) -> bool:
    edge = 0
    for _, begin, end in parts:
        if begin != edge:
            return False
        edge = end
    return edge == x_dim and len(parts) >= 2


def _fuse(graph: Graph, axis: int, parts: list[tuple[Node, int, int]]) -> Node:
    slices = [p[0] for p in parts]
    x = slices[0].arg(0)
    first = min(slices, key=graph.nodes.index)
    name = first.name
    sizes = [end - begin for _, begin, end in parts]
    types = [s.output.type for s in slices]
    if len(set(sizes)) == 1:
        axis_t = const(graph, np.array(axis, np.int32), f"{name}_axis")
        fused = graph.add_node("tfl.split", [axis_t, x], {"num_splits": len(sizes)},
                               name=f"{name}_fused", output_types=types, before=first)
    else:
        sizes_t = const(graph, np.array(sizes, np.int32), f"{name}_size_splits")
        axis_t = const(graph, np.array(axis, np.int32), f"{name}_axis")
        fused = graph.add_node("tfl.split_v", [x, sizes_t, axis_t], {"num_splits": len(sizes)},
                               name=f"{name}_fused", output_types=types, before=first)
    for node, out in zip(slices, fused.outputs, strict=True):
        old = node.output
        old_name = old.name
        graph.replace_all_uses(old, out)
        out.meta.update({k: v for k, v in old.meta.items() if k not in out.meta})
        graph.remove_node(node)
        graph.rename_value(out, old_name)
    graph.rename_node(fused, name)
    return fused


def fuse_splits(graph: Graph, ctx: PassContext) -> None:
    """Replace each tiling set of strided slices (module docstring) by one split."""
    groups: dict[tuple[str, int], list[tuple[Node, int, int]]] = {}
    for node in graph.nodes:
        if node.op != "tfl.strided_slice":
            continue
        part = _part(node)
        if part is not None:
            groups.setdefault((node.arg(0).name, part[0]), []).append((node, *part[1:]))
    for (x_name, axis), parts in groups.items():
        parts.sort(key=lambda p: p[1])
        if not _tiling(graph.values[x_name].shape[axis], parts):
            continue
        fused = _fuse(graph, axis, parts)
        ctx.remark(fused.name, f"{len(parts)} slices of {x_name} along axis {axis} as one "
                               f"{'SPLIT' if fused.op == 'tfl.split' else 'SPLIT_V'}")
