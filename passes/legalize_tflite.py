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
become int32 constants. Float convolutions without bias get explicit zeros (int8 ones
got a zero bias from ``insert-qdq``). A float16 constant (the float16 weight mode) gets a
``tfl.dequantize`` in front of its users; a FullyConnected with int8 weights and float
input (dynamic range) quantizes its input asymmetrically (``asymmetric_quantize_inputs``,
the converter's default). Last, the strided slices of an ONNX ``Split`` become one
``tfl.split`` / ``tfl.split_v`` (``microlith.passes.split_fusion``) and reshapes that
FULLY_CONNECTED or MEAN make redundant are removed (``microlith.passes.reshape_elision``).
"""

from __future__ import annotations

from dataclasses import dataclass

from microlith.diagnostics import BackendError, capped
from microlith.ir.core import Graph
from microlith.ir.types import DType, TensorType
from microlith.passes.reshape_elision import drop_redundant_reshapes
from microlith.passes.split_fusion import fuse_splits
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
        fuse_splits(graph, ctx)
        drop_redundant_reshapes(graph, ctx)
        for value in list(graph.values.values()):  # operands replaced by new constants
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
        dequantize_float16(graph)
        claim_names(graph)


def dequantize_float16(graph: Graph) -> None:
    """Each float16 constant (``quantize-weights{dtype=float16}``) gets one DEQUANTIZE to
    float32 in front of its users, as TFLite's converter writes float16 models: the float
    kernels read float32, the file stores half."""
    for value in list(graph.values.values()):
        if not value.is_constant or value.dtype != DType.FLOAT16 or not value.uses:
            continue
        users = sorted({id(u.node): u.node for u in value.uses}.values(),
                       key=graph.nodes.index)
        name = value.name[:-len("_fp16")] if value.name.endswith("_fp16") else value.name
        node = graph.add_node("tfl.dequantize", [value], name=name + "_dequantize",
                              output_types=[TensorType(DType.FLOAT32, value.shape)],
                              before=users[0])
        for use in list(value.uses):
            if use.node is not node:
                use.node.set_input(use.index, node.output)
