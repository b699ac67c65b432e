"""``select-kernels``: choose the C kernel variant of each convolution (``--optimize``).

``optimize=speed`` (the default) gives every ``CONV_2D`` with one group the arena scratch of
the Cortex-M DSP kernel (``microlith_kernels_dsp.h``): the int16 columns of two output
pixels, ``4 * k_h * k_w * in_c`` bytes (``MLK_CONV_SCRATCH_BYTES``), recorded as the
record's ``scratch_bytes`` for ``plan-memory`` to place. On a core with the DSP extension
the kernel then builds the columns (im2col) and runs a blocked matrix product with SMLAD;
elsewhere the portable kernel runs and the scratch is unused. ``optimize=size`` gives no
scratch and records ``graph.meta["kernel_optimize"] = "size"``, for which the C renderer
writes ``#define MLK_PORTABLE`` into ``model.c``: the portable kernels run on every core
(the flash of the portable build, a smaller arena; the outputs are the same bytes).
Measured on the Cortex-M4 (``tools/bench_mcu.py``): keeping the DSP fully connected and
depthwise kernels at size cost 1.47-1.55x the portable build's flash, and calling each
kernel once out of line (generic, unspecialised copies) was larger still (1.8-1.9x), so
the size mode is the portable build. Grouped convolutions always run the portable kernel.

Runs after ``prepare`` (it rewrites the prepared records) and before ``plan-memory``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import MEMORY_PLANNED, PREPARED, TARGET_OPS
from microlith.quant.conv import ConvParams

CONV_OPS = ("c.conv_2d", "tfl.conv_2d")


def conv_scratch_bytes(p: ConvParams) -> int:
    """Scratch of the DSP convolution (``MLK_CONV_SCRATCH_BYTES``): two int16 columns of
    ``k_h * k_w * in_c``, and a third (the window in natural order) unless ``in_c % 4 == 0``."""
    if p.depth_multiplier or p.groups != 1:
        return 0
    return (4 if p.in_c % 4 == 0 else 6) * p.k_h * p.k_w * p.in_c


@register_pass
@dataclass(frozen=True)
class SelectKernels(Pass):
    name = "select-kernels"
    summary = "choose C kernel variants: speed (DSP im2col scratch) or size (no scratch)"
    optimize: Literal["speed", "size"] = "speed"
    requires = (TARGET_OPS, PREPARED)
    invalidates = (MEMORY_PLANNED,)

    def check_options(self) -> str | None:
        if self.optimize not in ("speed", "size"):
            return f"option optimize={self.optimize} must be speed or size"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        total = 0
        for node in graph.nodes:
            p = node.params
            if node.op not in CONV_OPS or not isinstance(p, ConvParams):
                continue
            nbytes = conv_scratch_bytes(p) if self.optimize == "speed" else 0
            node.params = dataclasses.replace(p, scratch_bytes=nbytes)
            total += nbytes
        graph.meta["kernel_optimize"] = self.optimize  # read by the C renderer (size: portable)
        ctx.remark(graph.name, f"optimize={self.optimize}: {total} bytes of kernel scratch")
