"""``legalize-c``: rewrite an integer graph into the C target's ops (all problems at once).

The C target runs TFLite's integer arithmetic, so every node becomes the ``tfl.*`` ops
``legalize-tflite`` writes (``microlith.passes.tflite_rules``), except where the C kernels
differ; a node whose target op has no integer kernel (hence no C kernel: the C kernels are
the integer kernels, ``tests/backends/c`` checks both sets agree) is refused:

* convolutions and pools keep their explicit pads (``c.conv_2d``,
  ``c.depthwise_conv_2d``, ``c.max_pool_2d``, ``c.average_pool_2d``): the kernels skip
  out-of-image taps, which equals a zero-point border, so no PAD op and no padded copy;
  a grouped convolution stays one op; ``c.average_pool_2d`` honours
  ``count_include_pad`` for any pads;
* a 1x1 stride-1 convolution is a ``tfl.fully_connected`` over the pixels
  (``keep_num_dims``), weights ``[O, I]``;
* an int8 -> int8 element-wise op with at least ``LUT_MIN_ELEMENTS[op]`` output elements
  becomes ``c.lut``: a 256-entry table made by the op's own integer kernel (always for
  the fixed-point transcendental ones -- a load instead of ~100 instructions per
  element -- and from the table's own size for the cheap ones);
* the strided slices of an ONNX ``Split`` become one ``tfl.split`` / ``tfl.split_v``
  (``microlith.passes.split_fusion``; C: one row copy per output).

A graph is either integer (``--quantize int8``: every op an integer kernel; QUANTIZE /
DEQUANTIZE at float interface edges are fine) or float (no ``--quantize``, or ``dynamic`` /
``float16``, whose weights stay int8 / float16 for the float kernels): the same rewrites,
then every op must be in ``FLOAT_C_OPS`` (the float C kernels; ``tests/backends/c`` checks
the set against the float renderers). A mixed graph (``--quantize int8 --fallback float``)
is integer except for the ops ``insert-qdq`` kept in float (``graph.meta["float_fallback"]``),
each between DEQUANTIZE and QUANTIZE: those take the float kernels, the rest the integer
ones; any other float op is refused, naming it, before any file is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from microlith.diagnostics import BackendError, capped
from microlith.ir.core import Graph, Node
from microlith.ir.types import DType, QuantParams
from microlith.passes.reshape_elision import drop_redundant_reshapes
from microlith.passes.split_fusion import fuse_splits
from microlith.passes.tflite_rules import RULES as TFLITE_RULES
from microlith.passes.tflite_rules import activation, claim_names, const
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import C_OPS, TARGET_OPS
from microlith.quant.activation import lookup_table
from microlith.quant.registry import integer_ops, is_integer_node

#: target ops with a float32 C kernel (``microlith.backends.c.render_float``,
#: ``render_float_norm``, ``render_float_data`` and ``render_float_math``, + reshape)
FLOAT_C_OPS = frozenset({
    "c.conv_2d", "c.depthwise_conv_2d", "tfl.fully_connected", "c.max_pool_2d",
    "c.average_pool_2d", "tfl.mean", "tfl.add", "tfl.sub", "tfl.mul", "tfl.maximum",
    "tfl.minimum", "tfl.prelu", "tfl.relu", "tfl.relu6", "tfl.leaky_relu", "tfl.logistic",
    "tfl.tanh", "tfl.hard_swish", "tfl.softmax", "tfl.transpose", "tfl.pad", "tfl.padv2",
    "tfl.concatenation", "tfl.reshape", "tfl.local_response_normalization",
    # render_float_data
    "tfl.split", "tfl.split_v", "tfl.strided_slice", "tfl.gather", "tfl.arg_max",
    "tfl.arg_min", "tfl.reduce_max", "tfl.reduce_min", "tfl.sum", "tfl.batch_matmul",
    "tfl.resize_nearest_neighbor", "tfl.resize_bilinear", "tfl.transpose_conv",
    # render_float_math
    "tfl.exp", "tfl.sqrt", "tfl.rsqrt", "tfl.elu", "tfl.gelu", "tfl.div"})

LUT_MIN_ELEMENTS: dict[str, int] = {"Sigmoid": 1, "Tanh": 1, "HardSwish": 1, "Relu": 256,
                                    "LeakyRelu": 256, "QuantizeLinear": 256, "Exp": 1,
                                    "Elu": 1, "Gelu": 1, "Rsqrt": 1}


def _window_check(node: Node) -> str | None:
    x = node.arg(0)
    if node.attr("layout", "NCHW") != "NHWC" or x.type.rank != 4:
        return "the C kernels expect a 4-D NHWC input (run to-nhwc)"
    if min(node.attr("pads", (0, 0, 0, 0))) < 0:
        return "negative pads are not supported"
    if node.op == "Conv":
        w = node.arg(1)
        group = int(node.attr("group", 1))
        if not w.is_constant:
            return "convolution weights must be constant"
        if x.shape[3] != w.shape[3] * group or w.shape[0] % group:
            return f"unsupported convolution geometry (groups {group})"
    elif math.prod(node.attr("kernel_shape")) >= 1 << 22:
        return "pooling window too large for an int32 sum"
    return None


def is_float_graph(graph: Graph) -> bool:
    """No integer node at all: the float C kernels run it."""
    return not any(is_integer_node(node) for node in graph.nodes)


def check_legal(graph: Graph) -> None:
    """Raise one BackendError listing every node the C target cannot emit."""
    kept_in_float = set(graph.meta.get("float_fallback") or ())
    float_graph = is_float_graph(graph)
    problems = []
    first = None
    for node in graph.nodes:
        label = f"{node.name} ({node.op})"
        if node.op not in RULES:
            problem: str | None = f"{label}: no C kernel for op {node.op}"
        elif not is_integer_node(node) and not float_graph and label not in kept_in_float:
            problem = (f"{label}: float op: the C backend emits int8 kernels only (float is "
                       "allowed only at the QuantizeLinear/DequantizeLinear edges and for "
                       "the ops --fallback float keeps in float)")
        else:
            reason = RULES[node.op][1](node)
            problem = f"{label}: {reason}" if reason else None
        if problem:
            problems.append(problem)
            first = first or node
    if problems:
        raise BackendError("C target cannot emit: " + capped(problems, "; "), node=first)


def _conv(graph: Graph, node: Node) -> None:
    x, w, y = node.arg(0), node.arg(1), node.output
    out_c, kh, kw, cg = w.shape
    group = int(node.attr("group", 1))
    strides, dilations = tuple(node.attr("strides")), tuple(node.attr("dilations", (1, 1)))
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    act = activation(node)
    if (kh, kw, *strides, group) == (1, 1, 1, 1, 1) and x.shape[1:3] == y.shape[1:3]:
        weights = const(graph, w.constant.reshape(out_c, cg), w.name + "_fc", w.quant)
        graph.rewrite_node(node, "tfl.fully_connected", [x, weights, node.input(2)],
                           {"fused_activation_function": act, "keep_num_dims": True})
    elif group > 1 and group == x.shape[3] and cg == 1:
        quant = None if w.quant is None else QuantParams(
            w.quant.scale, w.quant.zero_point, 3 if w.quant.axis is not None else None)
        weights = const(graph, w.constant.transpose(3, 1, 2, 0), w.name + "_dw", quant)
        graph.rewrite_node(node, "c.depthwise_conv_2d", [x, weights, node.input(2)],
                           {"strides": strides, "dilations": dilations, "pads": pads,
                            "depth_multiplier": out_c // x.shape[3], "activation": act})
    else:
        graph.rewrite_node(node, "c.conv_2d", [x, w, node.input(2)],
                           {"strides": strides, "dilations": dilations, "pads": pads,
                            "group": group, "activation": act})


def _pool(graph: Graph, node: Node) -> None:
    attrs: dict[str, object] = {"kernel_shape": tuple(node.attr("kernel_shape")),
             "strides": tuple(node.attr("strides")), "pads": tuple(node.attr("pads")),
             "activation": activation(node)}
    if node.op == "AveragePool":
        attrs["count_include_pad"] = int(node.attr("count_include_pad", 0))
    graph.rewrite_node(node, "c.max_pool_2d" if node.op == "MaxPool" else "c.average_pool_2d",
                       [node.arg(0)], attrs)


def _no_check(node: Node) -> str | None:
    return None


#: op -> (rewrite, check): TFLite's rule unless the C kernels differ (float graphs too).
RULES = {op: (rule.rewrite, rule.check or _no_check) for op, rule in TFLITE_RULES.items()}
RULES.update({"Conv": (_conv, _window_check), "MaxPool": (_pool, _window_check),
              "AveragePool": (_pool, _window_check)})


def _as_lookup(graph: Graph, node: Node) -> None:
    """Replace an int8 -> int8 element-wise target op by ``c.lut`` of its own outputs."""
    table = const(graph, lookup_table(node), f"{node.name}_lut")
    graph.rewrite_node(node, "c.lut", [node.arg(0), table])


@register_pass
@dataclass(frozen=True)
class LegalizeC(Pass):
    name = "legalize-c"
    summary = "rewrite an integer graph into the C target's ops (all problems at once)"
    provides = (C_OPS, TARGET_OPS)

    def run(self, graph: Graph, ctx: PassContext) -> None:
        check_legal(graph)
        float_graph = is_float_graph(graph)
        unsupported = []
        for node in list(graph.nodes):
            source_op = node.op
            in_float = float_graph or not is_integer_node(node)  # a --fallback float island
            RULES[node.op][0](graph, node)
            kernels = FLOAT_C_OPS if in_float else integer_ops()
            if node.op not in kernels:  # integer nodes: the C kernels are the integer ones
                unsupported.append(f"{node.name} ({source_op}): no C kernel for {node.op}")
                continue
            x = node.arg(0)
            if (node.output.type.numel >= LUT_MIN_ELEMENTS.get(source_op, 1 << 62)
                    and x is not None and x.dtype == DType.INT8
                    and node.output.dtype == DType.INT8):
                _as_lookup(graph, node)
                ctx.remark(node, f"{source_op} as a 256-entry lookup table")
        if unsupported:
            raise BackendError("C target cannot emit: " + capped(unsupported, "; "))
        fuse_splits(graph, ctx)
        drop_redundant_reshapes(graph, ctx)
        for value in list(graph.values.values()):
            if value.is_constant and not value.uses and value not in graph.outputs:
                graph.remove_value(value)
        claim_names(graph)

