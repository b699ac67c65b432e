"""``legalize-c``: check that every node has a C kernel, reporting all problems at once.

The C target emits integer kernels only (plus QUANTIZE/DEQUANTIZE at float
interface edges), so a float model or a float-fallback op is named here with
the reason, before any file is written. The graph is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.diagnostics import BackendError
from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, register_pass


@register_pass
@dataclass(frozen=True)
class LegalizeC(Pass):
    name = "legalize-c"
    summary = "check every op has an int8 C kernel (all problems at once)"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        from microlith.backends.c.render_ops import RENDERERS, check_c_supported

        kept_in_float = set(graph.meta.get("float_fallback") or ())
        problems = []
        for node in graph.nodes:
            label = f"{node.name} ({node.op})"
            if label in kept_in_float:
                problems.append(label)
                continue
            reason = "no C kernel" if node.op not in RENDERERS else check_c_supported(node)
            if reason:
                problems.append(f"{label}: {reason}")
        if kept_in_float & set(problems):
            raise BackendError(
                "C target is integer-only and cannot emit the ops --fallback float kept in "
                "float (no int8 kernel; --target tflite can run them): " + "; ".join(problems))
        if problems:
            raise BackendError("C target cannot emit: " + "; ".join(problems))
