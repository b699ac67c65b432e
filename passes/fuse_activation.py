"""``fuse-activation``: Relu / Relu6 / Clip(-1,1) folded into the producer's ``activation``.

``Relu(op(x))`` and ``Clip{min,max}(op(x))`` with (min, max) in {(0, inf) -> RELU,
(0, 6) -> RELU6, (-1, 1) -> RELU_N1_TO_1} become ``op(x){activation=...}`` when
``op`` can fuse an activation (Conv, ConvTranspose, FullyConnected, Add, Sub,
Mul, Div, pools, Concat), has none yet, and the activation is its only user.
Not fused: other Clip bounds, producers with several users (the pre-activation
value would be lost), LeakyRelu/Sigmoid (no TFLite fused form).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from microlith.ir.core import Graph, Node
from microlith.ir.ops import get_op
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, bypass, sole_user

CLIP_ACTIVATIONS = {(0.0, math.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


def activation_of(node: Node) -> str | None:
    """The fused-activation name equivalent to a Relu/Clip node, or None."""
    if node.op == "Relu":
        return "RELU"
    if node.op == "Clip":
        return CLIP_ACTIVATIONS.get((float(node.attr("min")), float(node.attr("max"))))
    return None


class FuseIntoProducer(RewriteRule):
    root_ops = ("Relu", "Clip")

    def match(self, node: Node) -> Match | Reject:
        activation = activation_of(node)
        if activation is None:
            return Reject(f"clip bounds ({node.attr('min')}, {node.attr('max')}) have no "
                          "fused form")
        source = node.inputs[0].producer if node.inputs[0] is not None else None
        if source is None:
            return Reject("input is not produced by a node")
        if not get_op(source.op).fusable_activation:
            return Reject(f"producer {source.name} ({source.op}) cannot fuse an activation")
        if source.attr("activation", "NONE") != "NONE":
            return Reject(f"producer {source.name} already has an activation")
        if sole_user(source.output, node.owner) is not node:
            return Reject(f"producer {source.name} output has other users")
        return Match(node, {"source": source}, {"activation": activation})

    def rewrite(self, graph: Graph, match: Match) -> None:
        match.nodes["source"].attrs["activation"] = match.data["activation"]
        bypass(graph, match.root)


@register_pass
@dataclass(frozen=True)
class FuseActivation(Pass):
    name = "fuse-activation"
    summary = "fold Relu/Relu6/Clip into the producing op's fused activation"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        apply_rules(graph, [FuseIntoProducer()], ctx)
