"""16x8 activations: LEAKY_RELU (the int8 formula, int16 clamp), bit-exact with TFLite-Micro.

LOGISTIC / TANH / SOFTMAX in 16x8 (TFLite-Micro's table-driven int16 kernels, output scale
1/32768) have no kernel here: ``insert-qdq`` keeps them in float with ``--fallback float``
and refuses them otherwise. HARD_SWISH has no int16 kernel in TFLite-Micro.
"""

from __future__ import annotations

import numpy as np

from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.activation import LeakyReluParams, _prepare_leaky_relu
from microlith.quant.arith import as_int
from microlith.quant.registry import integer_op


@integer_op("tfl.leaky_relu", prepare=_prepare_leaky_relu, wide=True)
def run_leaky_relu16(p: LeakyReluParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    identity = fp.multiply_by_quantized_multiplier(d, p.id_mult, p.id_shift)
    scaled = fp.multiply_by_quantized_multiplier(d, p.alpha_mult, p.alpha_shift)
    negative = -scaled if p.alpha_negative else scaled
    return [np.clip(p.y_zp + np.where(d >= 0, identity, negative), -32768, 32767
                    ).astype(np.int16)]
