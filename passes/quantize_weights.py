"""``quantize-weights``: weight-only post-training quantization (TFLite's two data-free modes).

``dtype=int8`` is the converter's *dynamic range* mode (``optimizations=[DEFAULT]`` without
representative data): the weights of every convolution, depthwise convolution and
FullyConnected become int8, symmetric (zero point 0), one scale per output channel
(``scale[c] = max|W[c]| / 127``, axis 0 of OHWI / ``[N, K]``; ``legalize-tflite`` moves
the depthwise axis to 3 with the weights). Activations, biases and the model interface stay
float32: these are LiteRT's *hybrid* kernels, which quantize each input on the fly per
inference (CONV_2D and DEPTHWISE_CONV_2D per batch row asymmetrically; FULLY_CONNECTED
asymmetrically because ``legalize-tflite`` sets ``asymmetric_quantize_inputs``, the
converter's default). Not quantized (their hybrid kernels do not exist or do not apply):
dilated convolutions (LiteRT's hybrid convolutions run with dilation 1), transposed
convolutions, weights that are not constant, and weights with fewer than ``min_elements``
elements (default 0: every eligible layer, smaller and as accurate on the digits models;
1024 is the TF converter's default threshold). A per-channel weight whose channel scales
are all equal is written per tensor (LiteRT's per-channel hybrid path is taken only when
the scales differ).

``dtype=float16`` is the converter's float16 mode (``supported_types=[tf.float16]``): every
float32 weight and bias of those ops, and every float32 constant operand of an
element-wise op, is rounded to float16 and stored as such; ``legalize-tflite`` then puts a
DEQUANTIZE (float16 -> float32) in front of each user, exactly the form the converter
writes and LiteRT (and its GPU delegate) reads. The C target keeps them float16 and
converts in its kernels. ``min_elements`` applies here too: a constant with fewer elements
stays float32 (default 0: every one, as the converter; on small models 64 gives smaller
files, because a float16 constant costs a DEQUANTIZE operator and a second tensor, about
100 bytes with their names, to save 2 bytes per element).

Deliberately not handled: int8 embedding tables / LSTM / RNN (microlith emits none),
BATCH_MATMUL (microlith emits none: a MatMul with constant B is a FullyConnected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Int8Rule, get_op, is_registered
from microlith.ir.types import DType, QuantParams
from microlith.passes.import_qdq import QDQ_INPUTS
from microlith.passes.qdq_plan import fit_weights
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import NHWC
from microlith.quant.params import quantize_weights

#: ops whose weights (input 1) have a hybrid kernel in LiteRT once legalized
HYBRID_OPS = ("Conv", "FullyConnected")


def hybrid_refusal(node: Node, min_elements: int) -> str | None:
    """Why ``node``'s weights stay float in dynamic-range mode (None: they become int8)."""
    if node.op not in HYBRID_OPS:
        return "no hybrid kernel"
    w = node.input(1)
    if w is None or not w.is_constant or w.dtype != DType.FLOAT32:
        return "weights are not a float32 constant"
    if node.op == "Conv" and tuple(node.attr("dilations", (1, 1))) != (1, 1):
        return "dilated convolution (LiteRT's hybrid convolutions have no dilation)"
    if w.constant.size < min_elements:
        return f"{w.constant.size} weights (< min-elements {min_elements})"
    return None


def int8_weights(w: np.ndarray) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 per output channel (axis 0); per tensor when all scales are equal."""
    q, params = quantize_weights(w, axis=0)
    if len(set(params.scale)) == 1:
        return quantize_weights(w, axis=None)
    return q, params


def _float16_operands(node: Node) -> list[int]:
    """Input positions of ``node`` whose float32 constants the float16 mode stores as half."""
    if not is_registered(node.op):
        return []
    rule = get_op(node.op).int8
    if node.op in HYBRID_OPS or node.op == "ConvTranspose":
        return [1, 2]
    if rule is Int8Rule.RESCALE:
        return list(range(len(node.inputs)))
    return []


@register_pass
@dataclass(frozen=True)
class QuantizeWeights(Pass):
    name = "quantize-weights"
    summary = "weight-only quantization: int8 per-channel (dynamic range, hybrid) or float16"
    requires = (NHWC,)
    dtype: Literal["int8", "float16"] = "int8"
    min_elements: int = 0

    def check_options(self) -> str | None:
        if self.min_elements < 0:
            return "min-elements must be >= 0"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        graph.meta["weight_storage"] = self.dtype
        for node in list(graph.nodes):
            if self.dtype == "int8":
                self._int8(graph, node, ctx)
            else:
                self._float16(graph, node, self.min_elements)

    def _int8(self, graph: Graph, node: Node, ctx: PassContext) -> None:
        if node.op not in HYBRID_OPS:
            return
        why = hybrid_refusal(node, self.min_elements)
        if why is not None:
            ctx.remark(node.name, f"weights kept in float32: {why}")
            return
        w = node.arg(1)
        model = node.meta.get(QDQ_INPUTS, {}).get(1)  # a weight-only Q/DQ model's own
        fitted = fit_weights(w.constant, model) if model is not None else None
        if isinstance(fitted, str):
            ctx.remark(node.name, f"weights requantized: the model's scales cannot be kept: "
                       f"{fitted}")
        q, params = fitted if isinstance(fitted, tuple) else int8_weights(w.constant)
        node.set_input(1, graph.add_constant(q, w.name + "_int8", quant=params))

    @staticmethod
    def _float16(graph: Graph, node: Node, min_elements: int) -> None:
        for index in _float16_operands(node):
            value = node.input(index)
            if value is None or not value.is_constant or value.dtype != DType.FLOAT32:
                continue
            if value.constant.size < min_elements:
                continue
            half = value.constant.astype(np.float16)
            if not np.array_equal(np.isfinite(half), np.isfinite(value.constant)):
                continue  # out of float16 range: keep it exact rather than infinite
            node.set_input(index, _half_constant(graph, value, half))


def _half_constant(graph: Graph, value: Value, half: np.ndarray) -> Value:
    return graph.add_constant(half, value.name + "_fp16")
