"""``to-nhwc``: one global layout conversion from ONNX's NCHW to TFLite's NHWC.

Each value gets a *physical permutation* ``p``: its stored array equals the
ONNX (logical) array transposed by ``p`` (``phys = logical.transpose(p)``);
``p = (0, 2, 3, 1)`` is NHWC. Walking the graph in order:

* rank-4 graph inputs become NHWC (option ``inputs=nchw`` keeps them), except an input
  that is NHWC already (read only through Transpose(0, 3, 1, 2), the tf2onnx form),
  which keeps the model's own interface layout ``[1, H, W, C]``;
* spatial ops (Conv, ConvTranspose, pools, BatchNormalization) take NHWC inputs,
  get ``layout="NHWC"`` and OHWI weights, and produce NHWC;
* elementwise ops keep their input's permutation; constant operands are
  broadcast to the full rank and transposed once, at compile time;
* axis attributes (Concat, Softmax, ReduceMean, Squeeze, Pad, Transpose, ArgMax, and
  Slice's constant ``axes`` input) are remapped through ``p``; a Transpose that becomes
  the identity disappears; one whose result can simply be labelled with a permutation
  (an NHWC -> NCHW layout Transpose, or one read only by Transposes) moves no data
  either, so inverse pairs cancel and a Transpose(0, 2, 3, 1) in front of a graph output
  leaves it NHWC as the model says;
* Flatten/Reshape/Squeeze/Unsqueeze become a plain ``Reshape`` when the
  permutation does not change the order of non-unit dims in memory; a Flatten
  (or Reshape to [1, K]) whose users are all FullyConnected is handled by
  permuting the FC weight columns instead of the data; a reshape that only adds or
  drops size-1 axes keeps the input's bytes, its output labelled with a matching
  permutation (NHWC for the 2-D form ``[N, C, 1, L]`` of a 1-D op, ``(0, 2, 1)`` for
  ``[N, C, L]``: see ``widen-1d``); a 3-D graph input read only by such 1-D ops is stored
  ``[N, L, C]``;
* anything else gets its input transposed back to the logical layout.

The inserted Transposes are the only runtime cost; for convolutional nets
ending in Flatten/GlobalAveragePool + FC there are none. Graph outputs stay in
their physical layout unless ``outputs=nchw``; ``graph.meta["io_perms"]`` records
each interface tensor's permutation so callers can transpose data. Its presence
marks a converted graph: running the pass again does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Layout, ShapeError, get_op, infer_types
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import NHWC as NHWC_FACT
from microlith.rewriter import bypass

Perm = tuple[int, ...]
NHWC: Perm = (0, 2, 3, 1)


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def inverse(p: Perm) -> Perm:
    return tuple(int(i) for i in np.argsort(p))


def memory_order_kept(logical_shape: tuple[int, ...], p: Perm) -> bool:
    """True if non-unit dims keep their relative order under ``p`` (same bytes in memory)."""
    order = [axis for axis in p if logical_shape[axis] != 1]
    return order == sorted(order)


class LayoutRewriter:
    def __init__(self, graph: Graph, ctx: PassContext) -> None:
        self.graph, self.ctx = graph, ctx
        self.perms: dict[int, Perm] = {}
        self.cache: dict[tuple[int, Perm], Value] = {}

    def perm(self, value: Value) -> Perm:
        return self.perms.get(id(value), identity(value.type.rank))

    def set_perm(self, value: Value, p: Perm) -> None:
        if p == identity(len(p)):
            self.perms.pop(id(value), None)
        else:
            self.perms[id(value)] = p

    def convert(self, value: Value, target: Perm, user: Node) -> Value:
        """``value`` in permutation ``target``: a transposed constant or a Transpose node."""
        current = self.perm(value)
        if current == target:
            return value
        key = (id(value), target)
        if key in self.cache:
            return self.cache[key]
        inv = inverse(current)
        step = tuple(inv[t] for t in target)
        if value.is_constant:
            new = self.graph.add_constant(np.ascontiguousarray(value.constant.transpose(step)),
                                          value.name + "_t", take=True)
        else:
            node = self.graph.add_node("Transpose", [value], {"perm": step},
                                       name=value.name + "_transpose", before=user)
            self.ctx.remark(node, f"inserted: {user.name} ({user.op}) needs layout {target}")
            new = node.output
        self.set_perm(new, target)
        self.cache[key] = new
        return new

    def use(self, node: Node, index: int, target: Perm) -> None:
        value = node.inputs[index]
        if value is not None:
            node.set_input(index, self.convert(value, target, node))
            self.graph.release_if_dead(value)  # a constant in its old layout: freed now

    def retype(self, node: Node, p: Perm) -> None:
        node.output.set_type(infer_types(node)[0])
        self.set_perm(node.output, p)

    # ---- per-op handling --------------------------------------------------------------
    def visit(self, node: Node) -> None:
        """Dispatch on the op's ``layout`` trait (``microlith.ir.ops.Layout``)."""
        rank_in = node.inputs[0].type.rank if node.inputs and node.inputs[0] is not None else 0
        p = self.perm(node.arg(0)) if rank_in else ()
        opdef = get_op(node.op)
        kind = opdef.layout
        if kind is Layout.SPATIAL and rank_in == 4:
            self.spatial(node, opdef.nhwc_weights)
        elif kind is Layout.ELEMENTWISE:
            self.retype(node, p)
        elif kind is Layout.BROADCAST:
            self.binary(node)
        elif kind is Layout.CONCAT:
            self.concat(node)
        elif kind is Layout.TRANSPOSE:
            self.transpose(node, p)
        elif kind is Layout.RESHAPE:
            self.reshape_like(node, p)
        elif kind is Layout.AXIS and p != identity(rank_in):
            self.axis_op(node, p, opdef.axis_attr)
        else:
            for index in range(len(node.inputs)):
                operand = node.inputs[index]
                if operand is not None:
                    self.use(node, index, identity(operand.type.rank))
            for out in node.outputs:
                out.set_type(infer_types(node)[node.outputs.index(out)])

    def spatial(self, node: Node, weight_order: Perm | None) -> None:
        self.use(node, 0, NHWC)
        node.attrs["layout"] = "NHWC"
        weight = node.input(1)
        if weight_order is not None and weight is not None:
            if weight.data is None:  # run-time weights: transpose them like data
                self.use(node, 1, weight_order)
            else:
                new = self.graph.add_constant(
                    np.ascontiguousarray(weight.data.transpose(weight_order)),
                    weight.name + "_nhwc", take=True)
                node.set_input(1, new)
                self.graph.release_if_dead(weight)  # the old layout is freed at once
        self.retype(node, NHWC)

    def binary(self, node: Node) -> None:
        out_rank = node.output.type.rank
        target = identity(out_rank)
        for value in node.inputs:
            if value is not None and not value.is_constant and value.type.rank == out_rank:
                if self.perm(value) != target:
                    target = self.perm(value)
                    break
        for index, value in enumerate(node.inputs):
            if value is None:
                continue
            if value.is_constant and value.type.rank < out_rank:
                full = value.constant.reshape((1,) * (out_rank - value.type.rank) + value.shape)
                value = self.graph.add_constant(full, value.name + "_r")
                node.set_input(index, value)
            if value.type.rank != out_rank:
                target = identity(out_rank)  # a lower-rank activation: fall back to logical
        for index, value in enumerate(node.inputs):
            if value is not None:  # a lower-rank operand broadcasts in its logical layout
                self.use(node, index, target if value.type.rank == out_rank
                         else identity(value.type.rank))
        self.retype(node, target)

    def concat(self, node: Node) -> None:
        perms = {self.perm(v) for v in node.inputs if v is not None and not v.is_constant}
        target = perms.pop() if len(perms) == 1 else identity(node.output.type.rank)
        for index in range(len(node.inputs)):
            self.use(node, index, target)
        axis = node.attr("axis") % node.output.type.rank
        node.attrs["axis"] = target.index(axis)
        self.retype(node, target)

    def transpose(self, node: Node, p: Perm) -> None:
        rank = len(p)
        logical = node.attr("perm") or tuple(reversed(range(rank)))
        inv = inverse(p)
        composed = tuple(inv[q] for q in logical)
        lazy = inverse(composed)
        if composed != identity(rank) and self.defer(node, lazy):
            # A layout Transpose (its output can be stored NHWC: the input's bytes as they
            # are) or the first of a pair: no data moves, the output is labelled ``lazy``.
            self.relabel(node, lazy, "the data already has the transposed layout")
            return
        if composed == identity(rank):
            # The output's logical array *is* the input's physical one: identity perm.
            x = node.arg(0)
            if len(x.uses) == 1 and x not in self.graph.outputs and x.producer is not None:
                bypass(self.graph, node)
                self.set_perm(x, identity(rank))
                self.ctx.remark(node.name, "removed: cancels the layout permutation")
            else:  # x keeps perm p for its other readers; a no-op node relabels it
                node.op, node.attrs = "Identity", {}
                self.retype(node, identity(rank))
                self.ctx.remark(node, "made Identity: cancels the layout permutation")
            return
        node.attrs["perm"] = composed
        self.retype(node, identity(rank))

    def defer(self, node: Node, lazy: Perm) -> bool:
        """Leave the permutation ``lazy`` on the output instead of moving data: when it is
        NHWC (a 4-D NHWC -> NCHW layout Transpose, as tf2onnx writes after an NHWC input)
        or every reader is a Transpose (inverse pairs then cancel)."""
        users = node.output.users()
        if node.output in self.graph.outputs or not users:
            return False
        return lazy == NHWC or all(u.op == "Transpose" for u in users)

    def relabel(self, node: Node, p: Perm, why: str) -> None:
        """``node`` (a Transpose) moves no data: its output is its input with perm ``p``."""
        x = node.arg(0)
        if len(x.uses) == 1 and x not in self.graph.outputs and x.producer is not None:
            bypass(self.graph, node)
            self.set_perm(x, p)
            self.ctx.remark(node.name, f"removed: {why}")
            return
        node.op, node.attrs = "Identity", {}
        node.output.set_type(infer_types(node)[0])
        self.set_perm(node.output, p)
        self.ctx.remark(node, f"made Identity: {why}")

    def axis_op(self, node: Node, p: Perm, attr: str | None) -> None:
        """Remap the axis attribute named by the op's ``axis_attr`` trait through ``p``."""
        rank = len(p)
        if attr == "axis":
            axis = node.attr("axis") % rank
            node.attrs["axis"] = p.index(axis)
            if node.attr("keepdims", 1) == 0:  # ArgMax / ArgMin dropping the axis
                kept = [a for a in p if a != axis]
                self.retype(node, tuple(int(i) for i in np.argsort(np.argsort(kept))))
            else:
                self.retype(node, p)
        elif attr == "pads":
            pads = node.attr("pads")
            node.attrs["pads"] = tuple(pads[a] for a in p) + tuple(pads[rank + a] for a in p)
            self.retype(node, p)
        elif attr == "axes":
            axes = node.attr("axes")
            axes = tuple(range(rank)) if axes is None else tuple(a % rank for a in axes)
            node.attrs["axes"] = tuple(sorted(p.index(a) for a in axes))
            if node.attr("keepdims", 1):
                self.retype(node, p)
            else:
                kept = [a for a in p if a not in axes]
                self.retype(node, tuple(int(i) for i in np.argsort(np.argsort(kept))))
        elif attr == "axes_input":  # Slice: constant axes (input 3, default 0..k-1)
            starts = node.const_input(1)
            axes = node.const_input(3) if node.input(3) is not None else (
                None if starts is None else np.arange(np.asarray(starts).size))
            if starts is None or axes is None or any(
                    node.input(i) is not None and node.const_input(i) is None
                    for i in range(1, len(node.inputs))):
                self.use(node, 0, identity(rank))  # run-time bounds: the logical layout
                self.retype(node, identity(rank))
                return
            moved = [p.index(int(a) % rank) for a in np.asarray(axes).reshape(-1)]
            while len(node.inputs) < 4:
                node.inputs.append(None)
            node.set_input(3, self.graph.add_constant(np.array(moved, np.int64),
                                                      node.name + "_axes_nhwc"))
            self.retype(node, p)
        else:
            raise ShapeError(f"op {node.op} has Layout.AXIS but no axis_attr")

    def reshape_like(self, node: Node, p: Perm) -> None:
        x = node.arg(0)
        logical_in = tuple(x.shape[i] for i in inverse(p))
        logical_out = node.output.shape
        q = unit_reshape_perm(logical_in, p, logical_out)
        if q is not None and (p != identity(len(p)) or (q == NHWC and self.feeds_spatial(node))):
            # only size-1 axes come or go: the output keeps the input's bytes in a
            # permutation of its own (NHWC for the 2-D form of a 1-D op, NLC back)
            self.to_reshape(node, tuple(logical_out[a] for a in q))
            self.set_perm(node.output, q)
            return
        if p == identity(len(p)):
            self.retype(node, identity(len(logical_out)))
            return
        if memory_order_kept(logical_in, p):
            self.to_reshape(node, logical_out)
            return
        users = node.output.users()
        if (len(logical_out) == 2 and logical_out[0] == logical_in[0] == 1 and users
                and node.output not in self.graph.outputs
                and all(u.op == "FullyConnected" and u.inputs[0] is node.output
                        and u.const_input(1) is not None for u in users)):
            columns = np.arange(logical_out[1]).reshape(logical_in).transpose(p).reshape(-1)
            for user in users:
                weight = user.arg(1)
                permuted = weight.constant.take(columns, axis=1)  # C-contiguous: one copy
                user.set_input(1, self.graph.add_constant(permuted, weight.name + "_nhwc",
                                                          take=True))
                self.graph.release_if_dead(weight)
            self.ctx.remark(node, "FC weight columns permuted instead of transposing data")
            self.to_reshape(node, logical_out)
            return
        self.use(node, 0, identity(len(p)))
        self.retype(node, identity(len(logical_out)))

    def feeds_spatial(self, node: Node) -> bool:
        users = node.output.users()
        return bool(users) and node.output not in self.graph.outputs and all(
            get_op(u.op).layout is Layout.SPATIAL and u.inputs[0] is node.output
            for u in users)

    def to_reshape(self, node: Node, shape: tuple[int, ...]) -> None:
        """Turn ``node`` into ``Reshape(x, shape)`` on the physical data."""
        target = self.graph.add_constant(np.array(shape, np.int64), node.name + "_shape")
        node.op = "Reshape"
        node.attrs = {}
        for index in range(1, len(node.inputs)):
            node.set_input(index, None)
        del node.inputs[1:]
        node.inputs.append(None)
        node.set_input(1, target)
        self.retype(node, identity(len(shape)))


