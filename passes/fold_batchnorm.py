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

Never silently different maths: ``var + epsilon`` must be positive in every channel
(otherwise the BN itself is NaN/Inf there: refused, naming the node and channel).
When the folded weights or bias would overflow float32 although every input is
finite, the BN is not folded but kept as the mul-add (which computes what the BN
does, like onnxruntime); when even ``s`` or the shift overflow float32, it is refused.
NaN/Inf already in the parameters (warned about at import) is carried along.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ops.common import spatial_axes
from microlith.passes.lower_fc import lower_to_fc, plan_fc
from microlith.pipeline import Pass, PassContext, RewriteFailure, register_pass
from microlith.rewriter import Match, Reject, RewriteRule, apply_rules, bypass, sole_user

FOLD_INTO = ("Conv", "ConvTranspose", "FullyConnected", "Gemm", "MatMul")


F32_MAX = float(np.finfo(np.float32).max)


def _overflows(result: np.ndarray, *sources: np.ndarray) -> bool:
    """``result`` leaves float32's range although every source is finite."""
    finite = all(bool(np.isfinite(s).all()) for s in sources)
    with np.errstate(invalid="ignore"):
        return finite and not bool((np.abs(result) <= F32_MAX).all())


@np.errstate(all="ignore")  # NaN/Inf parameters were reported at import; overflow is checked
def bn_scale_shift(node: Node) -> tuple[np.ndarray, np.ndarray] | Reject:
    """Per-channel (s, beta - mean * s) of a BN node with constant parameters (float64).

    Raises ``RewriteFailure`` when ``var + epsilon`` is not positive in some channel or
    when ``s`` or the shift overflow float32 (see the module docstring).
    """
    params = [node.const_input(i) for i in range(1, 5)]
    if any(p is None for p in params):
        return Reject("scale, bias, mean and variance are not all constants")
    gamma, beta, mean, var = (np.asarray(p, np.float64).reshape(-1) for p in params)
    epsilon = float(node.attr("epsilon", 1e-5))
    bad = np.flatnonzero(var + epsilon <= 0)
    if len(bad):
        channel = int(bad[0])
        raise RewriteFailure(node, f"variance + epsilon is not positive in channel {channel} "
                                   f"(variance {var[channel]:.6g}, epsilon {epsilon:.6g})")
    scale = gamma / np.sqrt(var + epsilon)
    shift = beta - mean * scale
    if _overflows(scale, gamma, var) or _overflows(shift, beta, mean, gamma, var):
        raise RewriteFailure(node, "its scale gamma / sqrt(var + epsilon) or shift overflows "
                                   "float32")
    return scale, shift


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
                if plan.alpha is not None:
                    return Reject(f"{source.name} scales its product by alpha "
                                  f"{float(plan.alpha):.6g} after the matrix product")
        elif channel_axis(node, len(node.output.shape)) != channel_axis(
                source, len(source.output.shape)):
            return Reject("BN and producer disagree on the channel axis")
        folded = _folded(source, *params)
        if isinstance(folded, Reject):
            return folded
        return Match(node, {"source": source}, {"weight": folded[0], "bias": folded[1]})

    def rewrite(self, graph: Graph, match: Match) -> None:
        source = match.nodes["source"]
        if source.op in ("Gemm", "MatMul"):
            lowered = lower_to_fc(graph, source)
            assert not isinstance(lowered, Reject), lowered
            source = lowered
        new_weight, new_bias = match.data["weight"], match.data["bias"]
        _set_const(graph, source, 1, new_weight)
        if len(source.inputs) < 3:
            source.inputs.append(None)
        _set_const(graph, source, 2, new_bias)
        bypass(graph, match.root)


@np.errstate(all="ignore")
def _folded(source: Node, scale: np.ndarray, shift: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray] | Reject:
    """(W * s, b * s + shift) in float32 for the linear op ``source``, or why not.

    Gemm/MatMul are lowered to FullyConnected by ``rewrite`` first: their weight [N, K]
    is ``plan_fc``'s, with the bias it absorbs.
    """
    weight_data = source.arg(1).data
    bias_data = source.const_input(2)
    axis = 1 if source.op == "ConvTranspose" and source.attr("layout") != "NHWC" else 0
    if source.op in ("Gemm", "MatMul"):
        plan = plan_fc(source.owner, source)
        assert not isinstance(plan, Reject), plan
        weight_data, axis = np.asarray(plan.weight, np.float32), 0  # as lower_to_fc stores
        bias_data = None if plan.bias is None else np.asarray(plan.bias, np.float32)
    weight = np.asarray(weight_data, np.float64)
    shape = [1] * weight.ndim
    shape[axis] = -1
    bias = np.zeros_like(scale) if bias_data is None else np.asarray(bias_data, np.float64)
    new_weight = weight * scale.reshape(shape)
    new_bias = bias * scale + shift
    if _overflows(new_weight, weight, scale) or _overflows(new_bias, bias, scale, shift):
        return Reject(f"folding into {source.name} would overflow float32; kept as a "
                      "multiply-add")
    return new_weight.astype(np.float32), new_bias.astype(np.float32)


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

    @np.errstate(all="ignore")
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
