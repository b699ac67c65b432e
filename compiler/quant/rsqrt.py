"""Integer RSQRT (``1 / sqrt(x)``, int8), bit-exact with TFLite-Micro's elementwise kernel.

Prepare: ``(M, e) = QuantizeMultiplier(1 / double(float32(sqrtf(s_x) * s_y)))``.
Per element, with ``v = q - z_x``:

* ``v == 0``: 127 (the largest output: any value near 0 means a huge reciprocal);
* otherwise ``(m, k) = InvSqrt(v)`` -- TFLite's ``GetInvSqrtQuantizedMultiplierExp``: the
  input normalised into ``[2**27, 2**29)`` by pairs of bits, five Newton-Raphson steps
  ``x <- 3/2 x - v/2 x**3`` in Q3.28 fixed point from ``x = 1``, times ``sqrt(2) / 2``,
  so that ``1 / sqrt(v) ~ m * 2**(k - 31)``;
  ``d = MBQM(1, m, k + 20)``, ``y = clamp(z_y + MBQM(d, M, e - 20))``.

TFLite-Micro refuses a negative ``v`` at run time ("Rsqrt is only defined for positive
values"); our kernel gives 127 for it (the same as 0) so that tables stay total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import INT8_MAX, INT8_MIN, as_int, f32
from microlith.quant.nodes import tensor_q
from microlith.quant.registry import integer_op

_SHIFT = 20  # TFLite-Micro's kShift: keeps the intermediate an integer
_HALF_THREE = (1 << 28) + (1 << 27)  # 1.5 in Q3.28
_ONE_Q3 = 1 << 28
_HALF_SQRT2 = 1518500250  # sqrt(2) / 2 in Q0.31


@dataclass(frozen=True, eq=False)
class RsqrtParams:
    x_zp: int
    y_zp: int
    mult: int
    shift: int


def inv_sqrt_multiplier(v: int) -> tuple[int, int]:
    """``(m, k)`` with ``1 / sqrt(v) ~ m * 2**(k - 31)`` for an int32 ``v > 1``; (INT32_MAX, 0)
    for ``v <= 1`` (TFLite's ``GetInvSqrtQuantizedMultiplierExp`` with ``reverse_shift = -1``)."""
    if v <= 1:
        return fp.INT32_MAX, 0
    shift = 11
    while v >= 1 << 29:
        v //= 4
        shift += 1
    pairs = (int(fp.count_leading_zeros_u32(v)) - 1) // 2 - 1
    shift -= pairs
    v <<= 2 * pairs
    x_in = v >> 1  # Q3.28
    half_in = int(fp.saturating_rounding_multiply_by_pot(x_in, -1))
    x = _ONE_Q3
    for _ in range(5):
        cube = fp.saturating_rounding_doubling_high_mul(
            fp.saturating_rounding_doubling_high_mul(x, x), x)  # Q9.22
        x3 = int(fp.rescale(cube, 9, 3))
        step = int(fp.wrap_int32(int(fp.saturating_rounding_doubling_high_mul(_HALF_THREE, x))
                                 - int(fp.saturating_rounding_doubling_high_mul(half_in, x3))))
        x = int(fp.rescale(step, 6, 3))
    m = int(fp.saturating_rounding_doubling_high_mul(x, _HALF_SQRT2))
    if shift < 0:
        m = int(fp.wrap_int32(m << -shift))
        shift = 0
    return m, -shift


def rsqrt_params(*, x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> RsqrtParams:
    product = f32(np.sqrt(f32(x_scale))) * f32(y_scale)
    mult, shift = fp.quantize_multiplier(1.0 / float(f32(product)))
    return RsqrtParams(int(x_zp), int(y_zp), mult, shift)


def _prepare(node: Node) -> RsqrtParams:
    (sx, zx), (sy, zy) = tensor_q(node.arg(0)), tensor_q(node.output)
    return rsqrt_params(x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy)


def rsqrt_table(p: RsqrtParams) -> np.ndarray:
    """The int8 output for each input -128..127."""
    out = []
    for q in range(INT8_MIN, INT8_MAX + 1):
        v = q - p.x_zp
        if v <= 0:
            out.append(INT8_MAX)
            continue
        m, k = inv_sqrt_multiplier(v)
        d = fp.multiply_by_quantized_multiplier(1, m, k + _SHIFT)
        y = int(fp.multiply_by_quantized_multiplier(d, p.mult, p.shift - _SHIFT)) + p.y_zp
        out.append(min(max(y, INT8_MIN), INT8_MAX))
    return np.asarray(out, np.int8)


@integer_op("tfl.rsqrt", prepare=_prepare)
def run_rsqrt(p: RsqrtParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [rsqrt_table(p)[as_int(need(args, 0)) + 128]]
