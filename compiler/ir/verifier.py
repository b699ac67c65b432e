"""Structural checks of a graph: use-def links, topological order, op arity, types.

``verify(graph)`` raises ``VerificationError`` naming the first broken node;
``PassManager`` runs it between passes with ``--verify-each``.
"""

from __future__ import annotations

from microlith.ir.core import Graph, Use
from microlith.ir.ops import ACTIVATIONS, NeedsConstant, ShapeError, get_op, is_registered


class VerificationError(ValueError):
    """The graph breaks an IR invariant; the message names the node or value."""


def verify(graph: Graph) -> None:
    """Check every invariant; raise ``VerificationError`` on the first violation."""
    defined: set[int] = {id(v) for v in graph.inputs}
    for key, value in graph.values.items():
        if value.name != key:
            raise VerificationError(f"value table is inconsistent at {key!r} "
                                    f"(holds value {value.name!r})")
        if value.is_constant:
            if value.producer is not None:
                raise VerificationError(f"constant {value.name!r} has a producer")
            defined.add(id(value))
            if tuple(value.constant.shape) != value.shape:
                raise VerificationError(f"constant {value.name!r} data shape "
                                        f"{value.constant.shape} != type {value.shape}")
    for node in graph.nodes:
        where = f"node {node.name!r} ({node.op})"
        if node.graph is not graph:
            raise VerificationError(f"{where} does not belong to this graph")
        if not is_registered(node.op):
            raise VerificationError(f"{where}: unknown op")
        opdef = get_op(node.op)
        lo, hi = opdef.inputs
        if not lo <= len(node.inputs) <= hi:
            raise VerificationError(f"{where}: {len(node.inputs)} inputs, expected {lo}..{hi}")
        unknown = set(node.attrs) - set(opdef.attrs)
        if unknown:
            raise VerificationError(f"{where}: unknown attributes {sorted(unknown)}")
        if opdef.fusable_activation and node.attr("activation") not in ACTIVATIONS:
            raise VerificationError(f"{where}: bad activation {node.attr('activation')!r}")
        for index, operand in enumerate(node.inputs):
            if operand is None:
                continue
            if graph.values.get(operand.name) is not operand:
                raise VerificationError(f"{where}: input {index} {operand.name!r} is not in the "
                                        "graph")
            if id(operand) not in defined:
                raise VerificationError(
                    f"{where}: input {index} {operand.name!r} is used before it is defined")
            if operand.uses.count(Use(node, index)) != 1:
                raise VerificationError(f"{where}: use list of {operand.name!r} holds input "
                                        f"{index} {operand.uses.count(Use(node, index))} times")
        for value in node.outputs:
            if value.producer is not node:
                raise VerificationError(f"{where}: output {value.name!r} has another producer")
            if graph.values.get(value.name) is not value:
                raise VerificationError(f"{where}: output {value.name!r} is not in the graph")
            defined.add(id(value))
        try:
            expected = opdef.infer(node)
        except NeedsConstant:
            continue
        except ShapeError as exc:
            raise VerificationError(f"{where}: {exc}") from None
        for value, type in zip(node.outputs, expected, strict=False):
            if value.shape != type.shape:
                raise VerificationError(f"{where}: output {value.name!r} has shape "
                                        f"{value.shape}, inference gives {type.shape}")
            if value.dtype != type.dtype:
                raise VerificationError(f"{where}: output {value.name!r} has element type "
                                        f"{value.dtype}, inference gives {type.dtype}")
    for value in graph.values.values():
        for use in value.uses:
            if use.node.graph is not graph or use.node.input(use.index) is not value:
                raise VerificationError(f"stale use of {value.name!r} by {use.node.name!r}")
    for value in graph.outputs:
        if id(value) not in defined:
            raise VerificationError(f"graph output {value.name!r} is never defined")
