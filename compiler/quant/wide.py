"""16x8 integer kernels (int16 activations, int8 weights), bit-exact with TFLite-Micro.

The TFLite 16x8 spec: activations int16 symmetric (zero point 0), weights int8 symmetric
per channel, biases int64 with ``scale = s_x * s_w[c]``. The kernels:

* CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED: an int64 accumulator
  ``acc = sum x * w + b`` (no input offset: the zero point is 0), requantized by the
  ``int64`` overload of ``MultiplyByQuantizedMultiplier`` (a 16-bit multiplier
  ``(m + 2**15) >> 16`` and one rounding shift, ``fixed_point.multiply_by_quantized_
  multiplier_int64``), clamped to the fused activation's int16 range. FULLY_CONNECTED adds
  ``z_y`` (0) before clamping; CONV_2D does not.
* ADD / SUB: the int8 general path with ``left_shift = 15`` instead of 20
  (``AddGeneralParamScale``, TFLite-Micro passes ``pot_scale = false``).
* MUL: the int8 formula, int16 clamp (TFLite-Micro requires zero points 0).
* AVERAGE_POOL_2D / MAX_POOL_2D / MEAN: the int8 formulas, int16 clamp and fill.
* LEAKY_RELU: the int8 formula, int16 clamp.

Data-movement ops (reshape, pad, concatenation, transpose, ...) share the int8 kernels
(``registry.DTYPE_GENERIC``); QUANTIZE / DEQUANTIZE serve every dtype already.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import activation_range, as_int, f32
from microlith.quant.conv import (
    ConvParams,
    FullyConnectedParams,
    conv_accumulate,
    prepare_conv,
    prepare_fully_connected,
)
from microlith.quant.elementwise import AddSubParams, MulParams, add_sub_params, prepare_mul
from microlith.quant.nodes import activation, tensor_q
from microlith.quant.pool import (
    MeanParams,
    PoolParams,
    pool_integers,
    prepare_mean,
    prepare_pool,
)
from microlith.quant.registry import integer_op

INT16_MIN, INT16_MAX = -32768, 32767
LEFT_SHIFT_16 = 15


def clamp16(y: np.ndarray, lo: int = INT16_MIN, hi: int = INT16_MAX) -> np.ndarray:
    return np.clip(y, lo, hi).astype(np.int16)


def act_range16(node: Node) -> tuple[int, int]:
    sy, zy = tensor_q(node.output)
    return activation_range(activation(node), sy, zy, INT16_MIN, INT16_MAX)


@dataclass(frozen=True, eq=False)
class Conv16Params:
    """A 16x8 convolution: the int8 record's geometry and multipliers, an int64 bias."""

    conv: ConvParams
    bias: np.ndarray  # int64 [out_c], zeros when absent
    act_min: int
    act_max: int


@dataclass(frozen=True, eq=False)
class FullyConnected16Params:
    fc: FullyConnectedParams
    bias: np.ndarray  # int64 [units]
    act_min: int
    act_max: int


def _bias64(node: Node, count: int) -> np.ndarray:
    bias = node.input(2)
    return np.zeros(count, np.int64) if bias is None else np.asarray(
        bias.data, np.int64).reshape(count)


def _requantize64(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                  offset: int, lo: int, hi: int) -> np.ndarray:
    y = fp.multiply_by_quantized_multiplier_int64(acc + bias, mult.astype(np.int64),
                                                  shift.astype(np.int64))
    return clamp16(y + offset, lo, hi)


def prepare_conv16(node: Node) -> Conv16Params:
    conv = prepare_conv(node, np.int64)
    lo, hi = act_range16(node)
    return Conv16Params(conv, _bias64(node, conv.out_c), lo, hi)


@integer_op("tfl.conv_2d", "tfl.depthwise_conv_2d", "c.conv_2d", "c.depthwise_conv_2d",
            prepare=prepare_conv16, wide=True)
def run_conv16(p: Conv16Params, args: list[np.ndarray | None]) -> list[np.ndarray]:
    acc = conv_accumulate(p.conv, need(args, 0), need(args, 1))
    return [_requantize64(acc, p.bias, p.conv.mult, p.conv.shift, 0, p.act_min, p.act_max)]


def prepare_fully_connected16(node: Node) -> FullyConnected16Params:
    fc = prepare_fully_connected(node, np.int64)
    lo, hi = act_range16(node)
    return FullyConnected16Params(fc, _bias64(node, fc.units), lo, hi)


