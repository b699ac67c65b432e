"""Integer activations, softmax and table lookups, bit-exact with TFLite-Micro.

SOFTMAX (output scale exactly 1/256, zero point -128; TFLite-Micro refuses others)::

    (m, L) = PreprocessSoftmaxScaling(beta, s_x, 5)      # beta s_x 2**26 as a multiplier >= 1
    d      = x - max(row);  skipped (-> -128) when d < -CalculateInputRadius(5, L)
    e      = exp_on_negative_values(SRDHM(d * 2**L, m), Q5.26)          (Q0.31)
    S      = sum RDBP(e, 12)                                            (Q12.19)
    y      = clamp(RDBP(SRDHM(1/S, e), bits + 23) - 128, -128, 127)

with ``1/S`` from ``GetReciprocal`` (``bits`` = number of integer bits of ``S``).

LOGISTIC / TANH: ``(m, e) = frexp(double(s_x) * 2**27)``, ``r = CalculateInputRadius(4,
e)``; for ``d = x - z_x`` with ``|d| < r``: ``logistic(MBQM(d, m, e) as Q4.27)`` scaled by
``RDBP(., 23) - 128`` (output 1/256, -128) and ``tanh(.)`` by ``RDBP(., 24)`` (1/128, 0);
``d <= -r`` / ``d >= r`` saturate to -128 / 127. The output scale is implied.

HARD_SWISH: int16 fixed point on ``x' = (x - z_x) * 2**7`` (scale ``s_x / 128``):
``pre = SRDHM16(x', M_out)``, ``r = SRDHM16(x' << .., M_relu)`` rescaled so that 3.0 is
2**15 and mapped to [0, 1], ``y = RDBP16(SDHM16(r, pre), -e_out) + z_y`` with 16-bit
multipliers ``M = (m32 + 2**15) >> 16`` from ``QuantizeMultiplier`` of
``(s_x / 128) / s_y`` and ``(s_x / 128) / (3 / 32768)``.

LEAKY_RELU: ``y = z_y + MBQM(d, M_id)`` for ``d >= 0`` else ``MBQM(d, M_alpha)`` (negated
for a negative alpha), ``M_alpha = s_x alpha / s_y``, ``M_id = s_x / s_y``. RELU:
``clamp(z_y + MBQM(d, s_x / s_y), max(-128, z_y), 127)``. RELU6 (TFLite-Micro) ignores the
output quantization and clamps ``x`` to ``[z_x, z_x + round(6.0f / s_x)]``.

Precision: the multipliers of HARD_SWISH, LEAKY_RELU and RELU are evaluated in double.
The TFLite-Micro source we read (August 2026) divides float32 values there, but the
runtime we test against (tflite-micro 0.dev20261023) matches double bit for bit;
``test_precision_*`` pin scales where the two differ. RELU6's ``6.0f / s_x`` and the fused
activation ranges are float32 in both.

EXP / ELU: a 256-entry table in float32, ``clamp(round(f(s_x (q - z_x)) * (1 / s_y)) +
z_y)`` (TFLite-Micro's ELU with ``f = exp(x) - 1`` below 0; TFLite-Micro has no int8 EXP, the
table is LiteRT's ``LUTPopulate`` with ``f = exp``; GELU likewise, TFLite-Micro has none).

``c.lut`` (the C target) reads ``y = table[x + 128]``; ``lookup_table`` makes the table of
any int8 -> int8 element-wise node from its own kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import INT8_MAX, INT8_MIN, as_int, clamp_to_int8, f32, round_half_away_f
from microlith.quant.nodes import tensor_q
from microlith.quant.registry import integer_op, run_integer


@dataclass(frozen=True, eq=False)
class ReluParams:
    x_zp: int
    mult: int
    shift: int
    y_zp: int
    lo: int
    hi: int


@dataclass(frozen=True, eq=False)
class ClampParams:
    """RELU6 on the input scale: ``clamp(x, lo, hi)``."""

    lo: int
    hi: int


@dataclass(frozen=True, eq=False)
class LeakyReluParams:
    x_zp: int
    id_mult: int
    id_shift: int
    alpha_mult: int  # |m_alpha|
    alpha_shift: int
    alpha_negative: int
    y_zp: int


@dataclass(frozen=True, eq=False)
class HardSwishParams:
    x_zp: int
    y_zp: int
    out_mult: int  # int16 multipliers
    out_exp: int
    relu_mult: int
    relu_exp: int


@dataclass(frozen=True, eq=False)
class SigmoidParams:
    """LOGISTIC (``is_tanh == 0``) or TANH."""

    x_zp: int
    mult: int
    shift: int
    radius: int
    is_tanh: int


@dataclass(frozen=True, eq=False)
class SoftmaxParams:
    mult: int
    left_shift: int
    diff_min: int


@dataclass(frozen=True, eq=False)
class LutParams:
    """``c.lut``: the table is input 1."""


# ---- RELU / RELU6 / LEAKY_RELU ---------------------------------------------------------------
def relu_params(*, x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> ReluParams:
    m, s = fp.quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
    return ReluParams(int(x_zp), m, s, int(y_zp), max(INT8_MIN, int(y_zp)), INT8_MAX)


def run_relu(p: ReluParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    y = p.y_zp + fp.multiply_by_quantized_multiplier(d, p.mult, p.shift)
    return [clamp_to_int8(y, p.lo, p.hi)]


def _prepare_relu(node: Node) -> ReluParams:
    (sx, zx), (sy, zy) = tensor_q(node.arg(0)), tensor_q(node.output)
    return relu_params(x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy)


integer_op("tfl.relu", prepare=_prepare_relu)(run_relu)


def relu6_params(*, x_scale: float, x_zp: int) -> ClampParams:
    six = int(round_half_away_f(f32(6.0) / f32(x_scale))) + int(x_zp)
    return ClampParams(int(x_zp), min(max(six, INT8_MIN), INT8_MAX))


def run_clamp(p: ClampParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    xi = as_int(need(args, 0))
    return [np.where(xi > p.hi, p.hi, np.where(xi < p.lo, p.lo, xi)).astype(np.int8)]


integer_op("tfl.relu6", prepare=lambda node: relu6_params(
    x_scale=tensor_q(node.arg(0))[0], x_zp=tensor_q(node.arg(0))[1]))(run_clamp)


def leaky_relu_params(*, alpha: float, x_scale: float, x_zp: int, y_scale: float,
                      y_zp: int) -> LeakyReluParams:
    sx, sy = float(f32(x_scale)), float(f32(y_scale))
    m_alpha, s_alpha = fp.quantize_multiplier(sx * float(f32(alpha)) / sy)
    m_id, s_id = fp.quantize_multiplier(sx / sy)
    return LeakyReluParams(int(x_zp), m_id, s_id, abs(m_alpha), s_alpha, int(m_alpha < 0),
                           int(y_zp))


def run_leaky_relu(p: LeakyReluParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    identity = fp.multiply_by_quantized_multiplier(d, p.id_mult, p.id_shift)
    scaled = fp.multiply_by_quantized_multiplier(d, p.alpha_mult, p.alpha_shift)
    negative = -scaled if p.alpha_negative else scaled
    return [clamp_to_int8(p.y_zp + np.where(d >= 0, identity, negative))]


def _prepare_leaky_relu(node: Node) -> LeakyReluParams:
    (sx, zx), (sy, zy) = tensor_q(node.arg(0)), tensor_q(node.output)
    return leaky_relu_params(alpha=float(node.attr("alpha")), x_scale=sx, x_zp=zx, y_scale=sy,
                             y_zp=zy)


integer_op("tfl.leaky_relu", prepare=_prepare_leaky_relu)(run_leaky_relu)


# ---- HARD_SWISH ---------------------------------------------------------------------------------
def int16_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier`` then ``DownScaleInt32ToInt16Multiplier``."""
    m32, exponent = fp.quantize_multiplier(real)
    m16 = 32767 if m32 >= fp.INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16
    return m16, exponent