def unit_reshape_perm(logical_in: tuple[int, ...], p: Perm, logical_out: tuple[int, ...]
                      ) -> Perm | None:
    """A permutation ``q`` of the output of a reshape that only inserts or removes size-1
    axes, such that ``logical_out`` stored by ``q`` has the bytes of ``logical_in`` stored
    by ``p``; None for any other reshape. Preferred: NHWC (rank 4), ``(0, 2, 1)`` (rank 3,
    the channels-last form of ``[N, C, L]``), the identity."""
    if [d for d in logical_in if d != 1] != [d for d in logical_out if d != 1]:
        return None
    in_axes = [a for a in range(len(logical_in)) if logical_in[a] != 1]
    out_axes = [a for a in range(len(logical_out)) if logical_out[a] != 1]
    order = [out_axes[in_axes.index(a)] for a in p if logical_in[a] != 1]
    rank = len(logical_out)
    candidates = [NHWC] if rank == 4 else [(0, 2, 1)] if rank == 3 else []
    for q in [*candidates, identity(rank)]:
        if [a for a in q if logical_out[a] != 1] == order:
            return q
    units = [a for a in range(rank) if logical_out[a] == 1]
    return tuple(units + order)


def already_nlc(value: Value) -> bool:
    """A 3-D graph input ``[N, C, L]`` read only by the 2-D form of 1-D ops
    (``Unsqueeze(x, 2)`` into a spatial op): stored ``[N, L, C]``, it is their NHWC input."""
    users = value.users()
    return value.type.rank == 3 and bool(users) and all(
        u.op == "Unsqueeze" and tuple(a % 4 for a in u.attr("axes") or ()) == (2,)
        and all(get_op(v.op).layout is Layout.SPATIAL for v in u.output.users())
        for u in users)


