"""Int8 TFLite activation kernels: SOFTMAX, LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU,
RELU6, bit-exact with TFLite-Micro (``fixed_point`` holds the gemmlowp arithmetic).

SOFTMAX (output scale exactly 1/256, zero point -128; TFLite-Micro refuses others)::

    (m, L) = PreprocessSoftmaxScaling(beta, s_x, 5)      # beta s_x 2**26 as a multiplier >= 1
    d      = x - max(row);  skipped (-> -128) when d < -CalculateInputRadius(5, L)
    e      = exp_on_negative_values(SRDHM(d * 2**L, m), Q5.26)          (Q0.31)
    S      = sum RDBP(e, 12)                                            (Q12.19)
    y      = clamp(RDBP(SRDHM(1/S, e), bits + 23) - 128, -128, 127)

with ``1/S`` from ``GetReciprocal`` (``bits`` = number of integer bits of ``S``).

LOGISTIC / TANH (int8): ``(m, e) = frexp(double(s_x) * 2**27)``, ``r =
CalculateInputRadius(4, e)``; for ``d = x - z_x`` with ``|d| < r``:
``logistic(MBQM(d, m, e) as Q4.27)`` scaled by ``RDBP(., 23) - 128`` (output scale 1/256,
zero point -128) and ``tanh(.)`` by ``RDBP(., 24)`` (scale 1/128, zero point 0);
``d <= -r`` / ``d >= r`` saturate to -128 / 127.  TFLite-Micro only checks LOGISTIC's
output zero point; the output scale is implied, so these kernels take no output quant.

HARD_SWISH: int16 fixed point on ``x' = (x - z_x) * 2**7`` (scale ``s_x / 128``):
``pre = SRDHM16(x', M_out)``, ``r = SRDHM16(x' << .., M_relu)`` rescaled so that 3.0 is
2**15 and mapped to [0, 1], ``y = RDBP16(SDHM16(r, pre), -e_out) + z_y`` with 16-bit
multipliers ``M = (m32 + 2**15) >> 16`` from ``QuantizeMultiplier`` of
``(s_x / 128) / s_y`` and ``(s_x / 128) / (3 / 32768)``.

LEAKY_RELU: ``y = z_y + MBQM(d, M_id)`` for ``d = x - z_x >= 0`` else ``MBQM(d, M_alpha)``
(negated for a negative alpha), with ``M_alpha = s_x alpha / s_y`` and ``M_id = s_x / s_y``.
RELU: ``clamp(z_y + MBQM(d, s_x / s_y), max(-128, z_y), 127)``.  RELU6 (TFLite-Micro)
ignores the output quantization and clamps ``x`` to ``[z_x, z_x + round(6.0f / s_x)]``.

Precision: the real multipliers of HARD_SWISH, LEAKY_RELU and RELU are evaluated in
double.  The TFLite-Micro source snapshot we read (August 2026) divides float32 values
there, but the runtime we test against (tflite-micro 0.dev20261023) matches the double
evaluation bit for bit; ``test_precision_*`` pin scales where the two differ.  RELU6's
``6.0f / s_x`` and the fused-activation ranges are float32 in both.
"""

from __future__ import annotations

import numpy as np

from microlith.interpreter import fixed_point as fp
from microlith.interpreter.int8_common import (
    INT8_MAX,
    INT8_MIN,
    as_int,
    clamp_to_int8,
    f32,
    round_half_away_f,
)


def softmax(
    x: np.ndarray,
    *,
    beta: float,
    x_scale: float,
    y_scale: float = 1.0 / 256.0,
    y_zero_point: int = -128,
) -> np.ndarray:
    """SOFTMAX over the last axis, int8 -> int8 (output quantization fixed to 1/256, -128)."""
    if int(y_zero_point) != -128 or f32(y_scale) != f32(1.0 / 256.0):
        raise ValueError("int8 SOFTMAX needs output scale 1/256 and zero point -128")
    mult, left_shift = fp.preprocess_softmax_scaling(float(f32(beta)), float(f32(x_scale)), 5)
    diff_min = -fp.calculate_input_radius(5, left_shift, 31)
    xi = as_int(x)
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    rescaled = fp.saturating_rounding_doubling_high_mul(
        fp.wrap_int32(diff * (1 << left_shift)), mult
    )
    exps = fp.exp_on_negative_values(rescaled, 5)
    terms = np.where(valid, fp.rounding_divide_by_pot(exps, 12), 0)
    sum_of_exps = fp.wrap_int32(terms.sum(axis=-1, keepdims=True))
    scale, bits = fp.get_reciprocal(sum_of_exps, 12)
    exponent = bits + 31 - 8
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("softmax: reciprocal exponent out of range (TFLite aborts)")
    out = fp.rounding_divide_by_pot(fp.saturating_rounding_doubling_high_mul(scale, exps), exponent)
    return np.where(valid, np.clip(out - 128, INT8_MIN, INT8_MAX), INT8_MIN).astype(np.int8)


def _sigmoid_like_input(x: np.ndarray, x_scale: float, x_zero_point: int):
    """``(d, q4, r)``: centred input, its Q4.27 rescaling and the saturation radius."""
    mult, shift = fp.frexp_multiplier(float(f32(x_scale)) * float(1 << 27))
    radius = fp.calculate_input_radius(4, shift, 31)
    d = as_int(x) - int(x_zero_point)
    inside = np.where(np.abs(d) < radius, d, 0)  # keep the rescaling in range
    return d, fp.multiply_by_quantized_multiplier(inside, mult, shift), radius


