"""Integer ADD, SUB, MUL, MAXIMUM and MINIMUM (numpy broadcasting), bit-exact with TFLite-Micro.

ADD / SUB (``left_shift = 20``)::

    t   = 2 max(s_a, s_b)
    a'  = MBQM((a - z_a) 2**20, s_a / t),   b' = MBQM((b - z_b) 2**20, s_b / t)
    y   = clamp(z_y + MBQM(a' +- b', t / (2**20 s_y)), act_lo, act_hi)

The three real multipliers are computed in double for both ops (the TFLite-Micro
source of August 2026 still divides in float32 in SUB's prepare, but the runtime we test
against -- tflite-micro 0.dev20261023 -- matches the double computation bit for bit;
``test_precision_add_sub`` pins scales where the two differ).

MUL: ``y = clamp(z_y + MBQM((a - z_a)(b - z_b), double(s_a) double(s_b) / double(s_y)))``.
MAXIMUM / MINIMUM move int8 values unchanged (TFLite-Micro requires equal quantization).
PRELU (``CalculatePreluParams``): ``d = x - z_x``; ``y = clamp(z_y + MBQM(d, s_x / s_y))`` for
``d >= 0`` else ``clamp(z_y + MBQM(d (alpha - z_alpha), s_x s_alpha / s_y))``, both real
multipliers in double; alpha broadcasts to ``x``.
DIV (``DivElementwise``): ``a' = a - z_a``, ``b' = b - z_b`` (both negated when ``b' < 0``),
``r, e = GetReciprocal(b', 31)``, ``h = CountLeadingSignBits(a')``,
``q = SRDHM(a' 2**h, r)``, ``y = clamp(z_y + RDBP(SRDHM(q, M), h + e - shift))`` with
``(M, shift) = QuantizeMultiplier(float32(s_a / (s_b s_y)))`` (the scale maths in float32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import activation_range, as_int, clamp_to_int8, f32
from microlith.quant.nodes import activation, tensor_q
from microlith.quant.registry import integer_op

LEFT_SHIFT = 20  # int8 ADD/SUB headroom shift


@dataclass(frozen=True, eq=False)
class AddSubParams:
    sign: int  # +1 ADD, -1 SUB
    a_zp: int
    a_mult: int
    a_shift: int
    b_zp: int
    b_mult: int
    b_shift: int
    out_mult: int
    out_shift: int
    y_zp: int
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class MulParams:
    a_zp: int
    b_zp: int
    mult: int
    shift: int
    y_zp: int
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class ExtremumParams:
    is_max: int


@dataclass(frozen=True, eq=False)
class PreluParams:
    x_zp: int
    alpha_zp: int
    pos_mult: int  # QuantizeMultiplier(s_x / s_y)
    pos_shift: int
    neg_mult: int  # QuantizeMultiplier(s_x s_alpha / s_y)
    neg_shift: int
    y_zp: int


def add_sub_multipliers(a_scale: float, b_scale: float, y_scale: float
                        ) -> tuple[float, float, float]:
    """The three real multipliers of ADD/SUB, in double (``2 max`` is exact in float)."""
    sa, sb, sy = float(f32(a_scale)), float(f32(b_scale)), float(f32(y_scale))
    twice_max = 2.0 * max(sa, sb)
    return sa / twice_max, sb / twice_max, twice_max / ((1 << LEFT_SHIFT) * sy)


def add_sub_params(sign: int, *, a_scale: float, a_zp: int, b_scale: float, b_zp: int,
                   y_scale: float, y_zp: int, activation: str,
                   multipliers: tuple[float, float, float] | None = None) -> AddSubParams:
    reals = multipliers or add_sub_multipliers(a_scale, b_scale, y_scale)
    (m1, s1), (m2, s2), (mo, so) = (fp.quantize_multiplier_smaller_than_one(r) for r in reals)
    lo, hi = activation_range(activation, y_scale, y_zp)
    return AddSubParams(int(sign), int(a_zp), m1, s1, int(b_zp), m2, s2, mo, so, int(y_zp), lo,
                        hi)


def run_add_sub(p: AddSubParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    a = (as_int(need(args, 0)) - p.a_zp) << LEFT_SHIFT
    b = (as_int(need(args, 1)) - p.b_zp) << LEFT_SHIFT
    a1 = fp.multiply_by_quantized_multiplier(a, p.a_mult, p.a_shift)
    b1 = fp.multiply_by_quantized_multiplier(b, p.b_mult, p.b_shift)
    raw = fp.wrap_int32(a1 + p.sign * b1)
    y = fp.multiply_by_quantized_multiplier(raw, p.out_mult, p.out_shift) + p.y_zp
    return [clamp_to_int8(y, p.act_min, p.act_max)]


def prepare_add_sub(node: Node) -> AddSubParams:
    (sa, za), (sb, zb), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    return add_sub_params(1 if node.op == "tfl.add" else -1, a_scale=sa, a_zp=za, b_scale=sb,
                          b_zp=zb, y_scale=sy, y_zp=zy, activation=activation(node))


integer_op("tfl.add", "tfl.sub", prepare=prepare_add_sub)(run_add_sub)


def mul_params(*, a_scale: float, a_zp: int, b_scale: float, b_zp: int, y_scale: float,
               y_zp: int, activation: str) -> MulParams:
    m, s = fp.quantize_multiplier(float(f32(a_scale)) * float(f32(b_scale)) / float(f32(y_scale)))
    lo, hi = activation_range(activation, y_scale, y_zp)
    return MulParams(int(a_zp), int(b_zp), m, s, int(y_zp), lo, hi)


def run_mul(p: MulParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    product = fp.wrap_int32((as_int(need(args, 0)) - p.a_zp) * (as_int(need(args, 1)) - p.b_zp))
    y = fp.multiply_by_quantized_multiplier(product, p.mult, p.shift) + p.y_zp
    return [clamp_to_int8(y, p.act_min, p.act_max)]


def prepare_mul(node: Node) -> MulParams:
    (sa, za), (sb, zb), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    return mul_params(a_scale=sa, a_zp=za, b_scale=sb, b_zp=zb, y_scale=sy, y_zp=zy,
                      activation=activation(node))


integer_op("tfl.mul", prepare=prepare_mul)(run_mul)


def prelu_params(*, x_scale: float, x_zp: int, alpha_scale: float, alpha_zp: int,
                 y_scale: float, y_zp: int) -> PreluParams:
    sx, sa, sy = float(f32(x_scale)), float(f32(alpha_scale)), float(f32(y_scale))
    m1, s1 = fp.quantize_multiplier(sx / sy)
    m2, s2 = fp.quantize_multiplier(sx * sa / sy)
    return PreluParams(int(x_zp), int(alpha_zp), m1, s1, m2, s2, int(y_zp))


def run_prelu(p: PreluParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    alpha = as_int(need(args, 1)) - p.alpha_zp
    positive = fp.multiply_by_quantized_multiplier(d, p.pos_mult, p.pos_shift)
    negative = fp.multiply_by_quantized_multiplier(fp.wrap_int32(d * alpha), p.neg_mult,
                                                   p.neg_shift)
    return [clamp_to_int8(p.y_zp + np.where(d >= 0, positive, negative))]


def prepare_prelu(node: Node) -> PreluParams:
    (sx, zx), (sa, za), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    return prelu_params(x_scale=sx, x_zp=zx, alpha_scale=sa, alpha_zp=za, y_scale=sy, y_zp=zy)


integer_op("tfl.prelu", prepare=prepare_prelu)(run_prelu)


@integer_op("tfl.maximum", "tfl.minimum",
            prepare=lambda node: ExtremumParams(int(node.op == "tfl.maximum")))
def run_extremum(p: ExtremumParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    fn = np.maximum if p.is_max else np.minimum
    return [fn(np.asarray(need(args, 0), np.int8), np.asarray(need(args, 1), np.int8))]


# ---- DIV -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DivParams:
    a_zp: int
    b_zp: int
    mult: int  # QuantizeMultiplier(double(float32(s_a / (s_b s_y))))
    shift: int
    y_zp: int
    act_min: int
    act_max: int


def div_params(*, a_scale: float, a_zp: int, b_scale: float, b_zp: int, y_scale: float,
               y_zp: int, activation: str) -> DivParams:
    real = f32(f32(a_scale) / (f32(b_scale) * f32(y_scale)))  # float32, as TFLite-Micro
    m, s = fp.quantize_multiplier(float(real))
    lo, hi = activation_range(activation, y_scale, y_zp)
    return DivParams(int(a_zp), int(b_zp), m, s, int(y_zp), lo, hi)


def count_leading_sign_bits(x: np.ndarray) -> np.ndarray:
    """``CountLeadingSignBits`` of int32 values (31 for 0 and -1)."""
    v = fp.wrap_int32(x)
    return fp.count_leading_zeros_u32(v ^ (v >> 31)) - 1


def rdbp_wide(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT`` on int32 for exponents 0..63 as x86 computes it: the
    mask ``int32(2**e - 1)`` (-1 from 32 on) and an arithmetic shift by ``e mod 32``. DIV
    reaches exponents of 32 and more when a small numerator meets a large divisor."""
    x, e = fp.wrap_int32(x), np.asarray(exponent, np.int64)
    mask = fp.wrap_int32((np.int64(1) << np.minimum(e, 62)) - 1)
    threshold = (mask >> 1) + (x < 0)
    return (x >> (e & 31)) + ((x & mask) > threshold)


