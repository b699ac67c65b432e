"""``fuse-gelu``: PyTorch's erf form of GELU becomes one ``Gelu``.

``torch.nn.GELU()`` exports (before opset 20) as ``0.5 x (1 + erf(x / sqrt 2))``:
``Div(x, 1.4142...)`` (``Mul(x, 0.7071...)`` after import) -> ``Erf`` -> ``Add(., 1)`` ->
``Mul(x, .)`` -> ``Mul(., 0.5)``, or with the 0.5 applied to ``x`` first
(``Mul(Mul(x, 0.5), .)``). The chain's last ``Mul`` becomes ``Gelu(x)``; the rest dies
(``eliminate-dead``). Constants must equal 1/sqrt 2, 1 and 0.5 within 1e-6 relative and
each intermediate must have one user. TFLite has GELU but no ERF, so an ``Erf`` outside
this pattern stays unsupported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, sole_user


def _const_other(node: Node, value: Value) -> tuple[float | None, Value | None]:
    """For a binary node reading ``value``: (its other operand's scalar constant, or None;
    the other operand)."""
    others = [v for v in node.inputs if v is not value]
    if len(others) != 1 or others[0] is None:
        return None, None
    data = others[0].data
    if data is None or data.size != 1:
        return None, others[0]
    return float(np.asarray(data).reshape(-1)[0]), others[0]


def _close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-6)


class ErfGelu(RewriteRule):
    root_ops = ("Erf",)

    def match(self, node: Node) -> Match | Reject:
        scaled = node.arg(0).producer
        if scaled is None or scaled.op not in ("Mul", "Div"):
            return Reject("the Erf input is not x / sqrt 2")
        x = next((v for v in scaled.inputs if v is not None and v.data is None), None)
        if x is None:
            return Reject("the Erf input is not x / sqrt 2")
        factor, _ = _const_other(scaled, x)
        if not _close(factor, 1 / math.sqrt(2) if scaled.op == "Mul" else math.sqrt(2)):
            return Reject("the Erf input is not x / sqrt 2")
        add = sole_user(node.output, node.owner)
        if add is None or add.op != "Add" or not _close(_const_other(add, node.output)[0], 1.0):
            return Reject("erf is not followed by + 1")
        mul = sole_user(add.output, add.owner)
        if mul is None or mul.op != "Mul":
            return Reject("1 + erf is not multiplied")
        _, other = _const_other(mul, add.output)
        if other is x:
            last = sole_user(mul.output, mul.owner)
            if last is None or last.op != "Mul" or not _close(
                    _const_other(last, mul.output)[0], 0.5):
                return Reject("x (1 + erf) is not halved")
            return Match(node, {"last": last}, {"x": x})
        half = other.producer if other is not None else None
        if half is None or half.op != "Mul" or x not in half.inputs or not _close(
                _const_other(half, x)[0], 0.5):
            return Reject("1 + erf is not multiplied by x or x / 2")
        return Match(node, {"last": mul}, {"x": x})

    def rewrite(self, graph: Graph, match: Match) -> None:
        graph.rewrite_node(match.nodes["last"], "Gelu", [match.data["x"]],
                           {"approximate": "none"})


@register_pass
@dataclass(frozen=True)
class FuseGelu(Pass):
    name = "fuse-gelu"
    summary = "0.5 x (1 + erf(x / sqrt 2)) -> Gelu"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        apply_rules(graph, [ErfGelu()], ctx)
