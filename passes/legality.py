"""Target legality checked early: before calibration spends time on representative data.

``preflight(graph, passes)`` looks at the canonical graph (what ``calibrate`` receives)
and at the rest of the pipeline: with ``legalize-tflite`` (or ``legalize-c``) later,
every node must have that target's lowering rule and pass its check (the same rules and
checks the legalize pass applies at the end); with ``insert-qdq`` later, every float node
must have an int8 kernel, unless ``insert-qdq{fallback=float}`` keeps it in float (both
targets run such a node with its float kernel between DEQUANTIZE and QUANTIZE). All
problems are reported at once, as one ``BackendError``; nothing is changed.

Deliberately not handled: conditions only the quantized graph shows (a C kernel's
accumulator bound) are still checked where they arise.
"""

from __future__ import annotations

from collections.abc import Sequence

from microlith.diagnostics import BackendError
from microlith.ir.core import Graph
from microlith.passes import legalize_c
from microlith.passes.insert_qdq import selected, split_integer_nodes, split_names
from microlith.passes.tflite_rules import RULES as TFLITE_RULES
from microlith.passes.tflite_rules import hint
from microlith.pipeline import Pass
from microlith.quant.limits import int8_refusal

EDGE_OPS = ("QuantizeLinear", "DequantizeLinear")


def _lowering_problems(graph: Graph, target: str) -> list[str]:
    problems = []
    for node in graph.nodes:
        if node.op.startswith(("tfl.", "c.")) or node.op in EDGE_OPS:
            continue
        label = f"{node.name} ({node.op})"
        if target == "c":
            entry = legalize_c.RULES.get(node.op)
            reason = f"no C kernel for op {node.op}" if entry is None else entry[1](node)
        else:
            rule = TFLITE_RULES.get(node.op)
            reason = f"no TFLite lowering{hint(node.op)}" if rule is None else (
                rule.check(node) if rule.check is not None else None)
        if reason:
            problems.append(f"{label}: {reason}")
    return problems


def preflight(graph: Graph, passes: Sequence[Pass]) -> None:
    """Raise one ``BackendError`` listing what the rest of ``passes`` would refuse."""
    names = [p.name for p in passes]
    target = "c" if "legalize-c" in names else "tflite" if "legalize-tflite" in names else None
    problems = [] if target is None else _lowering_problems(graph, target)
    qdq = next((p for p in passes if p.name == "insert-qdq"), None)
    advice = ""
    if qdq is not None:
        fallback = getattr(qdq, "fallback", "none")
        keep = selected(graph, split_names(getattr(qdq, "keep_float", "")), "--keep-float")
        wide = getattr(qdq, "activations", "int8") == "int16"
        _, refused = split_integer_nodes(graph, wide, keep, fallback)
        if refused and fallback != "float":
            listed = {p.split(":")[0] for p in problems}
            kind = "16x8" if wide else "int8"
            missing = [f"{n.name} ({n.op})" + (f" [{why}]" if (why := int8_refusal(n)) else "")
                       for n in refused if f"{n.name} ({n.op})" not in listed]
            if missing:
                problems.append(f"no {kind} kernel for: {', '.join(missing)}")
            advice = ("; use --fallback float to keep them in float between "
                      "DEQUANTIZE/QUANTIZE")
    if problems:
        first = next((n for n in graph.nodes if any(f"{n.name} ({n.op})" in p
                                                     for p in problems)), None)
        where = target or "the pipeline"
        raise BackendError(f"{where} target cannot compile this model (checked before "
                           f"calibration): " + "; ".join(problems) + advice, node=first)