def run_div(p: DivParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """``a' / b'`` per element: ``1/b'`` by ``GetReciprocal`` and normalized ``a'``; a zero
    ``b'`` (its zero point) is undefined in TFLite-Micro and gives ``y_zp`` here."""
    a = as_int(need(args, 0)) - p.a_zp
    b = as_int(need(args, 1)) - p.b_zp
    a, b = np.broadcast_arrays(a, b)
    a = np.where(b < 0, -a, a)
    b = np.abs(b)
    safe = np.where(b == 0, 1, b)
    inverse, recip_shift = fp.get_reciprocal(safe, 31)
    headroom = count_leading_sign_bits(a)
    quotient = fp.saturating_rounding_doubling_high_mul(
        fp.wrap_int32(a * (np.int64(1) << headroom)), inverse)
    total = p.shift - recip_shift - headroom
    scaled = rdbp_wide(fp.saturating_rounding_doubling_high_mul(quotient, p.mult),
                       np.clip(-total, 0, 63))
    y = np.where(b == 0, 0, scaled) + p.y_zp
    return [clamp_to_int8(y, p.act_min, p.act_max)]


def prepare_div(node: Node) -> DivParams:
    (sa, za), (sb, zb), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    return div_params(a_scale=sa, a_zp=za, b_scale=sb, b_zp=zb, y_scale=sy, y_zp=zy,
                      activation=activation(node))


integer_op("tfl.div", prepare=prepare_div)(run_div)
