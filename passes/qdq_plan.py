"""Quantization from the model's own Q/DQ (``import-qdq`` annotations), fitted to TFLite's
int8 spec; used by ``insert-qdq`` when a graph carries such annotations.

Every activation takes the model's ``QuantParams`` (``value.meta["qdq"]``). Tensors the
model leaves unquantized take them through ops that need equal input and output
parameters (``Int8Rule.SAME``: pools, reshapes, transposes, concat, pad), forward and
backward; what is still missing comes from calibration ranges, and without them is an
error naming the tensors. Where the int8 spec needs something else, the plan changes it
and says so (a remark on the node; with ``strict`` an error):

* ``FIXED`` outputs (LOGISTIC / SOFTMAX 1/256, -128; TANH 1/128, 0): the op writes the
  fixed parameters; a requantize (integer QUANTIZE) to the model's follows it.
* ``SAME`` ops whose input differs from the output: a one-input op (pool, reshape,
  transpose, pad) computes with its input's parameters and a requantize to the model's
  output parameters follows (exact for data movement and max-pooling; for average
  pooling it rounds once more but clips nothing before the average); for several inputs
  (concat, max/min) each differing input is requantized to the output's parameters.
* weights: the model's scales are used when quantizing the float weights with them gives
  integers back (what ``import-qdq`` left: ``s (q - z)``); asymmetric weights (zero point
  != 0), per-axis scales along another axis than the output channels, or weights a pass
  changed (BatchNorm folded in) are requantized symmetric per channel.
* bias: always int32 with scale ``s_in * s_w[c]``; a model bias of another scale is
  requantized.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from microlith.ir.core import Node, Value
from microlith.ir.ops import Int8Rule, get_op
from microlith.ir.types import QuantParams
from microlith.passes.import_qdq import QDQ_INPUTS, QDQ_META
from microlith.pipeline import PassContext, RewriteFailure
from microlith.quant.params import activation_params, fixed_params, round_half_away

FIT_TOLERANCE = 1e-3  # |w / s - round(w / s)| of weights the model's scales produced


@dataclass
class QDQPlan:
    """``params``: what each activation's producer writes; ``after``: the parameters its
    users read instead (a requantize follows); ``edges``: (node id, input index) -> the
    parameters that input must be requantized to."""

    params: dict[int, QuantParams] = field(default_factory=dict)
    after: dict[int, QuantParams] = field(default_factory=dict)
    edges: dict[tuple[int, int], QuantParams] = field(default_factory=dict)

    def read(self, value: Value) -> QuantParams:
        return self.after.get(id(value)) or self.params[id(value)]

    def param(self, value: Value, wide: bool = False) -> QuantParams:
        """What ``value``'s producer writes (int8 only: ``wide`` is never true here)."""
        return self.params[id(value)]


def uses_model_qdq(nodes: list[Node], values: list[Value]) -> bool:
    return any(QDQ_META in v.meta for v in values) or any(QDQ_INPUTS in n.meta for n in nodes)


class Changes:
    """Remarks for every departure from the model's numbers; errors when strict."""

    def __init__(self, ctx: PassContext, strict: bool) -> None:
        self.ctx, self.strict = ctx, strict

    def __call__(self, node: Node, what: str, why: str) -> None:
        if self.strict:
            raise RewriteFailure(node, f"{what} ({why}); --strict-qdq forbids changing the "
                                       "model's quantization")
        self.ctx.remark(node, f"{what} ({why})")


def _acts(node: Node) -> list[tuple[int, Value]]:
    return [(i, v) for i, v in enumerate(node.inputs) if v is not None and not v.is_constant]


