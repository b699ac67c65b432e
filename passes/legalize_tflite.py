"""``legalize-tflite``: check that every node has a TFLite lowering, before emitting.

Every problem is reported at once (node name, op and the reason, with a hint
such as "run fold-batchnorm" where a pass would have removed the op). The graph
is not changed. The TFLite backend runs the same check, so a custom pipeline
without this pass still fails clearly, only later.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.backends.tflite.lowering import check_legal
from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, register_pass


@register_pass
@dataclass(frozen=True)
class LegalizeTFLite(Pass):
    name = "legalize-tflite"
    summary = "check every op can be emitted as a TFLite builtin (all problems at once)"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        check_legal(graph)
