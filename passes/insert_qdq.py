"""``insert-qdq``: quantize/dequantize pairs per the TFLite int8 spec, from calibrated ranges.

Every float activation that an integer-capable op reads or writes is routed
through ``QuantizeLinear -> DequantizeLinear`` (its users read the dequantized
value), so the graph still computes in float but sees int8 rounding; weights
become int8 constants behind a DequantizeLinear. ``fuse-requantize`` then turns
each ``DQ -> op -> Q`` island into an integer kernel.

Parameters (see ``microlith.quant.params``): activations asymmetric per-tensor
int8 from ``value.meta["calibration_range"]``; Conv / FullyConnected weights
symmetric per-channel (axis 0 of OHWI / [N, K]); bias int32 with
``scale = s_in * s_w[c]``; other constant operands asymmetric per-tensor from
their own min/max. Ops that need equal input and output parameters (pools,
reshapes, pad, transpose, concat, max/min) share one range, the union of their
members'.
Logistic and Softmax outputs are fixed at scale 1/256, zero point -128; Tanh at
1/128, 0. ``io_dtype`` picks the model interface: int8 (inputs/outputs are the
quantized tensors), uint8 (zero point + 128, converted at the edges) or float32
(QUANTIZE / DEQUANTIZE at the edges). Ops with no int8 kernel are an error
listing all of them, unless ``fallback=float`` keeps them in float between
DequantizeLinear and QuantizeLinear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.diagnostics import capped
from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Int8Rule, get_op
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.pipeline import Pass, PassContext, RewriteFailure, register_pass
from microlith.pipeline.facts import CALIBRATED, QDQ
from microlith.quant.nodes import qparams
from microlith.quant.params import (
    activation_params,
    fixed_params,
    quantize_array,
    quantize_bias,
    quantize_weights,
)


class _Groups:
    """Union-find over value ids: members of a group share quantization parameters."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, key: int) -> int:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        self.parent[key] = root
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def int8_rule(node: Node) -> Int8Rule:
    return get_op(node.op).int8


def integer_nodes(graph: Graph, fallback: str) -> list[Node]:
    """The nodes to quantize (an int8 rule, float operands or integer constants such as a
    shape); unsupported ones are an error unless falling back to float."""
    chosen, refused = [], []
    for node in graph.nodes:
        if int8_rule(node) is not Int8Rule.NONE and all(
                v is None or v.dtype == DType.FLOAT32 or (v.is_constant and not v.dtype.is_float)
                for v in node.inputs):
            chosen.append(node)
        elif any(v is not None and v.dtype == DType.FLOAT32 and not v.is_constant
                 for v in [*node.inputs, *node.outputs]):
            refused.append(node)
    if refused and fallback != "float":
        names = capped([f"{n.name} ({n.op})" for n in refused])
        raise RewriteFailure(refused[0], f"no int8 kernel for: {names}; use --fallback float "
                             "to keep them in float between DEQUANTIZE/QUANTIZE")
    return chosen


