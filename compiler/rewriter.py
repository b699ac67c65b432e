"""Rewrite rules as data: pattern (root ops) / check (``match``) / rewrite.

A rule's ``match`` returns a ``Match`` (captured nodes/values) or a ``Reject``
carrying the reason the rewrite does not apply; ``apply_rules`` indexes rules by
root op, applies them to a fixed point, and records every rejection as a remark
(``microlith compile --remarks``), so "why did my BatchNorm not fold?" has an
answer. Small graph helpers used by many passes live here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from microlith.ir.core import Graph, Node, Value
from microlith.pipeline.pass_base import PassContext


@dataclass
class Match:
    """What a rule captured: named nodes and values, plus free-form data."""

    root: Node
    nodes: dict[str, Node] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """A rule does not apply; ``reason`` says why (e.g. 'conv output has 2 users')."""

    reason: str


class RewriteRule:
    """Subclass and set ``root_ops``; implement ``match`` and ``rewrite``."""

    root_ops: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return type(self).__name__

    def match(self, node: Node) -> Match | Reject:
        raise NotImplementedError

    def rewrite(self, graph: Graph, match: Match) -> None:
        raise NotImplementedError


def apply_rules(graph: Graph, rules: Sequence[RewriteRule], ctx: PassContext,
                max_rounds: int = 50) -> int:
    """Apply ``rules`` until none fires; return the number of rewrites."""
    by_op: dict[str, list[RewriteRule]] = {}
    for rule in rules:
        for op in rule.root_ops:
            by_op.setdefault(op, []).append(rule)
    total = 0
    for _ in range(max_rounds):
        fired = 0
        for node in list(graph.nodes):
            if node.graph is not graph:
                continue  # removed by an earlier rewrite this round
            for rule in by_op.get(node.op, ()):
                result = rule.match(node)
                if isinstance(result, Reject):
                    ctx.remark(node, f"{rule.name}: not applied: {result.reason}")
                    continue
                rule.rewrite(graph, result)
                ctx.remark(node, f"{rule.name}: applied")
                fired += 1
                break
        total += fired
        if not fired:
            return total
        graph.sort()
    return total


def producer(value: Value | None, *ops: str) -> Node | None:
    """The node defining ``value`` if its op is one of ``ops`` (any op if none given)."""
    if value is None or value.producer is None:
        return None
    if ops and value.producer.op not in ops:
        return None
    return value.producer


def sole_user(value: Value, graph: Graph) -> Node | None:
    """The only consumer of ``value``, if it has exactly one use and is no graph output."""
    if len(value.uses) != 1 or value in graph.outputs:
        return None
    return value.uses[0].node


def bypass(graph: Graph, node: Node, replacement: Value | None = None) -> None:
    """Replace ``node``'s single output by ``replacement`` (default: its first input).

    If the output is a graph output, the replacement takes over its name so the
    model's interface keeps its ONNX tensor names.
    """
    new = replacement if replacement is not None else node.inputs[0]
    assert new is not None
    old = node.output
    graph.replace_all_uses(old, new)
    is_output = new in graph.outputs and not new.is_constant
    graph.remove_node(node)
    if is_output and old.name not in graph.values and new not in graph.inputs:
        graph.rename_value(new, old.name)
