"""``fold-batchnorm``: inference BatchNormalization folded into the preceding linear op.

With ``s = gamma / sqrt(var + eps)`` per channel, ``BN(y) = s * (y - mean) + beta``.
After ``y = conv(x, W) + b`` this is ``conv(x, W * s) + (b - mean) * s + beta``:
``s`` scales output channel ``c`` of the weights (axis 0 of Conv OIHW/OHWI and
FullyConnected [N, K]; axis 1 of ConvTranspose [C_in, C_out, kH, kW]). Gemm and
MatMul are lowered to FullyConnected first (so they must be lowerable), and these
three fold only in 2-D, where their output channel (last axis) is BN's axis 1. The
linear op's output must have the BN as its only user (otherwise the unnormalized
value is still needed).
A BN with no foldable producer becomes ``Mul(x, s) + Add(.., beta - mean * s)``
with constants shaped to broadcast along the channel axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ops.common import spatial_axes
from microlith.passes.lower_fc import lower_to_fc, plan_fc
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, bypass, sole_user

FOLD_INTO = ("Conv", "ConvTranspose", "FullyConnected", "Gemm", "MatMul")


def bn_scale_shift(node: Node) -> tuple[np.ndarray, np.ndarray] | Reject:
    """Per-channel (s, beta - mean * s) of a BN node with constant parameters."""
    params = [node.const_input(i) for i in range(1, 5)]
    if any(p is None for p in params):
        return Reject("scale, bias, mean and variance are not all constants")
    gamma, beta, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    scale = gamma / np.sqrt(var + float(node.attr("epsilon", 1e-5)))
    return scale, beta - mean * scale


def channel_axis(node: Node, rank: int) -> int:
    if rank == 4:
        return spatial_axes(node.attr("layout", "NCHW"))[0]
    return 1 if rank > 1 else 0


class FoldIntoLinear(RewriteRule):
    root_ops = ("BatchNormalization",)

    def match(self, node: Node) -> Match | Reject:
        params = bn_scale_shift(node)
        if isinstance(params, Reject):
            return params
        source = node.inputs[0].producer if node.inputs[0] is not None else None
        if source is None or source.op not in FOLD_INTO:
            return Reject("input is not produced by Conv/ConvTranspose/Gemm/MatMul/"
                          "FullyConnected")
        if sole_user(source.output, node.owner) is not node:
            return Reject(f"{source.name} output has other users")
        if source.attr("activation", "NONE") != "NONE":
            return Reject(f"{source.name} already has a fused activation")
        weight = source.input(1)
        if weight is None or weight.data is None:
            return Reject(f"{source.name} weights are not constant")
        if source.op in ("Gemm", "MatMul", "FullyConnected"):
            # Their channel is the last axis; BN's is axis 1: the same only in 2-D.
            if len(source.output.shape) != 2:
                return Reject(f"{source.name} output is not 2-D")
            if source.op != "FullyConnected":
                plan = plan_fc(node.owner, source)
                if isinstance(plan, Reject):
                    return Reject(f"{source.name} cannot become FullyConnected: {plan.reason}")
        elif channel_axis(node, len(node.output.shape)) != channel_axis(
                source, len(source.output.shape)):
            return Reject("BN and producer disagree on the channel axis")
        return Match(node, {"source": source}, {"scale": params[0], "shift": params[1]})

    def rewrite(self, graph: Graph, match: Match) -> None:
        source = match.nodes["source"]
        if source.op in ("Gemm", "MatMul"):
            lowered = lower_to_fc(graph, source)
            assert not isinstance(lowered, Reject), lowered
            source = lowered
        scale, shift = match.data["scale"], match.data["shift"]
        weight = source.arg(1).data.astype(np.float64)
        axis = 1 if source.op == "ConvTranspose" and source.attr("layout") != "NHWC" else 0
        shape = [1] * weight.ndim
        shape[axis] = -1
        new_weight = (weight * scale.reshape(shape)).astype(np.float32)
        bias = source.const_input(2)
        bias = np.zeros_like(scale) if bias is None else bias.astype(np.float64)
        new_bias = (bias * scale + shift).astype(np.float32)
        _set_const(graph, source, 1, new_weight)
        if len(source.inputs) < 3:
            source.inputs.append(None)
        _set_const(graph, source, 2, new_bias)
        bypass(graph, match.root)


def _set_const(graph: Graph, node: Node, index: int, data: np.ndarray) -> Value:
    old = node.input(index)
    hint = (old.name if old is not None else node.name + "_bias") + "_bn"
    value = graph.add_constant(data, hint)
    node.set_input(index, value)
    return value


class LoneBatchNorm(RewriteRule):
    """Fallback for a BN that could not fold: an explicit per-channel multiply-add."""

    root_ops = ("BatchNormalization",)

    def match(self, node: Node) -> Match | Reject:
        params = bn_scale_shift(node)
        if isinstance(params, Reject):
            return params
        return Match(node, {}, {"scale": params[0], "shift": params[1]})

    def rewrite(self, graph: Graph, match: Match) -> None:
        node = match.root
        rank = len(node.output.shape)
        axis = channel_axis(node, rank)
        shape = [1] * (rank - axis)
        shape[0] = -1
        scale = graph.add_constant(match.data["scale"].reshape(shape).astype(np.float32),
                                   node.name + "_scale")
        shift = graph.add_constant(match.data["shift"].reshape(shape).astype(np.float32),
                                   node.name + "_shift")
        mul = graph.add_node("Mul", [node.arg(0), scale], name=node.name + "_mul",
                             before=node)
        add = graph.add_node("Add", [mul.output, shift], name=node.name + "_add", before=node)
        bypass(graph, node, add.output)


@register_pass
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    name = "fold-batchnorm"
    summary = "fold BatchNormalization into Conv/ConvTranspose/Gemm/MatMul, else a mul-add"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        apply_rules(graph, [FoldIntoLinear()], ctx)
        apply_rules(graph, [LoneBatchNorm()], ctx)
