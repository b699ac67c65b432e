"""Integer fixed-point primitives of TFLite / TFLite-Micro, vectorized and bit-exact.

Every integer array here is an ``int64`` carrier of an ``int32`` (or ``int16``) value; the
functions reproduce the C arithmetic exactly, including C's truncating division,
arithmetic right shifts and two's-complement wrap-around where the C code wraps.

Multipliers.  A real multiplier ``M > 0`` is stored as ``(m, s)`` with
``M ~= m * 2**(s - 31)``, ``m`` in ``[2**30, 2**31)`` (a Q0.31 fraction in [0.5, 1)):
``frexp`` gives ``M = q * 2**s``, ``m = round_half_away(q * 2**31)``; a rounding up to
``2**31`` is renormalized to ``(2**30, s + 1)``; ``s < -31`` flushes to ``(0, 0)``;
``M == 0`` gives ``(0, 0)``.  Applying it to an int32 ``x`` ("double rounding", TFLite's
default build, which TFLite-Micro's Python runtime uses)::

    y = RDBP(SRDHM(x * 2**max(s, 0), m), max(-s, 0))

* ``SRDHM(a, b)`` (saturating rounding doubling high multiply, ARM ``VQRDMULH``):
  ``(a*b + nudge) / 2**31`` truncated toward zero, ``nudge = 2**30`` if ``a*b >= 0`` else
  ``1 - 2**30``; the only overflow, ``a == b == -2**31``, saturates to ``2**31 - 1``.
* ``RDBP(x, e)`` (rounding divide by power of two): ``(x >> e) + (r > t)`` with
  ``r = x & (2**e - 1)`` and ``t = (2**e - 1) >> 1 + (x < 0)``: round half away from zero.
* ``x * 2**max(s, 0)`` is an int32 product and wraps like the C code.

gemmlowp fixed point.  A ``FixedPoint<int32, I>`` has ``I`` integer bits and
``31 - I`` fractional bits; ``a * b`` is ``SRDHM`` (integer bits add), ``a + b`` wraps,
``Rescale<J>`` is a saturating rounding multiply by ``2**(I - J)``.  On top of these,
``exp_on_negative_values`` (Taylor series on [-1/4, 0) times a barrel of
``exp(-2**k)`` constants), ``one_over_one_plus_x_for_x_in_0_1`` and
``one_minus_x_over_one_plus_x_for_x_in_0_1`` (three Newton-Raphson steps from
``48/17 - 32/17 d``), ``logistic`` and ``tanh`` give the integer transcendental
functions of the int8 SOFTMAX / LOGISTIC / TANH kernels.

Not handled: ``TFLITE_SINGLE_ROUNDING`` builds and ``TFLITE_EMULATE_FLOAT``.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1

IntArray = np.ndarray


def _i64(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def wrap_int32(x: object) -> np.ndarray:
    """``static_cast<int32_t>`` of an integer: two's-complement wrap to [-2**31, 2**31)."""
    return ((_i64(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap_int16(x: object) -> np.ndarray:
    """``static_cast<int16_t>`` of an integer: wrap to [-2**15, 2**15)."""
    return ((_i64(x) + (1 << 15)) & 0xFFFF) - (1 << 15)


def round_half_away(x: float) -> int:
    """``std::round`` of a double: nearest integer, ties away from zero (exact)."""
    if not math.isfinite(x):
        raise ValueError(f"cannot round {x!r}")
    a = abs(x)
    f = math.floor(a)
    r = f + 1 if a - f >= 0.5 else f
    return int(math.copysign(r, x)) if r else 0


def _trunc_div_pow2(v: np.ndarray, bits: int) -> np.ndarray:
    """C integer division ``v / 2**bits`` (truncation toward zero) of int64 values."""
    return np.where(v >= 0, v >> bits, -((-v) >> bits))


# --------------------------------------------------------------------------- multipliers


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: ``real ~= m * 2**(shift - 31)``; returns ``(m, shift)``.

    ``m`` is an int32 in ``[2**30, 2**31)`` (negative for negative ``real``); multipliers
    >= 1 get a positive (left) shift; ``|real| < ~2**-32`` and ``0`` give ``(0, 0)``.
    """
    real = float(real)
    if not math.isfinite(real):
        raise ValueError(f"quantize_multiplier: non-finite multiplier {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))  # exact: q has 53 bits
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """``QuantizeMultiplierSmallerThanOneExp``: as ``quantize_multiplier`` for 0 < real < 1."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real!r} is not in (0, 1) (TFLite aborts)")
    m, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"multiplier {real!r} rounds to 1.0 (TFLite aborts)")
    return m, shift


def quantize_multiplier_greater_than_one(real: float) -> tuple[int, int]:
    """``QuantizeMultiplierGreaterThanOne``: as ``quantize_multiplier`` for real > 1."""
    if not real > 1.0:
        raise ValueError(f"multiplier {real!r} is not > 1 (TFLite aborts)")
    return quantize_multiplier(real)


def frexp_multiplier(real: float) -> tuple[int, int]:
    """``q, e = frexp(real); (int32(round(q * 2**31)), e)`` without renormalization.

    This is how the int8 LOGISTIC and TANH kernels prepare their input multiplier.
    """
    q, shift = math.frexp(float(real))
    return int(wrap_int32(round_half_away(q * (1 << 31)))), shift


# --------------------------------------------------------------------------- core ops


def saturating_rounding_doubling_high_mul(a: object, b: object) -> IntArray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values (``VQRDMULH``)."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pow2(ab + nudge, 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, high)


def saturating_rounding_doubling_high_mul_int16(a: object, b: object) -> IntArray:
    """The int16 overload: ``(a*b + nudge) / 2**15`` with ``nudge = ±2**14``, saturating."""
    a, b = _i64(a), _i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    high = _trunc_div_pow2(ab + nudge, 15)
    return np.where((a == b) & (a == INT16_MIN), INT16_MAX, high)


def rounding_divide_by_pot(x: object, exponent: object) -> IntArray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero.

    ``exponent`` (0..31) may be an array broadcast against ``x`` (e.g. per channel).
    """
    x, e = _i64(x), _i64(exponent)
    if np.any(e < 0) or np.any(e > 31):
        raise ValueError("rounding_divide_by_pot: exponent must be in [0, 31]")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def rounding_divide_by_pot_int16(x: object, exponent: object) -> IntArray:
    """The ``int16_t`` instantiation of ``RoundingDivideByPOT``.

    For exponents < 16 it equals the int32 one; for exponents >= 16 the mask
    ``2**e - 1`` is truncated to int16 (-1), which makes the C code return 1 for
    ``x >= 0`` and -1 for ``x < 0`` -- reproduced here.
    """
    x, e = _i64(x), _i64(exponent)
    small = rounding_divide_by_pot(x, np.minimum(e, 15))
    return np.where(e >= 16, np.where(x >= 0, 1, -1), small)


def multiply_by_quantized_multiplier(x: object, multiplier: object, shift: object) -> IntArray:
    """TFLite ``MultiplyByQuantizedMultiplier(int32 x, int32 m, int shift)`` (double rounding).

    ``y = RDBP(SRDHM(int32(x * 2**max(shift, 0)), m), max(-shift, 0))``; ``x`` is taken
    modulo 2**32 first (the C parameter is an int32). ``multiplier`` and ``shift`` may be
    arrays broadcast against ``x`` (per-channel requantization).
    """
    x = wrap_int32(x)
    s = _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = wrap_int32(x * (np.int64(1) << left))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_int64(
    x: object, multiplier: object, shift: object
) -> IntArray:
    """The ``int64_t x`` overload (int16 conv / FC): a 16-bit multiplier, one rounding.

    ``m16 = (m + 2**15) >> 16`` (``0x7FFF`` when ``m >= 0x7FFF0000``) and
    ``y = int32((x * m16 + 2**(14 - shift)) >> (15 - shift))``.
    """
    x, m, s = _i64(x), _i64(multiplier), _i64(shift)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - s
    return wrap_int32((x * reduced + (np.int64(1) << (total - 1))) >> total)


def saturating_rounding_multiply_by_pot(x: object, exponent: int) -> IntArray:
    """gemmlowp ``SaturatingRoundingMultiplyByPOT<exponent>`` on int32 values.

    A positive exponent is a left shift saturating to the int32 range; a negative one
    is ``RDBP(x, -exponent)``.
    """
    x = _i64(x)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = x << exponent
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))


def rescale(x: object, src_integer_bits: int, dst_integer_bits: int) -> IntArray:
    """gemmlowp ``Rescale<dst>(FixedPoint<int32, src>)``."""
    return saturating_rounding_multiply_by_pot(x, src_integer_bits - dst_integer_bits)


def rounding_half_sum(a: object, b: object) -> IntArray:
    """gemmlowp ``RoundingHalfSum``: ``(a + b + sign(a + b)) / 2`` truncated (int64 sum)."""
    total = _i64(a) + _i64(b)
    return _trunc_div_pow2(total + np.where(total >= 0, 1, -1), 1)


def count_leading_zeros_u32(x: object) -> IntArray:
    """Leading zero bits of ``uint32(x)`` (32 for 0)."""
    u = _i64(x) & 0xFFFFFFFF
    _, exp = np.frexp(u.astype(np.float64))  # exact: u < 2**53
    return np.where(u == 0, 32, 32 - exp.astype(np.int64))


# --------------------------------------------------------------------------- gemmlowp functions


def _add(a: object, b: object) -> IntArray:
    return wrap_int32(_i64(a) + _i64(b))


def _sub(a: object, b: object) -> IntArray:
    return wrap_int32(_i64(a) - _i64(b))


_mul = saturating_rounding_doubling_high_mul


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: object) -> IntArray:
    """``exp(a)`` for Q0.31 ``a`` in [-1/4, 0): 4th-order Taylor series around -1/8."""
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _add(a, 1 << 28)  # a + 1/8
    x2 = _mul(x, x)
    x3 = _mul(x2, x)
    x4 = _mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(_add(_mul(_add(x4_over_4, x3), constant_1_over_3), x2), 1)
    return _add(constant_term, _mul(constant_term, _add(x, poly)))


# (exponent k, Q0.31 of exp(-2**k)) for the barrel shifter of exp_on_negative_values.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip


def exp_on_negative_values(a: object, integer_bits: int) -> IntArray:
    """``exp(a)`` (Q0.31 result) of a ``FixedPoint<int32, integer_bits>`` ``a <= 0``.

    ``a = q + r`` with ``r`` in [-1/4, 0) the residue modulo 1/4: ``exp(r)`` by Taylor
    series, times ``exp(-2**k)`` for every bit ``k`` set in ``r - a``; ``exp(0) = 1``.
    """
    a = _i64(a)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod = _sub(a & (one_quarter - 1), one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod, integer_bits, 0)
    )
    remainder = _sub(a_mod, a)
    for k, multiplier in _EXP_BARREL:
        if integer_bits > k:
            bit = (remainder >> (frac_bits + k)) & 1
            result = np.where(bit != 0, _mul(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))  # -32.0
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal_half(half_denominator: np.ndarray) -> np.ndarray:
    """Three Newton-Raphson steps for ``1 / half_denominator``, as Q2.29."""
    one_f2 = 1 << 29
    x = _add(1515870810, _mul(half_denominator, -1010580540))  # 48/17 - 32/17 d
    for _ in range(3):
        one_minus = _sub(one_f2, _mul(half_denominator, x))
        x = _add(x, rescale(_mul(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: object) -> IntArray:
    """``1 / (1 + a)`` for Q0.31 ``a`` in [0, 1), as Q0.31."""
    x = _newton_reciprocal_half(rounding_half_sum(a, INT32_MAX))
    return rescale(x, 1, 0)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: object) -> IntArray:
    """``(1 - a) / (1 + a)`` for Q0.31 ``a`` in [0, 1), as Q0.31."""
    x = _newton_reciprocal_half(rounding_half_sum(a, INT32_MAX))
    return rescale(_sub(x, 1 << 29), 2, 0)


def logistic(a: object, integer_bits: int) -> IntArray:
    """gemmlowp ``logistic``: ``1 / (1 + exp(-a))`` of a ``FixedPoint<int32, I>``, as Q0.31."""
    a = _i64(a)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits)
    )
    if_negative = _sub(INT32_MAX, if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))


def tanh(a: object, integer_bits: int) -> IntArray:
    """gemmlowp ``tanh`` of a ``FixedPoint<int32, I>``, as Q0.31."""
    a = _i64(a)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))  # -|a|
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def get_reciprocal(x: object, x_integer_digits: int) -> tuple[IntArray, IntArray]:
    """TFLite ``GetReciprocal``: ``1/x`` of a positive ``FixedPoint<int32, digits>``.

    Returns ``(scale, num_bits_over_unit)`` with ``1/x ~= scale * 2**-(31 + bits)``:
    ``x`` is normalized to ``[1, 2)`` by its leading zeros and
    ``one_over_one_plus_x_for_x_in_0_1`` is applied to the normalized ``x - 1``.
    """
    x = _i64(x)
    headroom_plus_one = count_leading_zeros_u32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted = ((x & 0xFFFFFFFF) << headroom_plus_one) & 0xFFFFFFFF
    shifted_minus_one = wrap_int32(shifted - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


# --------------------------------------------------------------------------- prepare helpers


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    """TFLite ``CalculateInputRadius``: largest ``|x|`` whose rescaled value does not saturate.

    ``floor((2**I - 1) * 2**(total - I) / 2**left_shift)`` in double arithmetic.
    """
    value = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * float(1 << (total_signed_bits - input_integer_bits))
        / float(2.0**input_left_shift)
    )
    return int(math.floor(value))


def preprocess_softmax_scaling(
    beta: float, input_scale: float, input_integer_bits: int
) -> tuple[int, int]:
    """TFLite ``PreprocessSoftmaxScaling``: multiplier for ``beta * scale * 2**(31 - I)``.

    The double product is capped at ``2**31 - 1`` and quantized with
    ``QuantizeMultiplierGreaterThanOne``; returns ``(multiplier, left_shift)``.
    """
    real = min(
        float(beta) * float(input_scale) * float(1 << (31 - input_integer_bits)),
        float((1 << 31) - 1),
    )
    return quantize_multiplier_greater_than_one(real)
