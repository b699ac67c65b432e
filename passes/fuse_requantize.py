"""``fuse-requantize``: ``DQ -> op -> Q`` islands become integer kernels.

For a node whose every input is a ``DequantizeLinear`` output and whose output
feeds exactly one ``QuantizeLinear`` (and nothing else), the node reads the int8
values directly and its output takes the Q's int8 type; the Q disappears and
the orphaned DQs are removed. The integer semantics are the TFLite int8
kernels': int32 accumulation of ``(x - zp_x) * w`` plus the int32 bias, then the
effective multiplier ``M = s_x * s_w[c] / s_y`` applied as a Q31 fixed-point
multiplier and shift (``QuantizeMultiplier``, Jacob et al. 2018), plus ``zp_y``,
clamped to the fused activation's quantized range. Multipliers are derived from
the scales in the value types (as TFLite-Micro derives them from the
flatbuffer), so nothing here can disagree with the emitted model.
Nodes left in float (``insert-qdq{fallback=float}``) keep their DQ/Q, which
become DEQUANTIZE/QUANTIZE ops. A remaining ``DQ(int8) -> Q(int8)`` pair (a requantize
that ``insert-qdq`` wrote for a model's own quantization) becomes one integer
``QuantizeLinear`` from the int8 value.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph, Node
from microlith.ir.ops import all_ops
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import INTEGER, QDQ
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, sole_user


def int8_ops() -> tuple[str, ...]:
    """The ONNX-level ops with an int8 rule (``OpDef.has_int8_kernel``)."""
    return tuple(sorted(name for name, opdef in all_ops().items()
                        if opdef.has_int8_kernel and opdef.dialect == "onnx"))


class FuseIsland(RewriteRule):
    @property
    def root_ops(self) -> tuple[str, ...]:  # type: ignore[override]
        return int8_ops()

    def match(self, node: Node) -> Match | Reject:
        sources = []
        for value in node.inputs:
            if value is None or (value.is_constant and not value.dtype.is_float):
                sources.append(value)  # absent, or an integer operand such as a shape
                continue
            dq = value.producer
            if dq is None or dq.op != "DequantizeLinear":
                return Reject(f"input {value.name!r} is not dequantized")
            sources.append(dq.arg(0))
        q = sole_user(node.output, node.owner)
        if q is None or q.op != "QuantizeLinear" or q.output.dtype.value != "i8":
            return Reject("output is not quantized to int8 by a single QuantizeLinear")
        return Match(node, {"q": q}, {"sources": sources})

    def rewrite(self, graph: Graph, match: Match) -> None:
        node, q = match.root, match.nodes["q"]
        for index, source in enumerate(match.data["sources"]):
            node.set_input(index, source)
        quantized = q.output
        # a graph output keeps its interface name; otherwise the op keeps its own
        name = quantized.name if quantized in graph.outputs else node.output.name
        node.output.set_type(quantized.type)
        graph.replace_all_uses(quantized, node.output)
        graph.remove_node(q)
        graph.rename_value(node.output, name)
        _remove_dead_dequantize(graph)


class FuseRequantizePair(RewriteRule):
    """``DQ(q: int8) -> Q(int8)``: one integer QUANTIZE from ``q``'s parameters to the Q's
    (``insert-qdq`` writes this pair where a model's quantization needs a requantize)."""

    root_ops = ("QuantizeLinear",)

    def match(self, node: Node) -> Match | Reject:
        dq = node.arg(0).producer if node.arg(0) is not None else None
        if dq is None or dq.op != "DequantizeLinear":
            return Reject("input is not dequantized")
        if dq.arg(0).dtype.value != "i8" or node.output.dtype.value != "i8":
            return Reject("not an int8 -> int8 requantize")
        source = dq.arg(0).quant
        if source is None or source.per_axis:
            return Reject("the source is not quantized per tensor")
        return Match(node, {"dq": dq})

    def rewrite(self, graph: Graph, match: Match) -> None:
        match.root.set_input(0, match.nodes["dq"].arg(0))
        _remove_dead_dequantize(graph)


def _remove_dead_dequantize(graph: Graph) -> None:
    for node in list(graph.nodes):
        if node.op == "DequantizeLinear" and not node.output.uses and \
                node.output not in graph.outputs:
            graph.remove_node(node)


@register_pass
@dataclass(frozen=True)
class FuseRequantize(Pass):
    name = "fuse-requantize"
    summary = "turn DQ -> op -> Q islands into integer kernels (fixed-point requantization)"
    requires = (QDQ,)
    provides = (INTEGER,)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        apply_rules(graph, [FuseIsland()], ctx)
        apply_rules(graph, [FuseRequantizePair()], ctx)
        _remove_dead_dequantize(graph)
        for value in list(graph.values.values()):
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