def plan_model_qdq(nodes: list[Node], values: list[Value], change: Changes,
                   fail: Callable[[Node | None, str], Exception]) -> QDQPlan:
    plan = QDQPlan()
    given = {id(v): v.meta[QDQ_META] for v in values if QDQ_META in v.meta}
    same = [n for n in nodes if get_op(n.op).int8 is Int8Rule.SAME]
    changed = True
    while changed:  # share parameters through data-movement ops, both ways
        changed = False
        for node in same:
            out, acts = id(node.output), [v for _, v in _acts(node)]
            if out not in given:
                known = [given[id(v)] for v in acts if id(v) in given]
                if known:
                    given[out], changed = known[0], True
            if out in given:
                for v in acts:
                    if id(v) not in given:
                        given[id(v)], changed = given[out], True
    missing = []
    ranges = _calibrated_ranges(same, values, given)
    for value in values:
        if id(value) in given:
            plan.params[id(value)] = given[id(value)]
        elif id(value) in ranges:
            plan.params[id(value)] = activation_params(*ranges[id(value)])
        else:
            missing.append(value)
    fixed_nodes = {id(n.output): n for n in nodes if get_op(n.op).int8 is Int8Rule.FIXED
                   and get_op(n.op).fixed_output is not None}
    missing = [v for v in missing if id(v) not in fixed_nodes]
    if missing and not given:
        raise fail(missing[0].producer, "the model quantizes only its weights (weight-only "
                   "DequantizeLinear, float activations): pass --calibration-data for full "
                   "int8 with the model's weight scales, or use --quantize qdq-dynamic (the "
                   "default without data: dynamic range with them)")
    if missing:
        names = ", ".join(repr(v.name) for v in missing[:8])
        raise fail(missing[0].producer, f"no quantization in the model for {names}"
                   f"{' ...' if len(missing) > 8 else ''} (no QuantizeLinear/DequantizeLinear "
                   "pair) and no calibration data to fill it: pass --calibration-data")
    for key, node in fixed_nodes.items():
        opdef = get_op(node.op)
        assert opdef.fixed_output is not None
        fixed = fixed_params(*opdef.fixed_output)
        model = plan.params.get(key)
        plan.params[key] = fixed
        if model is not None and model != fixed:
            plan.after[key] = model
            change(node, f"output {node.output.name!r}: written with TFLite's fixed {fixed} "
                         f"and requantized to the model's {model}",
                   f"{node.op} has a fixed output scale in the int8 spec")
    for node in same:
        want = plan.params[id(node.output)]
        inputs = _acts(node)
        if len(inputs) == 1 and id(node.output) not in plan.after:
            have = plan.read(inputs[0][1])
            if have != want:  # computed at the input's parameters, requantized after
                plan.params[id(node.output)], plan.after[id(node.output)] = have, want
                change(node, f"output {node.output.name!r}: computed with its input's {have} "
                             f"and requantized to the model's {want}",
                       f"{node.op} needs equal input and output quantization in TFLite")
            continue
        for index, value in inputs:
            have = plan.read(value)
            if have != want:
                plan.edges[(id(node), index)] = want
                change(node, f"input {value.name!r}: requantized from {have} to {want}",
                       f"{node.op} needs equal input and output quantization in TFLite")
    return plan


def _calibrated_ranges(same: list[Node], values: list[Value], given: dict[int, QuantParams]
                       ) -> dict[int, tuple[float, float]]:
    """Calibrated ranges of the tensors the model leaves unquantized, as ``insert-qdq``
    chooses them: one range (the union) per group joined by ``SAME`` ops."""
    parent: dict[int, int] = {}

    def find(key: int) -> int:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    for node in same:
        members = [id(v) for _, v in _acts(node)] + [id(node.output)]
        members = [m for m in members if m not in given]
        for other in members[1:]:
            a, b = find(members[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    spans: dict[int, tuple[float, float]] = {}
    for value in values:
        span = value.meta.get("calibration_range")
        if id(value) in given or span is None:
            continue
        root = find(id(value))
        lo, hi = spans.get(root, (0.0, 0.0))
        spans[root] = (min(lo, span[0]), max(hi, span[1]))
    return {id(v): spans[find(id(v))] for v in values
            if id(v) not in given and find(id(v)) in spans}


def fit_weights(data: np.ndarray, model: QuantParams, symmetric: bool = True
                ) -> tuple[np.ndarray, QuantParams] | str:
    """The int8 values and parameters the model's scales give ``data`` (per-axis: along
    axis 0, the output channels of weights), or why they cannot be kept."""
    if symmetric and any(z != 0 for z in model.zero_point):
        return f"they are asymmetric (zero point {max(model.zero_point, key=abs)})"
    n = len(model.scale)
    scales = np.asarray(model.scale, np.float32)
    zeros = np.asarray(model.zero_point, np.float64)
    if n == 1:
        qp = QuantParams((float(scales[0]),), (int(zeros[0]),))
        shape = [1] * data.ndim
    elif data.ndim >= 1 and data.shape[0] == n:
        qp = QuantParams(tuple(float(s) for s in scales), model.zero_point, 0)
        shape = [n] + [1] * (data.ndim - 1)
    else:
        return f"its {n} per-axis scales do not run along its {data.shape[0]} output channels"
    ratio = np.asarray(data, np.float64) / scales.astype(np.float64).reshape(shape)
    q = round_half_away(ratio)
    ratio, q = ratio + zeros.reshape(shape), q + zeros.reshape(shape)
    if ratio.size and (np.max(np.abs(ratio - q)) > FIT_TOLERANCE or q.min() < -128 or
                       q.max() > 127):
        return "they do not fit the weights after canonicalization (changed by a pass, " \
               "e.g. a BatchNorm folded into them)"
    return q.astype(np.int8), qp


def same_scales(a: tuple[float, ...], b: tuple[float, ...], rel: float = 1e-6) -> bool:
    if len(a) != len(b) and len(a) != 1 and len(b) != 1:
        return False
    x, y = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return bool(np.all(np.abs(x - y) <= rel * np.abs(y)))