def logistic(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """LOGISTIC (int8); the output is implicitly quantized with scale 1/256, zero point -128."""
    d, q4, radius = _sigmoid_like_input(x, x_scale, x_zero_point)
    y = np.clip(fp.rounding_divide_by_pot(fp.logistic(q4, 4), 23) - 128, INT8_MIN, INT8_MAX)
    y = np.where(d <= -radius, INT8_MIN, np.where(d >= radius, INT8_MAX, y))
    return y.astype(np.int8)


def tanh(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """TANH (int8); the output is implicitly quantized with scale 1/128, zero point 0."""
    d, q4, radius = _sigmoid_like_input(x, x_scale, x_zero_point)
    y = np.clip(fp.rounding_divide_by_pot(fp.tanh(q4, 4), 24), INT8_MIN, INT8_MAX)
    y = np.where(d <= -radius, INT8_MIN, np.where(d >= radius, INT8_MAX, y))
    return y.astype(np.int8)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier`` then ``DownScaleInt32ToInt16Multiplier``."""
    m32, exponent = fp.quantize_multiplier(real)
    m16 = 32767 if m32 >= fp.INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16
    return m16, exponent


def _saturating_left_shift16(v: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(v * (1 << amount), fp.INT16_MIN, fp.INT16_MAX)


def _saturating_doubling_high_mul16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``SaturatingDoublingHighMul`` (int16): ``a*b / 2**15`` truncated, -1*-1 saturated."""
    ab = a * b
    high = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == b) & (a == fp.INT16_MIN), fp.INT16_MAX, high)


def _hard_swish_core(
    x: np.ndarray, x_zero_point: int, y_zero_point: int, out_real: float, relu_real: float
) -> np.ndarray:
    """HARD_SWISH given the real output and "relu-ish" multipliers (of ``s_x / 128``)."""
    out_m, out_exp = _int16_multiplier(out_real)
    if out_exp > 0:
        raise ValueError("hard_swish: output multiplier exponent > 0 (TFLM refuses)")
    relu_m, relu_exp = _int16_multiplier(relu_real)
    hires = fp.wrap_int16((as_int(x) - int(x_zero_point)) * (1 << 7))
    preshift = fp.saturating_rounding_doubling_high_mul_int16(hires, out_m)
    reluish = hires
    if relu_exp > 0:
        reluish = _saturating_left_shift16(reluish, relu_exp - 1)
    reluish = fp.saturating_rounding_doubling_high_mul_int16(reluish, relu_m)
    if relu_exp > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if relu_exp < 0:
        reluish = fp.rounding_divide_by_pot_int16(reluish, -relu_exp)
    reluish = fp.wrap_int16((reluish + (1 << 15)) >> 1)
    product = _saturating_doubling_high_mul16(reluish, preshift)
    y = fp.wrap_int16(fp.rounding_divide_by_pot_int16(product, -out_exp) + int(y_zero_point))
    return clamp_to_int8(y)


def hard_swish(
    x: np.ndarray, *, x_scale: float, x_zero_point: int, y_scale: float, y_zero_point: int
) -> np.ndarray:
    """HARD_SWISH (int8): ``x relu6(x + 3) / 6`` in TFLite's int16 fixed point."""
    hires_scale = float(f32(1.0 / 128.0) * f32(x_scale))  # exact: a power-of-two factor
    relu_scale = float(f32(3.0) / f32(32768.0))
    return _hard_swish_core(
        x, x_zero_point, y_zero_point, hires_scale / float(f32(y_scale)), hires_scale / relu_scale
    )


def leaky_relu(
    x: np.ndarray,
    *,
    alpha: float,
    x_scale: float,
    x_zero_point: int,
    y_scale: float,
    y_zero_point: int,
) -> np.ndarray:
    """LEAKY_RELU (int8): separate multipliers for the identity and the alpha branch."""
    sx, sy = float(f32(x_scale)), float(f32(y_scale))
    m_alpha, s_alpha = fp.quantize_multiplier(sx * float(f32(alpha)) / sy)
    m_id, s_id = fp.quantize_multiplier(sx / sy)
    d = as_int(x) - int(x_zero_point)
    identity = fp.multiply_by_quantized_multiplier(d, m_id, s_id)
    scaled = fp.multiply_by_quantized_multiplier(d, abs(m_alpha), s_alpha)
    negative = -scaled if m_alpha < 0 else scaled
    return clamp_to_int8(int(y_zero_point) + np.where(d >= 0, identity, negative))


def relu(
    x: np.ndarray, *, x_scale: float, x_zero_point: int, y_scale: float, y_zero_point: int
) -> np.ndarray:
    """RELU (int8): requantize ``x`` to the output and clamp below at the output zero point."""
    m, s = fp.quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
    lo = max(INT8_MIN, int(y_zero_point))
    y = int(y_zero_point) + fp.multiply_by_quantized_multiplier(as_int(x) - int(x_zero_point), m, s)
    return clamp_to_int8(y, lo, INT8_MAX)


def relu6(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """RELU6 (int8, TFLite-Micro): clamp to ``[z_x, z_x + round(6 / s_x)]`` on the input scale."""
    six = int(round_half_away_f(f32(6.0) / f32(x_scale))) + int(x_zero_point)
    six = min(max(six, INT8_MIN), INT8_MAX)
    zero = int(x_zero_point)
    xi = as_int(x)
    return np.where(xi > six, six, np.where(xi < zero, zero, xi)).astype(np.int8)