@register_pass
@dataclass(frozen=True)
class InsertQDQ(Pass):
    name = "insert-qdq"
    summary = "int8 quantize/dequantize pairs from calibrated ranges (TFLite int8 spec)"
    requires = (CALIBRATED,)
    provides = (QDQ,)
    io_dtype: Literal["int8", "uint8", "float32"] = "int8"
    fallback: Literal["none", "float"] = "none"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        nodes = integer_nodes(graph, self.fallback)
        fallback = [n for n in graph.nodes if n not in set(nodes)]
        graph.meta["float_fallback"] = [f"{n.name} ({n.op})" for n in fallback
                                        if n.op not in ("QuantizeLinear", "DequantizeLinear")]
        for name in graph.meta["float_fallback"]:
            ctx.remark(name.split(" ")[0], "kept in float (no int8 kernel)")
        activations = self._activations(graph, nodes)
        params = self._activation_params(nodes, activations)
        for node in nodes:
            self._quantize_constants(graph, node, params)
        for value in activations:
            self._wrap(graph, value, params[id(value)])

    # ---- parameters ---------------------------------------------------------------------
    def _activations(self, graph: Graph, nodes: list[Node]) -> list[Value]:
        seen: dict[int, Value] = {}
        for node in nodes:
            for value in [*node.inputs, *node.outputs]:
                if value is not None and not value.is_constant and value.dtype == DType.FLOAT32:
                    seen.setdefault(id(value), value)
        order = {id(v): i for i, v in enumerate(graph.inputs)}
        for node in graph.nodes:
            for v in node.outputs:
                order.setdefault(id(v), len(order))
        return sorted(seen.values(), key=lambda v: order[id(v)])

    def _activation_params(self, nodes: list[Node], values: list[Value]
                           ) -> dict[int, QuantParams]:
        groups = _Groups()
        fixed: dict[int, QuantParams] = {}
        for node in nodes:
            acts = [v for v in node.inputs if v is not None and not v.is_constant]
            opdef = get_op(node.op)
            if opdef.int8 is Int8Rule.SAME:
                for v in acts:
                    groups.union(id(v), id(node.output))
            if opdef.int8 is Int8Rule.FIXED and opdef.fixed_output is not None:
                fixed[id(node.output)] = fixed_params(*opdef.fixed_output)
        ranges: dict[int, tuple[float, float]] = {}
        for value in values:
            span = value.meta.get("calibration_range")
            if span is None:
                raise self.fail(value.producer, f"value {value.name!r} has no calibration range "
                                "(run calibrate on this graph first)")
            root = groups.find(id(value))
            lo, hi = ranges.get(root, (0.0, 0.0))
            ranges[root] = (min(lo, span[0]), max(hi, span[1]))
        root_fixed = {groups.find(k): p for k, p in fixed.items()}
        return {id(v): root_fixed.get(groups.find(id(v))) or activation_params(
            *ranges[groups.find(id(v))]) for v in values}

    # ---- constants ------------------------------------------------------------------------
    def _quantize_constants(self, graph: Graph, node: Node, params: dict[int, QuantParams]
                            ) -> None:
        rule = int8_rule(node)
        for index, value in enumerate(node.inputs):
            if value is None or not value.is_constant or value.dtype != DType.FLOAT32:
                continue
            if rule is Int8Rule.WEIGHTED and index == 1:
                q, qp = quantize_weights(value.constant, axis=0)
            elif rule is Int8Rule.WEIGHTED and index == 2:
                weights = node.arg(1)
                w_scales = qparams(weights.producer.arg(0)).scale if weights.producer else \
                    quantize_weights(weights.constant, 0)[1].scale
                x_params = params[id(node.arg(0))]
                q, qp = quantize_bias(value.constant, x_params.scale[0], w_scales)
                node.set_input(index, self._dequantized(graph, value, q, qp, DType.INT32))
                continue
            elif rule is Int8Rule.SAME:
                qp = params[id(node.output)]
                q = quantize_array(value.constant, qp)
            else:
                data = value.constant
                qp = activation_params(float(data.min(initial=0.0)), float(data.max(initial=0.0)))
                q = quantize_array(data, qp)
            node.set_input(index, self._dequantized(graph, value, q, qp, DType.INT8))

    @staticmethod
    def _dequantized(graph: Graph, value: Value, q: np.ndarray, qp: QuantParams,
                     dtype: DType) -> Value:
        const = graph.add_constant(q.astype(dtype.numpy), value.name + "_q", quant=qp)
        node = graph.add_node("DequantizeLinear", [const], name=value.name + "_dq",
                              output_types=[TensorType(DType.FLOAT32, value.shape)])
        return node.output

    # ---- activations ---------------------------------------------------------------------
    def _wrap(self, graph: Graph, value: Value, qp: QuantParams) -> None:
        """Route ``value`` through Q -> DQ (or retype a graph input per ``io_dtype``)."""
        users = [u for u in value.uses]
        is_output = value in graph.outputs
        q_type = TensorType(DType.INT8, value.shape, qp)
        if value in graph.inputs and self.io_dtype == "int8":
            value.set_type(q_type)
            quantized = value
        else:
            source = value
            if value in graph.inputs and self.io_dtype == "uint8":
                value.set_type(TensorType(DType.UINT8, value.shape, QuantParams(
                    qp.scale, (qp.zero_point[0] + 128,))))
            q_node = graph.add_node("QuantizeLinear", [source], {"to": "i8"},
                                    name=value.name + "_quantize", output_types=[q_type],
                                    after=value.producer, before=None if value.producer
                                    else graph.nodes[0] if graph.nodes else None)
            quantized = q_node.output
        dq = graph.add_node("DequantizeLinear", [quantized], name=value.name + "_dequantize",
                            output_types=[TensorType(DType.FLOAT32, value.shape)],
                            after=quantized.producer)
        for use in users:
            use.node.set_input(use.index, dq.output)
        if is_output:
            index = graph.outputs.index(value)
            graph.outputs[index] = self._output_value(graph, quantized, dq.output, value)

    def _output_value(self, graph: Graph, quantized: Value, dequantized: Value,
                      original: Value) -> Value:
        name = original.name
        if self.io_dtype == "float32":
            result = dequantized
        elif self.io_dtype == "int8":
            result = quantized
        else:
            qp = qparams(quantized)
            node = graph.add_node("QuantizeLinear", [quantized], {"to": "u8"},
                                  name=name + "_to_uint8", output_types=[TensorType(
                                      DType.UINT8, quantized.shape,
                                      QuantParams(qp.scale, (qp.zero_point[0] + 128,)))])
            result = node.output
        if result is not original and original.producer is not None:
            graph.rename_value(original, name + "_float")
            graph.rename_value(result, name)
        return result
