"""``legalize-tflite``: rewrite every node into TFLite builtin operators (``tfl.*``).

After this pass the graph is exactly what the ``.tflite`` will contain, operator for
operator, with TFLite's options as attributes: the writer (``microlith.backends.tflite``)
only translates. First every node is checked (all problems reported at once, with a hint
such as "run fold-batchnorm" where a pass removes the op); nothing is changed then.

Rewrites (rules in ``microlith.passes.tflite_rules``): explicit pads that SAME / VALID
cannot express become a ``tfl.pad`` (``tfl.padv2`` with the lowest value for max
pooling) before a VALID op; a grouped convolution that is not depthwise becomes
``tfl.split`` + one ``tfl.conv_2d`` per group + ``tfl.concatenation``; ``Clip`` becomes
``tfl.relu6`` / ``tfl.relu`` or ``tfl.maximum`` / ``tfl.minimum`` and ``HardSigmoid``
``relu6(6a x + 6b) / 6`` (TFLite-Micro has no RELU_N1_TO_1 / RELU_0_TO_1 kernels);
reshape-like ops become ``tfl.reshape``; shape-like operands (paddings, axes, perm, shape)
become int32 constants. Quantized convolutions keep an absent bias absent; float ones
get explicit zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.diagnostics import BackendError, capped
from microlith.ir.core import Graph
from microlith.passes.tflite_rules import RULES, claim_names, hint
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import TARGET_OPS, TFLITE_OPS


def check_legal(graph: Graph) -> None:
    """Raise one BackendError listing every node that has no TFLite lowering."""
    problems: list[str] = []
    first = None
    for node in graph.nodes:
        if node.op.startswith("tfl."):
            continue
        rule = RULES.get(node.op)
        reason = f"no TFLite lowering{hint(node.op)}" if rule is None else (
            rule.check(node) if rule.check is not None else None)
        if reason:
            problems.append(f"{node.name} ({node.op}): {reason}")
            first = first or node
    if problems:
        raise BackendError("tflite backend cannot emit: " + capped(problems, "; "), node=first)


@register_pass
@dataclass(frozen=True)
class LegalizeTFLite(Pass):
    name = "legalize-tflite"
    summary = "rewrite every op into TFLite builtin operators (tfl.*; all problems at once)"
    provides = (TFLITE_OPS, TARGET_OPS)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        check_legal(graph)
        for value in list(graph.values.values()):  # dead constants would hold names
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
        for node in list(graph.nodes):
            if not node.op.startswith("tfl."):
                RULES[node.op].rewrite(graph, node)
        for value in list(graph.values.values()):  # operands replaced by new constants
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
        claim_names(graph)
