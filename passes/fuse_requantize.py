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
An index op (``Int8Rule.INDEX``: ArgMax / ArgMin) reads the int8 values the same way; its
integer output has no QUANTIZE. Nodes left in float (``insert-qdq{fallback=float}``) keep
their DQ/Q, which become DEQUANTIZE/QUANTIZE ops. A ``Q(DQ(x))`` of an integer ``x`` (the
int8 <-> int16 border of a mixed model, ``insert-qdq{int16=...}``) becomes one requantizing
QUANTIZE.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.ir.core import Graph, Node
from microlith.ir.ops import Int8Rule, all_ops, get_op
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
        if node.meta.get("keep_float"):
            return Reject("kept in float by insert-qdq")
        sources = []
        for value in node.inputs:
            if value is None or (value.is_constant and not value.dtype.is_float):
                sources.append(value)  # absent, or an integer operand such as a shape
                continue
            dq = value.producer
            if dq is None or dq.op != "DequantizeLinear":
                return Reject(f"input {value.name!r} is not dequantized")
            sources.append(dq.arg(0))
        if get_op(node.op).int8 is Int8Rule.INDEX:  # an index of int8 values: no output Q
            if any(out.dtype.is_float for out in node.outputs):
                return Reject("an index op with a float output")
            return Match(node, {}, {"sources": sources})
        q = sole_user(node.output, node.owner)
        if q is None or q.op != "QuantizeLinear" or q.output.dtype.value not in ("i8", "i16"):
            return Reject("output is not quantized to int8/int16 by a single QuantizeLinear")
        kinds = {s.dtype.value for s in sources if s is not None and s.quant is not None
                 and not s.dtype.is_float and not s.is_constant}
        if kinds and kinds != {q.output.dtype.value}:
            return Reject("inputs and output differ in width (int8 vs int16)")
        return Match(node, {"q": q}, {"sources": sources})

    def rewrite(self, graph: Graph, match: Match) -> None:
        node, q = match.root, match.nodes.get("q")
        dequantizes = [v.producer for v in node.inputs if v is not None and v.producer is not None]
        for index, source in enumerate(match.data["sources"]):
            node.set_input(index, source)
        if q is None:  # an index op (Int8Rule.INDEX): its output stays
            _remove_dead_dequantize(graph, dequantizes)
            return
        quantized = q.output
        # a graph output keeps its interface name; otherwise the op keeps its own
        name = quantized.name if quantized in graph.outputs else node.output.name
        node.output.set_type(quantized.type)
        graph.replace_all_uses(quantized, node.output)
        graph.remove_node(q)
        graph.rename_value(node.output, name)
        _remove_dead_dequantize(graph, dequantizes)  # only the DQs this node read can die


class Requantize(RewriteRule):
    """``Q(DQ(x))`` with an integer ``x``: one requantizing QUANTIZE (int8 <-> int16)."""

    root_ops = ("QuantizeLinear",)

    def match(self, node: Node) -> Match | Reject:
        dq = node.arg(0).producer if node.arg(0) is not None else None
        if dq is None or dq.op != "DequantizeLinear":
            return Reject("input is not dequantized")
        source = dq.arg(0)
        if source is None or source.quant is None or source.dtype.is_float or \
                source.is_constant:
            return Reject("the dequantized value is not an integer activation")
        return Match(node, {"dq": dq}, {"source": source})

    def rewrite(self, graph: Graph, match: Match) -> None:
        match.root.set_input(0, match.data["source"])
        _remove_dead_dequantize(graph, [match.nodes["dq"]])


def _remove_dead_dequantize(graph: Graph, candidates: list[Node] | None = None) -> None:
    """Remove the unused DequantizeLinear nodes among ``candidates`` (default: all nodes)."""
    for node in list(graph.nodes) if candidates is None else candidates:
        if node.graph is graph and node.op == "DequantizeLinear" and not node.output.uses \
                and node.output not in graph.outputs:
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
        apply_rules(graph, [Requantize()], ctx)
        _remove_dead_dequantize(graph)
        for value in list(graph.values.values()):
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
