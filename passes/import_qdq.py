"""``import-qdq``: a Q/DQ model's own quantization becomes annotations on a float graph.

A model quantized by its producer (quantization-aware training exported from PyTorch,
onnxruntime's ``quantize_static`` in QDQ format, Brevitas, NNCF, ...) arrives as
``QuantizeLinear -> DequantizeLinear`` pairs on activations and ``DequantizeLinear`` on
integer weights (the frontend has checked and converted them: uint8 is int8 with the
zero point shifted by 128). This pass removes them so that the canonical passes
(BatchNorm folding, activation fusion, NHWC) see an ordinary float graph, and records
the model's numbers where ``insert-qdq`` reads them:

* activation pair ``x -> Q(s, z) -> DQ -> users``: users read ``x`` again and
  ``x.meta["qdq"] = QuantParams(s, z)``. ``Graph.replace_all_uses`` carries this
  annotation to the value that replaces ``x`` (e.g. a fused activation's producer).
* weight ``DequantizeLinear(q)``: the users read the float constant ``s (q - z)``
  (float32, as onnxruntime computes it) and each user node records
  ``node.meta["qdq_inputs"][index] = QuantParams`` (per tensor or per axis, in the
  ONNX layout). ``insert-qdq`` quantizes the (possibly transposed) float weights with
  these scales again, which gives back exactly ``q`` when no pass changed them.

So with no calibration data the scales and zero points are the model's. A tensor
quantized twice with different parameters (``Q -> DQ -> Q' -> DQ'``) is refused. A
``QuantizeLinear`` whose output is read by anything but a ``DequantizeLinear`` (an
integer graph output, an integer op) is refused, naming it: it cannot become part of an
integer kernel here. ``calibrate`` may still
run (``calibrate{optional=true}``) to fill tensors the model leaves unquantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.ir.types import QuantParams
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.quant.params import dequantize_array

QDQ_META = "qdq"  # value annotation: the model's QuantParams of a float activation
QDQ_INPUTS = "qdq_inputs"  # node annotation: input index -> QuantParams of a constant


def has_model_qdq(graph: Graph) -> bool:
    return any(node.meta.get("onnx_op") in ("QuantizeLinear", "DequantizeLinear")
               for node in graph.nodes)


@register_pass
@dataclass(frozen=True)
class ImportQDQ(Pass):
    name = "import-qdq"
    summary = "strip the model's Q/DQ pairs, keeping their scales and zero points as annotations"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        pairs = weights = 0
        for node in list(graph.nodes):
            if node.op != "DequantizeLinear" or node.meta.get("onnx_op") != "DequantizeLinear":
                continue
            if node.arg(0).is_constant:
                self._weight(graph, node)
                weights += 1
            else:
                self._pair(graph, node)
                pairs += 1
        for node in graph.nodes:
            if node.op == "QuantizeLinear" and node.meta.get("onnx_op") == "QuantizeLinear":
                users = sorted({u.node.name for u in node.output.uses})
                where = "a graph output" if node.output in graph.outputs else \
                    f"read by {', '.join(users)}"
                raise self.fail(node, f"QuantizeLinear output {node.output.name!r} is {where}, "
                                "not a DequantizeLinear: it cannot be fused into an integer "
                                "kernel")
        graph.meta["qdq_model"] = {"pairs": pairs, "weights": weights}
        ctx.remark(graph.name, f"model quantization imported: {pairs} activation Q/DQ pairs, "
                               f"{weights} quantized constants")

    @staticmethod
    def _weight(graph: Graph, node: Node) -> None:
        source = node.arg(0)
        qp = source.quant
        assert qp is not None, "the frontend gives quantized constants their parameters"
        data = np.asarray(source.constant)
        if qp.axis is None:
            real = ((data.astype(np.float32) - np.float32(qp.zero_point[0])) *
                    np.float32(qp.scale[0])).astype(np.float32)
        else:
            real = dequantize_array(data, qp)
        for use in node.output.uses:
            use.node.meta.setdefault(QDQ_INPUTS, {})[use.index] = qp
        name = node.output.name
        is_output = node.output in graph.outputs
        const = graph.add_constant(real, name + "_dq")
        graph.replace_all_uses(node.output, const)
        graph.remove_node(node)
        if not source.uses and source not in graph.outputs:
            graph.remove_value(source)
        if is_output:
            graph.rename_value(const, name)

    def _pair(self, graph: Graph, node: Node) -> None:
        quantized = node.arg(0)
        q = quantized.producer
        assert q is not None and q.op == "QuantizeLinear", "the frontend checked the pair"
        x = q.arg(0)
        qp: QuantParams | None = quantized.quant
        assert qp is not None
        previous = x.meta.get(QDQ_META)
        if previous is not None and previous != qp:
            raise self.fail(node, f"{x.name!r} is quantized twice with different parameters "
                                  f"({previous} and {qp}); not supported")
        x.meta[QDQ_META] = qp
        name = node.output.name
        is_output = node.output in graph.outputs
        graph.replace_all_uses(node.output, x)
        graph.remove_node(node)
        if not quantized.uses and quantized not in graph.outputs:
            graph.remove_node(q)
        if is_output and x not in graph.inputs:
            graph.rename_value(x, name)
