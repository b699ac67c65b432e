"""Int8 TFLite element-wise and data-movement kernels, bit-exact with TFLite-Micro:
ADD, SUB, MUL, MAXIMUM, MINIMUM, QUANTIZE, DEQUANTIZE, PAD, CONCATENATION, RESHAPE, TRANSPOSE.

ADD / SUB (numpy broadcasting; ``left_shift = 20``)::

    t   = 2 max(s_a, s_b)
    a'  = MBQM((a - z_a) 2**20, s_a / t),   b' = MBQM((b - z_b) 2**20, s_b / t)
    y   = clamp(z_y + MBQM(a' ± b', t / (2**20 s_y)), act_lo, act_hi)

The three real multipliers are computed in double for both ops (the TFLite-Micro
source of August 2026 still divides in float32 in SUB's prepare, but the runtime we test
against -- tflite-micro 0.dev20261023 -- matches the double computation bit for bit;
``test_precision_add_sub`` pins scales where the two differ).

MUL: ``y = clamp(z_y + MBQM((a - z_a)(b - z_b), double(s_a) double(s_b) / double(s_y)))``.

MAXIMUM / MINIMUM, CONCATENATION, RESHAPE, TRANSPOSE move int8 values unchanged (the
TFLite-Micro kernels require equal input/output quantization and do not rescale).
PAD fills with the output zero point (or a given constant).

QUANTIZE float -> int: ``clamp(int32(round(x / float(s_y))) + z_y)`` in float32 (ties
away from zero; an out-of-range float converts to -2**31 as on x86).  QUANTIZE int ->
int (requantize): ``clamp(z_y + MBQM(x - z_x, double(s_x) / double(s_y)))``.
DEQUANTIZE: ``float32(double(s) (x - z))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microlith.interpreter import fixed_point as fp
from microlith.interpreter.int8_common import (
    activation_range,
    as_int,
    clamp_to_int8,
    f32,
    float_to_int32,
    round_half_away_f,
)

_LEFT_SHIFT = 20  # int8 ADD/SUB headroom shift


def _add_sub(
    a: np.ndarray,
    b: np.ndarray,
    sign: int,
    multipliers: tuple[float, float, float],
    a_zero_point: int,
    b_zero_point: int,
    y_scale: float,
    y_zero_point: int,
    activation: str,
) -> np.ndarray:
    (m1, s1), (m2, s2), (mo, so) = (fp.quantize_multiplier_smaller_than_one(r) for r in multipliers)
    a1 = fp.multiply_by_quantized_multiplier((as_int(a) - int(a_zero_point)) << _LEFT_SHIFT, m1, s1)
    b1 = fp.multiply_by_quantized_multiplier((as_int(b) - int(b_zero_point)) << _LEFT_SHIFT, m2, s2)
    raw = fp.wrap_int32(a1 + sign * b1)
    y = fp.multiply_by_quantized_multiplier(raw, mo, so) + int(y_zero_point)
    lo, hi = activation_range(activation, y_scale, y_zero_point)
    return clamp_to_int8(y, lo, hi)


def _add_sub_multipliers(a_scale: float, b_scale: float, y_scale: float):
    """The three real multipliers of ADD/SUB, in double (``2 max`` is exact in float)."""
    sa, sb, sy = float(f32(a_scale)), float(f32(b_scale)), float(f32(y_scale))
    twice_max = 2.0 * max(sa, sb)
    return sa / twice_max, sb / twice_max, twice_max / ((1 << _LEFT_SHIFT) * sy)


def add(
    a: np.ndarray,
    b: np.ndarray,
    *,
    a_scale: float,
    a_zero_point: int,
    b_scale: float,
    b_zero_point: int,
    y_scale: float,
    y_zero_point: int,
    activation: str = "NONE",
) -> np.ndarray:
    """ADD (int8, broadcasting): both inputs rescaled to ``2 max(s_a, s_b) / 2**20``."""
    return _add_sub(
        a,
        b,
        1,
        _add_sub_multipliers(a_scale, b_scale, y_scale),
        a_zero_point,
        b_zero_point,
        y_scale,
        y_zero_point,
        activation,
    )


def sub(
    a: np.ndarray,
    b: np.ndarray,
    *,
    a_scale: float,
    a_zero_point: int,
    b_scale: float,
    b_zero_point: int,
    y_scale: float,
    y_zero_point: int,
    activation: str = "NONE",
) -> np.ndarray:
    """SUB (int8, broadcasting): as ADD with ``a' - b'``."""
    return _add_sub(
        a,
        b,
        -1,
        _add_sub_multipliers(a_scale, b_scale, y_scale),
        a_zero_point,
        b_zero_point,
        y_scale,
        y_zero_point,
        activation,
    )


def mul(
    a: np.ndarray,
    b: np.ndarray,
    *,
    a_scale: float,
    a_zero_point: int,
    b_scale: float,
    b_zero_point: int,
    y_scale: float,
    y_zero_point: int,
    activation: str = "NONE",
) -> np.ndarray:
    """MUL (int8, broadcasting): one multiplier ``s_a s_b / s_y`` on the centred product."""
    m, s = fp.quantize_multiplier(float(f32(a_scale)) * float(f32(b_scale)) / float(f32(y_scale)))
    product = fp.wrap_int32((as_int(a) - int(a_zero_point)) * (as_int(b) - int(b_zero_point)))
    y = fp.multiply_by_quantized_multiplier(product, m, s) + int(y_zero_point)
    lo, hi = activation_range(activation, y_scale, y_zero_point)
    return clamp_to_int8(y, lo, hi)


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MAXIMUM (int8, broadcasting, no rescaling)."""
    return np.maximum(np.asarray(a, np.int8), np.asarray(b, np.int8))


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MINIMUM (int8, broadcasting, no rescaling)."""
    return np.minimum(np.asarray(a, np.int8), np.asarray(b, np.int8))


_RANGES = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(np.int32): (fp.INT32_MIN, fp.INT32_MAX),
    np.dtype(np.uint8): (0, 255),
}


def quantize(
    x: np.ndarray,
    *,
    y_scale: float,
    y_zero_point: int,
    x_scale: float | None = None,
    x_zero_point: int = 0,
    out_dtype: type = np.int8,
) -> np.ndarray:
    """QUANTIZE: float -> int (affine, float32 math) or int -> int (requantize: ``x_scale``)."""
    dtype = np.dtype(out_dtype)
    lo, hi = _RANGES[dtype]
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        with np.errstate(over="ignore", invalid="ignore"):  # inf/nan follow the C cast
            scaled = x.astype(np.float32) / f32(y_scale)
        q = fp.wrap_int32(float_to_int32(round_half_away_f(scaled)) + int(y_zero_point))
    else:
        if x_scale is None:
            raise ValueError("quantize: an integer input needs x_scale (requantization)")
        m, s = fp.quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
        d = as_int(x) - int(x_zero_point)
        q = fp.multiply_by_quantized_multiplier(d, m, s) + int(y_zero_point)
    return np.clip(q, lo, hi).astype(dtype)


def dequantize(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """DEQUANTIZE: ``float32(double(s) * (x - z))``."""
    return (float(f32(x_scale)) * (as_int(x) - int(x_zero_point)).astype(np.float64)).astype(
        np.float32
    )


def pad(
    x: np.ndarray,
    paddings: Sequence[Sequence[int]],
    *,
    y_zero_point: int,
    constant: int | None = None,
) -> np.ndarray:
    """PAD / PADV2: ``paddings[d] = (before, after)``, filled with ``constant`` or ``z_y``."""
    value = int(y_zero_point) if constant is None else int(constant)
    widths = [(int(p[0]), int(p[1])) for p in paddings]
    return np.pad(np.asarray(x, np.int8), widths, constant_values=value)


def concatenation(inputs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """CONCATENATION (int8; all inputs share the output quantization in TFLite-Micro)."""
    return np.concatenate([np.asarray(t, np.int8) for t in inputs], axis=axis)


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """RESHAPE (bytes unchanged)."""
    return np.asarray(x).reshape(tuple(int(d) for d in shape))


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """TRANSPOSE: ``y = x.transpose(perm)``."""
    return np.ascontiguousarray(np.transpose(np.asarray(x), tuple(int(p) for p in perm)))
