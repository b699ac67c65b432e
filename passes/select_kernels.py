"""``select-kernels``: choose the C kernel variant of each convolution (``--optimize``).

``optimize=speed`` (the default) gives every ``CONV_2D`` with one group the arena scratch of
the Cortex-M DSP kernel (``microlith_kernels_dsp.h``): the int16 columns of two output
pixels, ``4 * k_h * k_w * in_c`` bytes (``MLK_CONV_SCRATCH_BYTES``), recorded as the
record's ``scratch_bytes`` for ``plan-memory`` to place. On a core with the DSP extension
the kernel then builds the columns (im2col) and runs a blocked matrix product with SMLAD;
elsewhere the portable kernel runs and the scratch is unused. A ``DEPTHWISE_CONV_2D`` with
a 3-wide kernel (``k_w == 3``, ``stride_w`` 1 or 2, multiplier 1, ``in_c % 4 == 0``) gets the
scratch of the DSP 3-wide depthwise kernel (``microlith_kernels_dsp_dw3.h``): a ring of
``k_h`` input rows of four channels, transposed to int16 and stored twice so that every
window is one run of consecutive rows, ``16 * k_h * wp`` bytes (``depthwise_scratch_bytes``).
Rows of fewer than ``DW3_MIN_OUT_W`` output pixels keep the kernel without scratch (measured
faster there: 4.25 against 4.90 instructions per MAC at 3 pixels, stride 1).
``optimize=size`` gives no scratch and records ``graph.meta["kernel_optimize"] = "size"``,
for which the C renderer writes ``#define MLK_PORTABLE`` into ``model.c``: the portable
kernels run on every core (the flash of the portable build, a smaller arena; the outputs
are the same bytes).
Measured on the Cortex-M4 (``tools/bench_mcu.py``): keeping the DSP fully connected and
depthwise kernels at size cost 1.47-1.55x the portable build's flash, and calling each
kernel once out of line (generic, unspecialised copies) was larger still (1.8-1.9x), so
the size mode is the portable build. Grouped convolutions always run the portable kernel.

``hybrid`` picks the kernel of a float CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED whose
weights are int8 per-channel (``--quantize dynamic`` with ``--target c``):

- ``integer`` (the default, faster on the Cortex-M4): each inference quantizes the layer's
  input to int8 (asymmetric per batch, as LiteRT's hybrid kernels with
  ``asymmetric_quantize_inputs``), runs the int8 dot product with int32 accumulation and
  scales once per output, ``y = b + s_x w_scale[c] (sum q w - zp_x sum w)``
  (``microlith_kernels_hybrid.h``). It needs arena scratch for the quantized input of one
  batch (``HybridParams.scratch_bytes``: the input row / image in int8, plus the DSP
  columns of a convolution under ``optimize=speed``).
  ``hybrid-inputs=symmetric`` quantizes the inputs symmetrically instead (zero point 0,
  ``max |x| / 127``; LiteRT's form without ``asymmetric_quantize_inputs``).
- ``dequantize``: the float kernel converts each int8 weight to float and scales the sum
  (``*_w8`` in ``microlith_kernels_float.h``); no scratch.

Runs after ``prepare`` (it rewrites the prepared records) and before ``plan-memory``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.ir.core import Graph, Node
from microlith.ir.types import DType
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import MEMORY_PLANNED, PREPARED, TARGET_OPS
from microlith.quant.conv import ConvParams
from microlith.quant.registry import is_integer_node

CONV_OPS = ("c.conv_2d", "tfl.conv_2d")
DEPTHWISE_OPS = ("c.depthwise_conv_2d", "tfl.depthwise_conv_2d")
DW3_MAX_KH = 7  # MLK_DW3_MAX_KH
# The narrowest output rows the 3-wide depthwise kernel takes, by stride_w: on narrower rows
# its per-row work (transposing the new input rows, setting up each channel) outweighs the
# pixels (Cortex-M4, tools/bench_mcu.py --layers: 3 pixels at stride 1 took 4.90 instructions
# per MAC against 4.25 without it, 3 and 4 at stride 2 took 5.66 and 4.86 against 4.67 and
# 4.49; 6 at stride 2, 4.28 against 4.53).
DW3_MIN_OUT_W = {1: 4, 2: 6}
HYBRID_OPS = ("c.conv_2d", "c.depthwise_conv_2d", "tfl.fully_connected")


@dataclass(frozen=True)
class HybridParams:
    """The record of a float layer with int8 weights run by the integer-dot hybrid kernel:
    ``col_bytes`` of DSP im2col columns (convolutions under ``optimize=speed``), then
    ``input_bytes`` for the quantized input of one batch."""

    col_bytes: int
    input_bytes: int
    symmetric: bool = False

    @property
    def scratch_bytes(self) -> int:
        return self.col_bytes + self.input_bytes


def hybrid_eligible(node: Node) -> bool:
    """A float layer whose weights are constant symmetric int8 (the dynamic-range form)."""
    if node.op not in HYBRID_OPS or is_integer_node(node) or len(node.inputs) < 2:
        return False
    x, w = node.inputs[0], node.inputs[1]
    return (x is not None and w is not None and w.is_constant and w.dtype == DType.INT8
            and x.dtype == DType.FLOAT32 and w.quant is not None
            and not any(w.quant.zero_point))


def accumulator_bound(node: Node) -> int:
    """The largest ``255 sum|w[c]| + 128 |sum w[c]|`` over output channels: a bound on the
    hybrid kernel's int32 accumulator (|q - zp| <= 255, the folded term |zp| <= 128)."""
    w = np.asarray(node.arg(1).data, np.int64)
    axis = 3 if node.op == "c.depthwise_conv_2d" else 0
    rows = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    bound = 255 * np.abs(rows).sum(axis=1) + 128 * np.abs(rows.sum(axis=1))
    return int(bound.max(initial=0))