def hard_swish_params_from_reals(x_zp: int, y_zp: int, out_real: float, relu_real: float
                                 ) -> HardSwishParams:
    out_m, out_exp = int16_multiplier(out_real)
    if out_exp > 0:
        raise ValueError("hard_swish: output multiplier exponent > 0 (TFLM refuses)")
    relu_m, relu_exp = int16_multiplier(relu_real)
    return HardSwishParams(int(x_zp), int(y_zp), out_m, out_exp, relu_m, relu_exp)


def hard_swish_params(*, x_scale: float, x_zp: int, y_scale: float, y_zp: int
                      ) -> HardSwishParams:
    hires_scale = float(f32(1.0 / 128.0) * f32(x_scale))  # exact: a power-of-two factor
    relu_scale = float(f32(3.0) / f32(32768.0))
    return hard_swish_params_from_reals(x_zp, y_zp, hires_scale / float(f32(y_scale)),
                                        hires_scale / relu_scale)


def _saturating_left_shift16(v: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(v * (1 << amount), fp.INT16_MIN, fp.INT16_MAX)


def _saturating_doubling_high_mul16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``SaturatingDoublingHighMul`` (int16): ``a*b / 2**15`` truncated, -1*-1 saturated."""
    ab = a * b
    high = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == b) & (a == fp.INT16_MIN), fp.INT16_MAX, high)


def run_hard_swish(p: HardSwishParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    hires = fp.wrap_int16((as_int(need(args, 0)) - p.x_zp) * (1 << 7))
    preshift = fp.saturating_rounding_doubling_high_mul_int16(hires, p.out_mult)
    reluish = hires
    if p.relu_exp > 0:
        reluish = _saturating_left_shift16(reluish, p.relu_exp - 1)
    reluish = fp.saturating_rounding_doubling_high_mul_int16(reluish, p.relu_mult)
    if p.relu_exp > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if p.relu_exp < 0:
        reluish = fp.rounding_divide_by_pot_int16(reluish, -p.relu_exp)
    reluish = fp.wrap_int16((reluish + (1 << 15)) >> 1)
    product = _saturating_doubling_high_mul16(reluish, preshift)
    y = fp.wrap_int16(fp.rounding_divide_by_pot_int16(product, -p.out_exp) + p.y_zp)
    return [clamp_to_int8(y)]


def _prepare_hard_swish(node: Node) -> HardSwishParams:
    (sx, zx), (sy, zy) = tensor_q(node.arg(0)), tensor_q(node.output)
    return hard_swish_params(x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy)


integer_op("tfl.hard_swish", prepare=_prepare_hard_swish)(run_hard_swish)


# ---- LOGISTIC / TANH ----------------------------------------------------------------------------
def sigmoid_params(*, x_scale: float, x_zp: int, is_tanh: bool) -> SigmoidParams:
    mult, shift = fp.frexp_multiplier(float(f32(x_scale)) * float(1 << 27))
    radius = fp.calculate_input_radius(4, shift, 31)
    return SigmoidParams(int(x_zp), int(mult), int(shift), int(radius), int(is_tanh))


def run_sigmoid(p: SigmoidParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    inside = np.where(np.abs(d) < p.radius, d, 0)  # keep the rescaling in range
    q4 = fp.multiply_by_quantized_multiplier(inside, p.mult, p.shift)
    if p.is_tanh:
        y = np.clip(fp.rounding_divide_by_pot(fp.tanh(q4, 4), 24), INT8_MIN, INT8_MAX)
    else:
        y = np.clip(fp.rounding_divide_by_pot(fp.logistic(q4, 4), 23) - 128, INT8_MIN, INT8_MAX)
    y = np.where(d <= -p.radius, INT8_MIN, np.where(d >= p.radius, INT8_MAX, y))
    return [y.astype(np.int8)]


def _prepare_sigmoid(node: Node) -> SigmoidParams:
    sx, zx = tensor_q(node.arg(0))
    return sigmoid_params(x_scale=sx, x_zp=zx, is_tanh=node.op == "tfl.tanh")


integer_op("tfl.logistic", "tfl.tanh", prepare=_prepare_sigmoid)(run_sigmoid)


# ---- SOFTMAX -------------------------------------------------------------------------------------
def softmax_params(*, beta: float, x_scale: float, y_scale: float, y_zp: int) -> SoftmaxParams:
    if int(y_zp) != -128 or f32(y_scale) != f32(1.0 / 256.0):
        raise ValueError("int8 SOFTMAX needs output scale 1/256 and zero point -128")
    mult, left_shift = fp.preprocess_softmax_scaling(float(f32(beta)), float(f32(x_scale)), 5)
    return SoftmaxParams(int(mult), int(left_shift),
                         -int(fp.calculate_input_radius(5, left_shift, 31)))


def run_softmax(p: SoftmaxParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    xi = as_int(need(args, 0))
    diff = xi - xi.max(axis=-1, keepdims=True)
    valid = diff >= p.diff_min
    rescaled = fp.saturating_rounding_doubling_high_mul(
        fp.wrap_int32(diff * (1 << p.left_shift)), p.mult)
    exps = fp.exp_on_negative_values(rescaled, 5)
    terms = np.where(valid, fp.rounding_divide_by_pot(exps, 12), 0)
    sum_of_exps = fp.wrap_int32(terms.sum(axis=-1, keepdims=True))
    scale, bits = fp.get_reciprocal(sum_of_exps, 12)
    exponent = bits + 31 - 8
    if np.any(exponent < 0) or np.any(exponent > 31):
        raise ValueError("softmax: reciprocal exponent out of range (TFLite aborts)")
    out = fp.rounding_divide_by_pot(fp.saturating_rounding_doubling_high_mul(scale, exps),
                                    exponent)
    return [np.where(valid, np.clip(out - 128, INT8_MIN, INT8_MAX), INT8_MIN).astype(np.int8)]


def _prepare_softmax(node: Node) -> SoftmaxParams:
    sx, _ = tensor_q(node.arg(0))
    sy, zy = tensor_q(node.output)
    return softmax_params(beta=float(node.attr("beta")), x_scale=sx, y_scale=sy, y_zp=zy)


integer_op("tfl.softmax", prepare=_prepare_softmax)(run_softmax)


# ---- c.lut ---------------------------------------------------------------------------------
@integer_op("c.lut", prepare=lambda node: LutParams())
def run_lut(p: LutParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    table = np.asarray(need(args, 1))
    return [table[as_int(need(args, 0)) + 128].astype(table.dtype)]


def lookup_table(node: Node) -> np.ndarray:
    """The 256 outputs of an int8 -> int8 element-wise node for inputs -128..127."""
    return np.asarray(run_integer(node, [np.arange(-128, 128, dtype=np.int8)])[0], np.int8)


# ---- EXP / ELU: tables computed in float32 ---------------------------------------------------
@dataclass(frozen=True, eq=False)
class TableParams:
    """An int8 -> int8 op as its 256-entry table (index ``x + 128``)."""

    table: tuple[int, ...]


def float_table(fn: str, *, x_scale: float, x_zp: int, y_scale: float, y_zp: int
                ) -> TableParams:
    """``clamp(round(f(s_x (q - z_x)) / s_y) + z_y)`` for q in -128..127, in float32: the
    table TFLite-Micro's ELU (``exp - 1`` below 0) and LiteRT's int8 EXP populate."""
    q = np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int32)
    x = np.float32(x_scale) * (q - np.int32(x_zp)).astype(np.float32)
    with np.errstate(over="ignore"):
        e = np.exp(x)
        if fn == "exp":
            y = e
        elif fn == "elu":
            y = np.where(x < 0, e - np.float32(1.0), x).astype(np.float32)
        else:
            from microlith.ops.activation import gelu

            y = gelu(x, fn == "gelu_tanh").astype(np.float32)
    inverse = np.float32(1.0) / np.float32(y_scale)
    rescaled = round_half_away_f((y * inverse).astype(np.float32)) + int(y_zp)
    rescaled = np.nan_to_num(rescaled, nan=INT8_MAX, posinf=INT8_MAX, neginf=INT8_MIN)
    return TableParams(tuple(int(v) for v in np.clip(rescaled, INT8_MIN, INT8_MAX)))


def run_table(p: TableParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [np.asarray(p.table, np.int8)[as_int(need(args, 0)) + 128]]


def _prepare_table(node: Node) -> TableParams:
    (sx, zx), (sy, zy) = tensor_q(node.arg(0)), tensor_q(node.output)
    fn = {"tfl.exp": "exp", "tfl.elu": "elu"}.get(node.op) or (
        "gelu_tanh" if node.attr("approximate") else "gelu")
    return float_table(fn, x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy)


integer_op("tfl.exp", "tfl.elu", "tfl.gelu", prepare=_prepare_table)(run_table)
