"""``insert-qdq``: quantize/dequantize pairs per the TFLite int8 spec, from calibrated ranges.

Every float activation that an integer-capable op reads or writes is routed
through ``QuantizeLinear -> DequantizeLinear`` (its users read the dequantized
value), so the graph still computes in float but sees int8 rounding; weights
become int8 constants behind a DequantizeLinear. ``fuse-requantize`` then turns
each ``DQ -> op -> Q`` island into an integer kernel.

Parameters (see ``microlith.quant.params``): activations asymmetric per-tensor
int8 from ``value.meta["calibration_range"]``; Conv / FullyConnected weights
symmetric per-channel (axis 0 of OHWI / [N, K]), a channel's scale raised where its
bias would not fit in int32 (the TF converter's rule: a dead channel's weights become 0,
its bias stays exact); bias int32 with ``scale = s_in * s_w[c]`` (a bias that still
saturates is a named warning; a Conv without bias gets a zero one, which LiteRT
needs); other constant operands asymmetric per-tensor from their own min/max. Ops that
need equal input and output parameters (pools, reshapes, pad, transpose, concat,
max/min) share one range, the union of their members'.
Logistic and Softmax outputs are fixed at scale 1/256, zero point -128; Tanh at
1/128, 0. ``io_dtype`` picks the model interface: int8 (inputs/outputs are the
quantized tensors), uint8 (zero point + 128, converted at the edges) or float32
(QUANTIZE / DEQUANTIZE at the edges). Ops with no int8 kernel are an error
listing all of them, unless ``fallback=float`` keeps them in float between
DequantizeLinear and QuantizeLinear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.diagnostics import UsageError, capped
from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Int8Rule, get_op
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.passes.import_qdq import QDQ_INPUTS
from microlith.passes.qdq_plan import (
    Changes,
    QDQPlan,
    fit_weights,
    plan_model_qdq,
    same_scales,
    uses_model_qdq,
)
from microlith.pipeline import Pass, PassContext, RewriteFailure, register_pass
from microlith.pipeline.facts import CALIBRATED, QDQ
from microlith.quant.limits import int8_refusal
from microlith.quant.nodes import qparams
from microlith.quant.params import (
    activation_params,
    fixed_params,
    quantize_array,
    quantize_bias,
    quantize_weights,
    saturated_biases,
    symmetric_params,
)

IoDType = Literal["int8", "uint8", "int16", "float32"]
#: 16x8: LOGISTIC / TANH / SOFTMAX outputs are fixed at scale 1/32768, zero point 0
FIXED_16 = (1.0 / 32768.0, 0)
_DTYPES = {"int8": DType.INT8, "uint8": DType.UINT8, "int16": DType.INT16}


# int8 CONV_2D / DEPTHWISE_CONV_2D: LiteRT refuses the optional bias absent ("Tensor at
# index 2 was optional but was expected"); TFLite-Micro and C accept either. A zero bias
# costs 4 bytes per output channel and changes no result.
BIAS_REQUIRED = ("Conv",)


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


def split_names(text: str) -> list[str]:
    """The items of a ``;``-separated option (``--keep-float a,b`` is ``keep-float=a;b``)."""
    return [t.strip() for t in text.split(";") if t.strip()]


def selected(graph: Graph, names: list[str], flag: str) -> set[Node]:
    """The nodes named (or of an op type named) in ``names``; an unknown name is an error."""
    nodes = set()
    for item in names:
        found = {n for n in graph.nodes if n.name == item or n.op == item}
        if not found:
            raise UsageError(f"{flag}: no node or op type named {item!r} in the model")
        nodes |= found
    return nodes


def split_integer_nodes(graph: Graph, wide: bool = False, keep: set[Node] | None = None,
                        fallback: str = "none") -> tuple[list[Node], list[Node]]:
    """(nodes to quantize, float nodes with no int8 -- with ``wide`` 16x8 -- kernel). An
    int8 kernel that cannot run every input (``quant.limits``) is avoided only when
    falling back to float; otherwise it is taken (``insert-qdq`` warns)."""
    chosen, refused = [], []
    keep = keep or set()
    for node in graph.nodes:
        if node in keep:
            continue
        if int8_rule(node) is not Int8Rule.NONE and (get_op(node.op).int16 or not wide) and \
                (wide or fallback != "float" or int8_refusal(node) is None) and all(
                v is None or v.dtype == DType.FLOAT32 or (v.is_constant and not v.dtype.is_float)
                for v in node.inputs):
            chosen.append(node)
        elif any(v is not None and v.dtype == DType.FLOAT32 and not v.is_constant
                 for v in [*node.inputs, *node.outputs]):
            refused.append(node)
    return chosen, refused


def integer_nodes(graph: Graph, fallback: str, wide: bool = False,
                  keep: set[Node] | None = None) -> list[Node]:
    """The nodes to quantize (an int8 rule -- with ``wide`` also a 16x8 kernel --, float
    operands or integer constants such as a shape, not in ``keep``); unsupported ones are
    an error unless falling back to float."""
    kind = "16x8" if wide else "int8"
    chosen, refused = split_integer_nodes(graph, wide, keep, fallback)
    if refused and fallback != "float":
        names = capped([f"{n.name} ({n.op})" for n in refused])
        raise RewriteFailure(refused[0], f"no {kind} kernel for: {names}; use --fallback float "
                             "to keep them in float between DEQUANTIZE/QUANTIZE")
    return chosen


@register_pass
@dataclass(frozen=True)
class InsertQDQ(Pass):
    name = "insert-qdq"
    summary = "int8 quantize/dequantize pairs from calibrated ranges (TFLite int8 spec)"
    requires = (CALIBRATED,)
    provides = (QDQ,)
    io_dtype: IoDType = "int8"
    fallback: Literal["none", "float"] = "none"
    activations: Literal["int8", "int16"] = "int8"
    input_dtype: Literal["", "int8", "uint8", "int16", "float32"] = ""  # "": io_dtype
    output_dtype: Literal["", "int8", "uint8", "int16", "float32"] = ""  # "": io_dtype
    keep_float: str = ""  # ";"-separated node names / op types kept in float
    per_tensor: bool = False  # one weight scale per tensor instead of per output channel
    int16: str = ""  # int8 activations: ";"-separated node names / op types made 16x8
    strict: bool = False  # a model's own Q/DQ (import-qdq): departures are errors, not remarks

    @property
    def wide(self) -> bool:
        return self.activations == "int16"

    @property
    def act_dtype(self) -> DType:
        return DType.INT16 if self.wide else DType.INT8

    def run(self, graph: Graph, ctx: PassContext) -> None:
        keep = selected(graph, split_names(self.keep_float), "--keep-float")
        nodes = integer_nodes(graph, self.fallback, self.wide, keep)
        chosen = set(nodes)
        fallback = [n for n in graph.nodes if n not in chosen]
        for node in fallback:
            node.meta["keep_float"] = True  # fuse-requantize leaves it between DQ and Q
        graph.meta["float_fallback"] = [f"{n.name} ({n.op})" for n in fallback
                                        if n.op not in ("QuantizeLinear", "DequantizeLinear")]
        for node in fallback:
            if node.op not in ("QuantizeLinear", "DequantizeLinear"):
                why = "--keep-float" if node in keep else int8_refusal(node) or \
                    f"no {'16x8' if self.wide else 'int8'} kernel"
                ctx.remark(node, f"kept in float ({why})")
        wide = chosen if self.wide else self._wide_nodes(graph, nodes)
        for node in nodes:
            if node not in wide and (risk := int8_refusal(node)):
                ctx.warn(f"insert-qdq: node {node.name!r} ({node.op}): {risk}; "
                         "--fallback float keeps it in float")
        activations = self._activations(graph, nodes)
        plan: QDQPlan | None = None
        change = Changes(ctx, self.strict)
        params: Callable[[Value, bool], QuantParams]
        if uses_model_qdq(nodes, activations):
            if wide:
                raise self.fail(None, "a Q/DQ model's own quantization is int8: 16x8 layers "
                                "(--int16, int16x8) are not supported with it")
            plan = plan_model_qdq(nodes, activations, change, self.fail)
            params = plan.param
        else:
            params = self._activation_params(nodes, activations, wide)
        for node in nodes:
            if node.op in BIAS_REQUIRED:
                self._zero_bias(graph, node)
            self._quantize_constants(graph, node, params, node in wide, ctx, plan, change)
        integer = chosen
        for value in activations:
            users = [u.node for u in value.uses if u.node in integer]
            if value.producer in integer:
                home = value.producer in wide
            else:  # a graph input or a float op's output: the width of its integer readers
                home = self.wide or (bool(users) and all(n in wide for n in users))
            other = [u for u in value.uses if u.node in integer and (u.node in wide) != home]
            home_dq = self._wrap(graph, value, params(value, home), home, exclude=other,
                                 plan=plan)
            if other:  # the other width: a requantizing QUANTIZE after the home DQ
                self._requantize_for(graph, value, home_dq, other, params(value, not home),
                                     not home)

    def _wide_nodes(self, graph: Graph, nodes: list[Node]) -> set[Node]:
        """``--int16``: the named nodes (or op types), each needing a 16x8 kernel."""
        chosen = selected(graph, split_names(self.int16), "--int16")
        for node in sorted(chosen, key=lambda n: n.name):
            if node not in nodes or not get_op(node.op).int16:
                raise UsageError(f"--int16: {node.name} ({node.op}) has no 16x8 kernel")
        return chosen

    def _requantize_for(self, graph: Graph, value: Value, home_dq: Node, uses: list,
                        qp: QuantParams, wide: bool) -> None:
        """Route ``uses`` of ``value`` through Q(other width) -> DQ after its home DQ."""
        dtype = DType.INT16 if wide else DType.INT8
        q = graph.add_node("QuantizeLinear", [home_dq.output], {"to": dtype.value},
                           name=value.name + f"_to_{dtype.numpy.name}",
                           output_types=[TensorType(dtype, value.shape, qp)], after=home_dq)
        dq = graph.add_node("DequantizeLinear", [q.output], name=q.name + "_dequantize",
                            output_types=[TensorType(DType.FLOAT32, value.shape)], after=q)
        for use in uses:
            use.node.set_input(use.index, dq.output)

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

    def _activation_params(self, nodes: list[Node], values: list[Value], wide: set[Node]
                           ) -> Callable[[Value, bool], QuantParams]:
        """Calibrated parameters per group of values sharing them; a FIXED op's output gets
        the op's own (int8: the op's ``fixed_output``; a 16x8 node, also inside an int8
        model: 1/32768, 0) at the width its producer writes, range parameters otherwise."""
        groups = _Groups()
        fixed: dict[int, tuple[QuantParams, bool]] = {}
        for node in nodes:
            acts = [v for v in node.inputs if v is not None and not v.is_constant]
            opdef = get_op(node.op)
            if opdef.int8 is Int8Rule.SAME:
                for v in acts:
                    groups.union(id(v), id(node.output))
            if opdef.int8 is Int8Rule.FIXED and opdef.fixed_output is not None:
                fixed[id(node.output)] = (fixed_params(*(FIXED_16 if node in wide
                                                         else opdef.fixed_output)),
                                          node in wide)
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

        def params(value: Value, wide: bool) -> QuantParams:
            root = groups.find(id(value))
            if root in root_fixed and wide == root_fixed[root][1]:
                return root_fixed[root][0]
            return self._range_params(*ranges[root], wide=wide)

        return params

    def _range_params(self, lo: float, hi: float, wide: bool | None = None) -> QuantParams:
        wide = self.wide if wide is None else wide
        return symmetric_params(lo, hi) if wide else activation_params(lo, hi)

    # ---- constants ------------------------------------------------------------------------
    def _quantize_constants(self, graph: Graph, node: Node,
                            params: Callable[[Value, bool], QuantParams], wide: bool,
                            ctx: PassContext, plan: QDQPlan | None = None,
                            change: Changes | None = None) -> None:
        rule = int8_rule(node)
        act = DType.INT16 if wide else DType.INT8
        model: dict[int, QuantParams] = node.meta.get(QDQ_INPUTS, {}) if plan else {}
        for index, value in enumerate(node.inputs):
            if value is None or not value.is_constant or value.dtype != DType.FLOAT32:
                continue
            weighted = rule is Int8Rule.WEIGHTED
            fitted = fit_weights(value.constant, model[index], symmetric=weighted) \
                if index in model and not (weighted and index == 2) else None
            if isinstance(fitted, str) and change is not None:
                change(node, f"constant {value.name!r}: requantized by microlith",
                       f"the model's scales cannot be kept: {fitted}")
            if rule is Int8Rule.WEIGHTED and index == 1:
                bias = node.input(2) if len(node.inputs) > 2 else None
                bias_data = bias.constant if bias is not None and bias.is_constant and \
                    bias.dtype == DType.FLOAT32 and not wide else None
                x_scale = (plan.read(node.arg(0)) if plan else params(node.arg(0), wide)).scale[0]
                q, qp = fitted if isinstance(fitted, tuple) else \
                    quantize_weights(value.constant, axis=None if self.per_tensor else 0,
                                     bias=bias_data, input_scale=x_scale)
            elif rule is Int8Rule.WEIGHTED and index == 2:
                weights = node.arg(1)
                w_scales = qparams(weights.producer.arg(0)).scale if weights.producer else \
                    quantize_weights(weights.constant, None if self.per_tensor else 0)[1].scale
                x_params = plan.read(node.arg(0)) if plan else params(node.arg(0), wide)
                bits = 64 if wide else 32
                lost = 0 if wide else saturated_biases(value.constant, x_params.scale[0],
                                                       w_scales)
                if lost:
                    ctx.warn(f"insert-qdq: node {node.name!r} ({node.op}): {lost} int32 "
                             f"bias value(s) of {value.name!r} saturate at scale input x "
                             f"weight; they are clamped to the int32 range")
                q, qp = quantize_bias(value.constant, x_params.scale[0], w_scales, bits)
                if index in model and change is not None and not same_scales(
                        model[index].scale, qp.scale):
                    change(node, f"bias {value.name!r}: requantized to scale s_in * s_w",
                           "the TFLite int8 spec fixes the bias scale; the model's differs")
                node.set_input(index, self._dequantized(
                    graph, value, q, qp, DType.INT64 if wide else DType.INT32))
                continue
            elif isinstance(fitted, tuple) and rule is not Int8Rule.SAME:
                q, qp = fitted
            elif rule is Int8Rule.SAME:
                qp = params(node.output, wide)
                q = quantize_array(value.constant, qp, act.numpy.type)
            else:
                data = value.constant
                qp = self._range_params(float(data.min(initial=0.0)),
                                        float(data.max(initial=0.0)), wide)
                q = quantize_array(data, qp, act.numpy.type)
            dtype = DType.INT8 if rule is Int8Rule.WEIGHTED else act
            node.set_input(index, self._dequantized(graph, value, q, qp, dtype))
            del q
            graph.release_if_dead(value)  # the float weights: freed now

    @staticmethod
    def _zero_bias(graph: Graph, node: Node) -> None:
        """A Conv without bias gets a zero float bias (quantized like any other)."""
        if len(node.inputs) > 2 and node.inputs[2] is not None:
            return
        weights = node.arg(1)
        if not weights.is_constant:
            return
        zero = graph.add_constant(np.zeros(weights.shape[0], np.float32),
                                  node.name + "_zero_bias")
        while len(node.inputs) < 3:
            node.inputs.append(None)
        node.set_input(2, zero)

    @staticmethod
    def _dequantized(graph: Graph, value: Value, q: np.ndarray, qp: QuantParams,
                     dtype: DType) -> Value:
        const = graph.add_constant(q.astype(dtype.numpy), value.name + "_q", quant=qp,
                                   take=True)  # astype made a fresh copy
        node = graph.add_node("DequantizeLinear", [const], name=value.name + "_dq",
                              output_types=[TensorType(DType.FLOAT32, value.shape)])
        return node.output

    # ---- activations ---------------------------------------------------------------------
    def io_dtypes(self) -> tuple[str, str]:
        """(input, output) interface dtypes."""
        return (self.input_dtype or self.io_dtype, self.output_dtype or self.io_dtype)

    def _interface_params(self, dtype: str, qp: QuantParams, value: Value,
                          act: DType | None = None) -> QuantParams:
        """Parameters of an interface tensor of ``dtype`` carrying ``value`` (activation
        parameters ``qp``): uint8 over int8 shifts the zero point by 128, as TFLite does;
        a dtype of another width gets its own parameters from the calibrated range."""
        act = act or self.act_dtype
        if dtype == "uint8" and act == DType.INT8:
            return QuantParams(qp.scale, (qp.zero_point[0] + 128,))
        lo, hi = value.meta.get("calibration_range", (0.0, 0.0))
        if dtype == "int16":
            return symmetric_params(lo, hi)
        if dtype == "uint8":
            return activation_params(lo, hi, 0, 255)
        return activation_params(lo, hi)

    def _wrap(self, graph: Graph, value: Value, qp: QuantParams, wide: bool,
              exclude: list, plan: QDQPlan | None = None) -> Node:
        """Route ``value`` through Q -> DQ at its home width (or retype a graph input per its
        interface dtype); the ``exclude`` uses are left for the other width. With a model
        plan, through a requantize where the plan says so (``plan.after``, ``edges``)."""
        users = [u for u in value.uses if u not in exclude]
        is_output = value in graph.outputs
        act = DType.INT16 if wide else DType.INT8
        q_type = TensorType(act, value.shape, qp)
        in_dtype, _ = self.io_dtypes()
        if value in graph.inputs and _DTYPES.get(in_dtype) == act:
            value.set_type(q_type)
            quantized = value
        else:
            if value in graph.inputs and in_dtype != "float32":
                value.set_type(TensorType(_DTYPES[in_dtype], value.shape,
                                          self._interface_params(in_dtype, qp, value, act)))
            q_node = graph.add_node("QuantizeLinear", [value], {"to": act.value},
                                    name=value.name + "_quantize", output_types=[q_type],
                                    after=value.producer, before=None if value.producer
                                    else graph.nodes[0] if graph.nodes else None)
            quantized = q_node.output
        dq = graph.add_node("DequantizeLinear", [quantized], name=value.name + "_dequantize",
                            output_types=[TensorType(DType.FLOAT32, value.shape)],
                            after=quantized.producer)
        read = dq.output
        if plan is not None and id(value) in plan.after:
            quantized, read = self._requantize(graph, read, plan.after[id(value)],
                                               value.name + "_requantized")
        for use in users:
            need = plan.edges.get((id(use.node), use.index)) if plan is not None else None
            if need is not None and need != quantized.quant:
                use.node.set_input(use.index, self._requantize(
                    graph, read, need, f"{value.name}_for_{use.node.name}")[1])
            else:
                use.node.set_input(use.index, read)
        if is_output:
            index = graph.outputs.index(value)
            graph.outputs[index] = self._output_value(graph, quantized, read, value, act)
        return dq

    @staticmethod
    def _requantize(graph: Graph, dequantized: Value, qp: QuantParams, name: str
                    ) -> tuple[Value, Value]:
        """``Q(qp) -> DQ`` after ``dequantized`` (``fuse-requantize`` makes the DQ -> Q an
        integer requantize): the new int8 value and its dequantized view."""
        q = graph.add_node("QuantizeLinear", [dequantized], {"to": "i8"}, name=name,
                           output_types=[TensorType(DType.INT8, dequantized.shape, qp)],
                           after=dequantized.producer)
        dq = graph.add_node("DequantizeLinear", [q.output], name=name + "_dequantize",
                            output_types=[TensorType(DType.FLOAT32, dequantized.shape)],
                            after=q)
        return q.output, dq.output

    def _output_value(self, graph: Graph, quantized: Value, dequantized: Value,
                      original: Value, act: DType) -> Value:
        name = original.name
        _, out_dtype = self.io_dtypes()
        if out_dtype == "float32":
            result = dequantized
        elif _DTYPES[out_dtype] == act:
            result = quantized
        else:
            target = _DTYPES[out_dtype]
            qp = self._interface_params(out_dtype, qparams(quantized), original, act)
            node = graph.add_node("QuantizeLinear", [quantized], {"to": target.value},
                                  name=name + "_to_" + out_dtype,
                                  output_types=[TensorType(target, quantized.shape, qp)])
            result = node.output
        if result is not original and original.producer is not None:
            graph.rename_value(original, name + "_float")
            graph.rename_value(result, name)
        return result
