"""16x8 activations, bit-exact with TFLite-Micro: LEAKY_RELU, LOGISTIC, TANH, SOFTMAX.

LEAKY_RELU: the int8 formula, int16 clamp.

LOGISTIC / TANH (input zero point 0, output scale ``2**-15``, zero point 0): the input is
rescaled to ``v = x s_x 3 * 2**12`` (``2**17`` is 10.67) by an integer multiply-shift,
``v = (x M + 2**(n-1)) >> n`` with ``M = trunc(s_x 3 * 2**12 * 2**n) <= 32767`` for the
first ``n`` that lifts it above ``16383.5`` -- or, when ``s_x`` is a power of two with
``12 + log2 s_x == 0`` (TANH also ``1``), ``M = 3 * 2**(12 + log2 s_x)``, ``n = 0``. Then,
with ``T`` the Q0.16 table of ``sigmoid(i / 24)`` (``wide_tables.sigmoid_table``):

* LOGISTIC: ``a = |v|``, ``i = a >> 9``, ``r = (T[i] << 9) + (a & 511) (T[i+1] - T[i])``
  (``i >= 255``: ``r = 32767 << 10``); ``y = (r + 512) >> 10`` for ``v >= 0`` else
  ``(2**25 - r + 511) >> 10``.
* TANH: ``i = a >> 8``, ``r = (T[i] << 8) + (a & 255) (T[i+1] - T[i])`` (``i >= 255``:
  ``65535 << 8``); ``y = (r - 2**23 + 128) >> 8`` for ``v >= 0`` else
  ``(2**23 - r + 127) >> 8`` (arithmetic shifts).

SOFTMAX (output scale ``2**-15`` within 0.1%, zero point 0), per row::

    d   = x - max(row);   (M, s) = QuantizeMultiplier(s_x beta / (10 / 65535))
    e   = lut(clamp(MBQM(d, M, s) + 32767, int16), EXP)            exp(d s_x beta), Q0.15
    S   = sum e;  c = clz32(S)
    r   = lut(clamp(((S << (c - 1)) + 2**13) >> 14) - 3 * 2**15, int16), RECIPROCAL)
    y   = clamp((e r + 2**(30 - c)) >> (31 - c), 0, 32767)

with ``lut`` the interpolated 513-entry tables of ``exp`` on [-10, 0] and ``1 / (1 + x)``
on [0, 1] (``wide_tables``). HARD_SWISH has no int16 kernel in TFLite-Micro.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.activation import LeakyReluParams, _prepare_leaky_relu
from microlith.quant.arith import as_int, f32
from microlith.quant.nodes import tensor_q
from microlith.quant.registry import integer_op
from microlith.quant.wide_tables import (
    interpolate,
    sigmoid_table,
    softmax_exp_table,
    softmax_reciprocal_table,
)

OUTPUT_SCALE_16 = 1.0 / 32768.0


@integer_op("tfl.leaky_relu", prepare=_prepare_leaky_relu, wide=True)
def run_leaky_relu16(p: LeakyReluParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    d = as_int(need(args, 0)) - p.x_zp
    identity = fp.multiply_by_quantized_multiplier(d, p.id_mult, p.id_shift)
    scaled = fp.multiply_by_quantized_multiplier(d, p.alpha_mult, p.alpha_shift)
    negative = -scaled if p.alpha_negative else scaled
    return [np.clip(p.y_zp + np.where(d >= 0, identity, negative), -32768, 32767
                    ).astype(np.int16)]


# ---- LOGISTIC / TANH ----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Sigmoid16Params:
    """``v = (x * mult + round) >> shift`` then the table; ``is_tanh`` selects TANH."""

    mult: int
    shift: int
    is_tanh: int


def checked_log2(x: float) -> tuple[int, bool]:
    """``CheckedLog2`` in float32: (rounded log2, whether ``x`` is a power of two to 1e-3)."""
    log2 = f32(np.log(f32(x))) * (f32(1.0) / f32(np.log(f32(2.0))))
    rounded = math.copysign(math.floor(abs(float(log2)) + 0.5), float(log2))
    return int(rounded), abs(float(f32(log2) - f32(rounded))) < 1e-3


def check_output_scale16(node: Node, scale: float, zero_point: int) -> None:
    log2, exact = checked_log2(scale)
    if zero_point != 0 or not exact or log2 != -15:
        raise ValueError(f"{node.name}: 16x8 {node.op} needs output scale 2**-15 and zero "
                         f"point 0, got {scale} / {zero_point}")


def sigmoid16_params(*, x_scale: float, is_tanh: bool) -> Sigmoid16Params:
    log2, pot = checked_log2(x_scale)
    shift = 12 + log2
    if pot and (shift == 0 or (is_tanh and shift == 1)):
        return Sigmoid16Params(3 << shift, 0, int(is_tanh))
    m, shift = float(f32(x_scale)) * 4096.0 * 3.0, 0
    while m <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        m *= 2.0
    if int(m) > 32767:
        raise ValueError(f"16x8 {'TANH' if is_tanh else 'LOGISTIC'}: input scale {x_scale} "
                         "too large (rescale multiplier above 32767)")
    return Sigmoid16Params(int(m), shift, int(is_tanh))


def run_sigmoid16(p: Sigmoid16Params, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = as_int(need(args, 0))
    rounding = (1 << (p.shift - 1)) if p.shift > 0 else 0
    v = (x * p.mult + rounding) >> p.shift
    a = np.abs(v)
    table = np.append(np.asarray(sigmoid_table(), np.int64), 0)
    bits = 8 if p.is_tanh else 9
    i = np.minimum(a >> bits, 255)
    frac = a & ((1 << bits) - 1)
    r = (table[i] << bits) + frac * (table[i + 1] - table[i])
    if p.is_tanh:
        r = np.where(i >= 255, 0xFFFF << 8, r)
        y = np.where(v >= 0, r - (1 << 23) + (1 << 7), (1 << 23) - r + (1 << 7) - 1) >> 8
    else:
        r = np.where(i >= 255, 0x7FFF << 10, r)
        y = np.where(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1) >> 10
    return [fp.wrap_int16(y).astype(np.int16)]


def _prepare_sigmoid16(node: Node) -> Sigmoid16Params:
    sx, zx = tensor_q(node.arg(0))
    if zx != 0:
        raise ValueError(f"{node.name}: 16x8 {node.op} needs input zero point 0")
    check_output_scale16(node, *tensor_q(node.output))
    return sigmoid16_params(x_scale=sx, is_tanh=node.op == "tfl.tanh")


integer_op("tfl.logistic", "tfl.tanh", prepare=_prepare_sigmoid16, wide=True)(run_sigmoid16)


# ---- SOFTMAX -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Softmax16Params:
    mult: int
    shift: int


def softmax16_params(*, beta: float, x_scale: float) -> Softmax16Params:
    real = float(f32(x_scale)) * float(f32(beta)) / (10.0 / 65535.0)
    return Softmax16Params(*fp.quantize_multiplier(real))


def run_softmax16(p: Softmax16Params, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = as_int(need(args, 0))
    d = x - x.max(axis=-1, keepdims=True)
    scaled = np.clip(fp.multiply_by_quantized_multiplier(d, p.mult, p.shift) + 32767,
                     -32768, 32767)
    e = interpolate(scaled, softmax_exp_table())
    total = fp.wrap_int32(e.sum(axis=-1, keepdims=True))
    clz = fp.count_leading_zeros_u32(total).astype(np.int64)
    shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
    recip = interpolate(np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767),
                        softmax_reciprocal_table())
    right = 31 - clz
    y = (e * recip + (np.int64(1) << (right - 1))) >> right
    return [np.clip(y, 0, 32767).astype(np.int16)]


def _prepare_softmax16(node: Node) -> Softmax16Params:
    sy, zy = tensor_q(node.output)
    if zy != 0 or abs(float(f32(sy)) - OUTPUT_SCALE_16) > 0.001 * OUTPUT_SCALE_16:
        raise ValueError(f"{node.name}: 16x8 SOFTMAX needs output scale 1/32768 and zero "
                         f"point 0, got {sy} / {zy}")
    return softmax16_params(beta=float(node.attr("beta")), x_scale=tensor_q(node.arg(0))[0])


integer_op("tfl.softmax", prepare=_prepare_softmax16, wide=True)(run_softmax16)