def hybrid_params(node: Node, optimize: str, symmetric: bool) -> HybridParams:
    x = node.arg(0)
    shape = [int(d) for d in x.shape]
    if node.op == "tfl.fully_connected":
        depth = int(node.arg(1).shape[1])
        return HybridParams(0, depth, symmetric)
    image = int(math.prod(shape[1:]))
    col = 0
    if node.op == "c.conv_2d" and optimize == "speed" and int(node.attr("group", 1)) == 1:
        w = node.arg(1)
        k_h, k_w, in_c = int(w.shape[1]), int(w.shape[2]), shape[3]
        col = (4 if in_c % 4 == 0 else 6) * k_h * k_w * in_c
    return HybridParams(col, image, symmetric)


def conv_scratch_bytes(p: ConvParams) -> int:
    """Scratch of the DSP convolution (``MLK_CONV_SCRATCH_BYTES``): two int16 columns of
    ``k_h * k_w * in_c``, and a third (the window in natural order) unless ``in_c % 4 == 0``."""
    if p.depth_multiplier or p.groups != 1:
        return 0
    return (4 if p.in_c % 4 == 0 else 6) * p.k_h * p.k_w * p.in_c


def depthwise_scratch_bytes(p: ConvParams) -> int:
    """Scratch of the DSP 3-wide depthwise kernel (``microlith_kernels_dsp_dw3.h``): four
    channels of ``2 k_h`` transposed int16 rows of ``wp`` columns (``mlk_dw3_width``), for
    ``k_w == 3``, no dilation, ``stride_w`` 1 or 2, multiplier 1, ``in_c % 4 == 0`` and output
    rows of at least ``DW3_MIN_OUT_W`` pixels; else 0 (the kernel without scratch runs)."""
    if not (p.depth_multiplier == 1 and p.k_w == 3 and p.dil_w == 1 and p.dil_h == 1
            and p.stride_w in (1, 2) and p.in_c % 4 == 0 and 1 <= p.k_h <= DW3_MAX_KH
            and p.out_w >= DW3_MIN_OUT_W[p.stride_w]):
        return 0
    wp = max(p.out_w * p.stride_w + 3, p.pad_left + p.in_w)
    wp += wp % 2
    return 16 * p.k_h * wp


@register_pass
@dataclass(frozen=True)
class SelectKernels(Pass):
    name = "select-kernels"
    summary = ("choose C kernel variants: speed (DSP kernels, im2col scratch) or size (portable, "
               "no scratch); float layers with int8 weights: integer-dot or dequantizing")
    optimize: Literal["speed", "size"] = "speed"
    hybrid: Literal["integer", "dequantize"] = "integer"
    hybrid_inputs: Literal["asymmetric", "symmetric"] = "asymmetric"
    requires = (TARGET_OPS, PREPARED)
    invalidates = (MEMORY_PLANNED,)

    def check_options(self) -> str | None:
        if self.optimize not in ("speed", "size"):
            return f"option optimize={self.optimize} must be speed or size"
        if self.hybrid not in ("integer", "dequantize"):
            return f"option hybrid={self.hybrid} must be integer or dequantize"
        if self.hybrid_inputs not in ("asymmetric", "symmetric"):
            return f"option hybrid-inputs={self.hybrid_inputs} must be asymmetric or symmetric"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        total = 0
        for node in graph.nodes:
            if self.hybrid == "integer" and hybrid_eligible(node):
                if accumulator_bound(node) >= 1 << 31:
                    ctx.remark(node.name, "hybrid=integer: the int32 accumulator could "
                               "overflow; the int8 weights are dequantized in the kernel")
                    continue
                node.params = hybrid_params(node, self.optimize,
                                            self.hybrid_inputs == "symmetric")
                total += node.params.scratch_bytes
                continue
            p = node.params
            if node.op not in CONV_OPS + DEPTHWISE_OPS or not isinstance(p, ConvParams):
                continue
            scratch = conv_scratch_bytes if node.op in CONV_OPS else depthwise_scratch_bytes
            nbytes = scratch(p) if self.optimize == "speed" else 0
            node.params = dataclasses.replace(p, scratch_bytes=nbytes)
            total += nbytes
        graph.meta["kernel_optimize"] = self.optimize  # read by the C renderer (size: portable)
        ctx.remark(graph.name, f"optimize={self.optimize}: {total} bytes of kernel scratch")