@integer_op("tfl.fully_connected", prepare=prepare_fully_connected16, wide=True)
def run_fully_connected16(p: FullyConnected16Params, args: list[np.ndarray | None]
                          ) -> list[np.ndarray]:
    x, w = need(args, 0), need(args, 1)
    fc = p.fc
    xf = (as_int(x).reshape(-1, fc.depth) - fc.x_zp).astype(np.float64)
    acc = (xf @ (as_int(w) - fc.w_zp).astype(np.float64).T).astype(np.int64)
    y = _requantize64(acc, p.bias, fc.mult, fc.shift, fc.y_zp, p.act_min, p.act_max)
    return [y.reshape(*x.shape[:-1], fc.units) if fc.keep_num_dims else y]


# ---- element-wise -----------------------------------------------------------------------------
def prepare_add_sub16(node: Node) -> AddSubParams:
    (sa, za), (sb, zb), (sy, zy) = (tensor_q(v) for v in (*node.inputs[:2], node.output))
    a, b, y = float(f32(sa)), float(f32(sb)), float(f32(sy))
    twice_max = 2.0 * max(a, b)
    reals = (a / twice_max, b / twice_max, twice_max / ((1 << LEFT_SHIFT_16) * y))
    p = add_sub_params(1 if node.op == "tfl.add" else -1, a_scale=sa, a_zp=za, b_scale=sb,
                       b_zp=zb, y_scale=sy, y_zp=zy, activation="NONE", multipliers=reals)
    lo, hi = act_range16(node)
    return AddSubParams(p.sign, p.a_zp, p.a_mult, p.a_shift, p.b_zp, p.b_mult, p.b_shift,
                        p.out_mult, p.out_shift, p.y_zp, lo, hi)


@integer_op("tfl.add", "tfl.sub", prepare=prepare_add_sub16, wide=True)
def run_add_sub16(p: AddSubParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    a = (as_int(need(args, 0)) - p.a_zp) << LEFT_SHIFT_16
    b = (as_int(need(args, 1)) - p.b_zp) << LEFT_SHIFT_16
    a1 = fp.multiply_by_quantized_multiplier(a, p.a_mult, p.a_shift)
    b1 = fp.multiply_by_quantized_multiplier(b, p.b_mult, p.b_shift)
    raw = fp.wrap_int32(a1 + p.sign * b1)
    y = fp.multiply_by_quantized_multiplier(raw, p.out_mult, p.out_shift) + p.y_zp
    return [clamp16(y, p.act_min, p.act_max)]


def prepare_mul16(node: Node) -> MulParams:
    p = prepare_mul(node)
    lo, hi = act_range16(node)
    return MulParams(p.a_zp, p.b_zp, p.mult, p.shift, p.y_zp, lo, hi)


@integer_op("tfl.mul", prepare=prepare_mul16, wide=True)
def run_mul16(p: MulParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    product = fp.wrap_int32((as_int(need(args, 0)) - p.a_zp) * (as_int(need(args, 1)) - p.b_zp))
    y = fp.multiply_by_quantized_multiplier(product, p.mult, p.shift) + p.y_zp
    return [clamp16(y, p.act_min, p.act_max)]


# ---- pooling and mean -------------------------------------------------------------------------
def prepare_pool16(node: Node) -> PoolParams:
    from dataclasses import replace

    lo, hi = act_range16(node)
    return replace(prepare_pool(node), act_min=lo, act_max=hi)


@integer_op("tfl.max_pool_2d", "tfl.average_pool_2d", "c.max_pool_2d", "c.average_pool_2d",
            prepare=prepare_pool16, wide=True)
def run_pool16(p: PoolParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = as_int(need(args, 0))
    return [clamp16(pool_integers(p, x, INT16_MIN), p.act_min, p.act_max)]


@integer_op("tfl.mean", prepare=prepare_mean, wide=True)
def run_mean16(p: MeanParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = need(args, 0)
    shape = [1 if (i in p.axes) else d for i, d in enumerate(x.shape)]
    if not p.keep_dims:
        shape = [d for i, d in enumerate(x.shape) if i not in p.axes]
    if p.count == 0:
        return [np.zeros(shape, np.int16)]
    total = fp.wrap_int32(as_int(x).sum(axis=p.axes, keepdims=True))
    shifted = fp.wrap_int32(total - int(p.x_zp) * p.count)
    y = fp.multiply_by_quantized_multiplier(shifted, p.mult, p.shift) + p.y_zp
    return [clamp16(y).reshape(shape)]
