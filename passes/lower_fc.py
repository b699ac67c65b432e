"""``lower-fc``: Gemm and MatMul with a constant weight become ``FullyConnected``.

``FullyConnected(x, W, b)`` computes ``y = x @ W.T + b`` with ``W`` of shape [N, K],
the TFLite FULLY_CONNECTED layout. Gemm (transA=0, constant B and C):
``W = alpha * (B if transB else B.T)``, ``b = beta * C`` (C broadcast to [N]).
MatMul with a constant 2-D right operand: ``W = B.T``; a following Add of a
constant broadcastable to [N] (and the MatMul's only user) becomes the bias; a
fused activation on that Add (if ``fuse-activation`` ran first) moves to the FC.
Not handled: transA=1, non-constant weights (left to the backend, which will
name them), a C that varies along M.

onnxruntime computes ``alpha * (A @ B) + beta * C`` in float32: alpha scales the
product, not B. Folding alpha into W only rounds differently while the folded
weights stay far from float32's limits; when ``max|alpha * B|`` exceeds
``MAX_FOLDED_WEIGHT`` (2**64; or overflows), folding could overflow where onnxruntime
does not, so the Gemm becomes ``FullyConnected(x, B') * alpha + beta * C`` instead
(three ops, onnxruntime's order). ``fold-batchnorm`` does not fold into such a Gemm.
With ``beta = 0``, C is not read (NaN/Inf in it do not reach the output), as in BLAS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.rewriter import Reject, sole_user


def _bias_vector(data: np.ndarray, n: int) -> np.ndarray | None:
    """``data`` as a length-``n`` vector if it broadcasts to [.., n] without varying rows."""
    if data.size == 1:
        return np.full(n, data.reshape(-1)[0], np.float32)
    if data.shape[-1] == n and data.size == n:
        return data.reshape(n).astype(np.float32)
    return None


MAX_FOLDED_WEIGHT = 2.0**64


def _foldable_alpha(weight: np.ndarray, alpha: np.float32) -> np.ndarray | None:
    """``weight * alpha`` if that is safe to use instead of scaling the product."""
    if alpha == 1:  # the common case: no copy of a large matrix
        return weight
    scaled = weight * alpha
    if not np.isfinite(weight).all():  # NaN/Inf weights: reported at import
        return scaled
    return scaled if bool((np.abs(scaled) <= MAX_FOLDED_WEIGHT).all()) else None


@dataclass
class FCPlan:
    """How a Gemm/MatMul becomes FullyConnected: weight [N, K], bias, absorbed Add; with
    ``alpha`` set, the product is scaled by it before the bias is added (separate ops)."""

    weight: np.ndarray
    bias: np.ndarray | None
    absorbed: Node | None
    alpha: np.float32 | None = None


@np.errstate(all="ignore")  # NaN/Inf weights were reported at import; overflow is checked
def plan_fc(graph: Graph, node: Node) -> FCPlan | Reject:
    """Decide whether ``node`` (Gemm/MatMul) can be lowered; does not change the graph."""
    x, b = node.arg(0), node.arg(1)
    assert x is not None and b is not None
    if b.data is None or b.data.ndim != 2:
        return Reject("the weight operand is not a constant matrix")
    bias: np.ndarray | None = None
    absorbed: Node | None = None
    if node.op == "Gemm":
        if node.attr("transA", 0):
            return Reject("transA=1 is not supported")
        weight = b.data if node.attr("transB", 0) else b.data.T
        alpha = np.float32(node.attr("alpha", 1.0))
        folded = _foldable_alpha(weight, alpha)
        c = node.const_input(2)
        if node.input(2) is not None and c is None:
            return Reject("the C operand is not constant")
        if c is not None:
            beta = np.float32(node.attr("beta", 1.0))
            if beta == 0:  # C is not read at all (as in BLAS): 0 * Inf would be NaN
                c = np.where(np.isfinite(c), c, 0).astype(c.dtype)
            bias = _bias_vector(c * beta, weight.shape[0])
            if bias is None:
                return Reject(f"C of shape {c.shape} varies along M")
        if folded is None:
            return FCPlan(weight, bias, None, alpha)
        weight = folded
    else:
        weight = b.data.T
        user = sole_user(node.output, graph)
        if user is not None and user.op == "Add":
            other = user.arg(1) if user.inputs[0] is node.output else user.arg(0)
            if other is not None and other.data is not None and other.shape[-1:] == (
                    weight.shape[0],) and len(other.shape) <= len(node.output.shape):
                bias = _bias_vector(other.data, weight.shape[0])
                absorbed = user if bias is not None else None
    return FCPlan(weight, bias, absorbed)


def lower_to_fc(graph: Graph, node: Node) -> Node | Reject:
    """Replace a Gemm/MatMul by an equivalent FullyConnected node, or say why not.

    An absorbed bias Add hands its fused activation (if any) to the FullyConnected.
    """
    plan = plan_fc(graph, node)
    if isinstance(plan, Reject):
        return plan
    x, b = node.arg(0), node.arg(1)
    assert x is not None and b is not None
    weight = np.ascontiguousarray(plan.weight, np.float32)
    shared = weight is b.data and not weight.flags.writeable  # read-only: share, no copy
    inputs = [x, graph.add_constant(weight, b.name + "_fc", take=shared or weight is not b.data)]
    if plan.alpha is not None:
        return _lower_scaled(graph, node, plan, inputs)
    if plan.bias is not None:
        inputs.append(graph.add_constant(plan.bias, (node.input(2) or b).name + "_bias"))
    absorbed = plan.absorbed
    last = absorbed or node
    attrs = {}
    if absorbed is not None and absorbed.attr("activation", "NONE") != "NONE":
        attrs["activation"] = absorbed.attr("activation")
    fc = graph.add_node("FullyConnected", inputs, attrs, name=node.name, after=last)
    fc.meta.update(node.meta)
    old = last.output
    graph.replace_all_uses(old, fc.output)
    released = [v for v in (*node.inputs, *(absorbed.inputs if absorbed else ()))
                if v is not None and v.is_constant]
    if absorbed is not None:
        graph.remove_node(absorbed)
    graph.remove_node(node)
    for value in released:  # the old weight matrix: freed now, not at eliminate-dead
        graph.release_if_dead(value)
    graph.rename_value(fc.output, old.name)
    graph.rename_node(fc, node.name)
    return fc


def _lower_scaled(graph: Graph, node: Node, plan: FCPlan, inputs: list[Value]) -> Node:
    """``FullyConnected(x, B') * alpha (+ beta * C)``: onnxruntime's order of operations."""
    fc = graph.add_node("FullyConnected", inputs, {}, name=node.name + "_product", after=node)
    fc.meta.update(node.meta)
    alpha = graph.add_constant(np.array(plan.alpha, np.float32), node.name + "_alpha")
    last = graph.add_node("Mul", [fc.output, alpha], name=node.name + "_scale", after=fc)
    if plan.bias is not None:
        bias = graph.add_constant(plan.bias, (node.input(2) or inputs[1]).name + "_bias")
        last = graph.add_node("Add", [last.output, bias], name=node.name + "_bias",
                              after=last)
    old = node.output
    graph.replace_all_uses(old, last.output)
    released = [v for v in node.inputs if v is not None and v.is_constant]
    graph.remove_node(node)
    for value in released:
        graph.release_if_dead(value)
    graph.rename_value(last.output, old.name)
    return fc


@register_pass
@dataclass(frozen=True)
class LowerFC(Pass):
    name = "lower-fc"
    summary = "Gemm / MatMul(+Add) with constant weights -> FullyConnected"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for node in list(graph.nodes):
            if node.graph is graph and node.op in ("Gemm", "MatMul"):
                result = lower_to_fc(graph, node)
                if isinstance(result, Reject):
                    ctx.remark(node, f"not lowered: {result.reason}")