def already_nhwc(value: Value) -> bool:
    """A graph input stored NHWC already: every reader is the layout Transpose to NCHW
    (``perm=(0, 3, 1, 2)``, what tf2onnx writes after a Keras model's input). It keeps
    the model's own interface layout; the Transposes then move no data."""
    users = value.users()
    return bool(users) and all(u.op == "Transpose" and tuple(u.attr("perm") or ()) ==
                               inverse(NHWC) for u in users)


@register_pass
@dataclass(frozen=True)
class ToNHWC(Pass):
    name = "to-nhwc"
    summary = "convert the whole graph to NHWC once, with no Transpose between convs"
    inputs: Literal["nhwc", "nchw"] = "nhwc"
    outputs: Literal["nhwc", "nchw"] = "nhwc"
    provides = (NHWC_FACT,)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        if "io_perms" in graph.meta:  # converted already: a second run would re-permute
            ctx.remark(graph.name, "skipped: the graph was already converted by to-nhwc")
            return
        rewriter = LayoutRewriter(graph, ctx)
        io_perms: dict[str, list[int]] = {}
        if self.inputs == "nhwc":
            for value in graph.inputs:
                if value.type.rank == 4 and not already_nhwc(value):
                    shape = value.shape
                    value.set_type(value.type.with_shape([shape[a] for a in NHWC]))
                    rewriter.set_perm(value, NHWC)
                    io_perms[value.name] = list(NHWC)
                elif already_nlc(value):
                    shape = value.shape
                    value.set_type(value.type.with_shape([shape[0], shape[2], shape[1]]))
                    rewriter.set_perm(value, (0, 2, 1))
                    io_perms[value.name] = [0, 2, 1]
        for node in list(graph.nodes):
            if node.graph is graph:
                try:
                    rewriter.visit(node)
                except ShapeError as exc:
                    raise self.fail(node, str(exc)) from None
        for index, value in enumerate(list(graph.outputs)):
            p = rewriter.perm(value)
            if p == identity(len(p)):
                continue
            if self.outputs == "nchw":
                inv = inverse(p)
                node = graph.add_node("Transpose", [value], {"perm": inv},
                                      name=value.name + "_to_nchw")
                graph.outputs[index] = node.output
                name = value.name
                graph.rename_value(value, name + "_nhwc")
                graph.rename_value(node.output, name)
            else:
                io_perms[value.name] = list(p)
        graph.meta["io_perms"] = io_perms
