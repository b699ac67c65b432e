"""Nodes whose int8 kernel exists but cannot run every input: kept off the integer path
(int8 activations only; the 16x8 kernels are other code).

int8 SOFTMAX over ``depth >= 512`` entries: TFLite-Micro and LiteRT abort (a
``RoundingDivideByPOT`` exponent assertion) on any row whose sum of exponentials reaches
512. Each entry contributes ``exp(s beta (x - max)) <= 1`` (``2**19`` in the kernel's
Q12.19 sum ``S``); the output exponent is ``(12 - clz(S)) + 23``, which leaves 0..31 when
``S >= 2**28``, i.e. 512 entries tied at the row's maximum. Ties are not a matter of
scales: 512 equal float logits (e.g. the ``onnx`` package's light models, whose weights
are one constant) tie under any quantization. Depth 511 is always safe (``S < 511 * 2**19``). With
``--fallback float`` such a softmax is treated as having no int8 kernel and stays in
float (DEQUANTIZE, float SOFTMAX, QUANTIZE), which runs for every input; without it the
int8 kernel is kept (a trained 1000-class classifier rarely has 512 tied logits, and the
TF converter writes the same op) and ``insert-qdq`` warns, naming the node.
"""

from __future__ import annotations

from microlith.ir.core import Node

#: rows this long can reach the runtimes' aborting exponent (512 tied maxima)
SOFTMAX_ABORT_DEPTH = 512


def int8_refusal(node: Node) -> str | None:
    """Why ``node`` must not take its (existing) int8 kernel, or None."""
    if node.op in ("Softmax", "tfl.softmax"):
        x = node.arg(0)
        if x is None or not x.type.rank:
            return None
        axis = int(node.attr("axis", -1)) % x.type.rank if node.op == "Softmax" else -1
        depth = int(x.shape[axis])
        if depth >= SOFTMAX_ABORT_DEPTH:
            return (f"int8 SOFTMAX over {depth} >= {SOFTMAX_ABORT_DEPTH} entries aborts "
                    "TFLite-Micro and LiteRT when 512 of them tie")
    return None
