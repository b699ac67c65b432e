"""``fold-pad``: an explicit zero ``Pad`` of the spatial dims absorbed into the next Conv.

``Conv(Pad(x, p), pads=q)`` equals ``Conv(x, pads=q + p)`` when the Pad is a
constant-zero pad of only the H and W dims (zero on N and C), the Conv is its
only user, and the Pad is not a graph output: a zero border is exactly what
the convolution's implicit padding adds. Works in either layout (H/W axes come
from the Conv's ``layout``). Not folded: non-zero pad values, pads on N or C,
pools (MaxPool pads with -inf and AveragePool may exclude the border from the
count, so a zero Pad is not equivalent).
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph, Node
from microlith.ops.common import spatial_axes
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, bypass, sole_user


class PadIntoConv(RewriteRule):
    root_ops = ("Pad",)

    def match(self, node: Node) -> Match | Reject:
        if node.attr("mode", "constant") != "constant" or float(node.attr("value", 0.0)) != 0.0:
            return Reject("pad value is not zero")
        user = sole_user(node.output, node.owner)
        if user is None or user.op != "Conv" or user.inputs[0] is not node.output:
            return Reject("the only user is not a Conv reading it as data")
        pads = node.attr("pads")
        rank = len(pads) // 2
        if rank != 4:
            return Reject("not a 4-D pad")
        c_ax, h_ax, w_ax = spatial_axes(user.attr("layout", "NCHW"))
        if any(pads[a] or pads[a + rank] for a in (0, c_ax)):
            return Reject("pads the batch or channel dimension")
        return Match(node, {"conv": user}, {"extra": (pads[h_ax], pads[w_ax], pads[h_ax + rank],
                                                      pads[w_ax + rank])})

    def rewrite(self, graph: Graph, match: Match) -> None:
        conv = match.nodes["conv"]
        conv.attrs["pads"] = tuple(
            int(a + b) for a, b in zip(conv.attr("pads", (0, 0, 0, 0)), match.data["extra"],
                                       strict=True))
        bypass(graph, match.root)


@register_pass
@dataclass(frozen=True)
class FoldPad(Pass):
    name = "fold-pad"
    summary = "absorb an explicit zero Pad into the following convolution's padding"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        apply_rules(graph, [PadIntoConv()], ctx)
