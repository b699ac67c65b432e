"""Integer pooling and MEAN, bit-exact with TFLite-Micro.

MAX_POOL_2D takes the maximum of the in-image taps; AVERAGE_POOL_2D averages them with C
division, ``(acc +- n/2) / n`` (round half away from zero); both clamp to the fused
activation range and need equal input and output quantization. ``c.average_pool_2d``
with ``count_include_pad`` counts border taps as the zero point and divides by
``KH*KW`` (what a PAD + VALID pool computes).

MEAN sums over the reduced axes in int32, then folds ``1/n`` into the multiplier
``QuantizeMultiplier(double(s_x) / double(s_y))``: with ``k = min(floor(log2 n), 32, 31 +
shift)``, ``m' = (m << k) // n`` and ``shift' = shift - k``;
``y = clamp(z_y + MBQM(int32(sum - z_x n), m', shift'), -128, 127)``. TFLite-Micro has no
special 4-D H/W path for int8 MEAN: every axis set goes through this one formula.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant.arith import INT8_MIN, activation_range, as_int, clamp_to_int8, f32
from microlith.quant.fixed_point import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    wrap_int32,
)
from microlith.quant.nodes import activation, tensor_q
from microlith.quant.registry import integer_op


@dataclass(frozen=True, eq=False)
class PoolParams:
    in_h: int
    in_w: int
    channels: int
    out_h: int
    out_w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    count_border: int  # average: 1 counts out-of-image taps as z_x over all KH*KW taps
    x_zp: int
    act_min: int
    act_max: int
    is_max: int


@dataclass(frozen=True, eq=False)
class MeanParams:
    axes: tuple[int, ...]
    keep_dims: bool
    count: int
    x_zp: int
    zp_count: int  # int32(z_x * count)
    mult: int
    shift: int
    y_zp: int


def pool_params(x_shape: Sequence[int], out_hw: Sequence[int], kernel: Sequence[int],
                stride: Sequence[int], pad: Sequence[int], *, is_max: bool, count_border: bool,
                x_zp: int, y_scale: float, y_zp: int, activation: str) -> PoolParams:
    _, in_h, in_w, channels = (int(d) for d in x_shape)
    lo, hi = activation_range(activation, y_scale, y_zp)
    return PoolParams(in_h, in_w, channels, int(out_hw[0]), int(out_hw[1]), int(kernel[0]),
                      int(kernel[1]), int(stride[0]), int(stride[1]), int(pad[0]), int(pad[1]),
                      int(bool(count_border) and not is_max), int(x_zp), lo, hi, int(is_max))


def _windows(x: np.ndarray, p: PoolParams, fill: int):
    """Yield every tap's ``[N, OH, OW, C]`` view of ``x`` padded with ``fill``."""
    widths = [(0, 0)]
    for size, out, k, s, before in ((p.in_h, p.out_h, p.k_h, p.stride_h, p.pad_top),
                                    (p.in_w, p.out_w, p.k_w, p.stride_w, p.pad_left)):
        widths.append((before, max((out - 1) * s + k - before - size, 0)))
    widths.append((0, 0))
    xp = np.pad(x, widths, constant_values=fill)
    for i in range(p.k_h):
        for j in range(p.k_w):
            yield xp[:, i:i + (p.out_h - 1) * p.stride_h + 1:p.stride_h,
                     j:j + (p.out_w - 1) * p.stride_w + 1:p.stride_w, :]


def pool_integers(p: PoolParams, x: np.ndarray, lowest: int) -> np.ndarray:
    """The pooled integers before the activation clamp: the window maximum (padding reads
    ``lowest``, the type's minimum) or the average rounded half away from zero (TFLite's
    integer average pool; border taps count only with ``count_border``)."""
    if p.is_max:
        best = np.full((x.shape[0], p.out_h, p.out_w, p.channels), lowest, np.int64)
        for win in _windows(x, p, lowest):
            best = np.maximum(best, win)
        return best
    if p.count_border:
        acc = sum(_windows(x, p, p.x_zp))
        count = np.int64(p.k_h * p.k_w)
    else:
        acc = sum(_windows(x, p, 0))
        ones = np.ones((1, p.in_h, p.in_w, 1), np.int64)
        count = sum(_windows(ones, p, 0))
    acc = wrap_int32(acc)
    return np.sign(acc) * ((np.abs(acc) + count // 2) // count)  # C: (acc +- n/2) / n


def run_pool(p: PoolParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = as_int(need(args, 0))
    return [clamp_to_int8(pool_integers(p, x, INT8_MIN), p.act_min, p.act_max)]


def prepare_pool(node: Node) -> PoolParams:
    """tfl.*_pool_2d (SAME/VALID: border taps skipped) and c.*_pool_2d (explicit pads)."""
    from microlith.ops.common import same_valid_pads

    x, y = node.arg(0), node.output
    _, zx = tensor_q(x)
    sy, zy = tensor_q(y)
    is_max = "max_pool" in node.op
    if node.op.startswith("tfl."):
        kernel = (node.attr("filter_height"), node.attr("filter_width"))
        stride = (node.attr("stride_h"), node.attr("stride_w"))
        pads = same_valid_pads(node.attr("padding"), x.shape[1:3], kernel, stride)
        border = False
    else:
        kernel, stride, pads = node.attr("kernel_shape"), node.attr("strides"), node.attr("pads")
        border = bool(node.attr("count_include_pad", 0)) and any(pads)
    return pool_params(x.shape, y.shape[1:3], kernel, stride, pads[:2], is_max=is_max,
                       count_border=border, x_zp=zx, y_scale=sy, y_zp=zy,
                       activation=activation(node))


integer_op("tfl.max_pool_2d", "tfl.average_pool_2d", "c.max_pool_2d", "c.average_pool_2d",
           prepare=prepare_pool)(run_pool)


def resolve_axes(axes: Sequence[int], rank: int) -> list[int]:
    """Negative axes made positive, duplicates dropped, order kept (``ResolveAxis``)."""
    out: list[int] = []
    for a in axes:
        a = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= a < rank:
            raise ValueError(f"axis {a} out of range for rank {rank}")
        if a not in out:
            out.append(a)
    return out


def mean_params(x_shape: Sequence[int], axes: Sequence[int], *, keep_dims: bool,
                x_scale: float, x_zp: int, y_scale: float, y_zp: int) -> MeanParams:
    resolved = resolve_axes(axes, len(x_shape))
    count = math.prod(int(x_shape[a]) for a in resolved)
    mult, shift = quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
    if count > 0:
        k = min(count.bit_length() - 1, 32, 31 + shift)
        mult, shift = int(wrap_int32((mult << k) // count)), shift - k
    return MeanParams(tuple(resolved), bool(keep_dims), count, int(x_zp),
                      int(wrap_int32(int(x_zp) * count)), int(mult), int(shift), int(y_zp))


def run_mean(p: MeanParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = need(args, 0)
    shape = [1 if (i in p.axes) else d for i, d in enumerate(x.shape)]
    if not p.keep_dims:
        shape = [d for i, d in enumerate(x.shape) if i not in p.axes]
    if p.count == 0:
        return [np.zeros(shape, np.int8)]
    total = wrap_int32(as_int(x).sum(axis=p.axes, keepdims=True))
    shifted = wrap_int32(total - int(p.x_zp) * p.count)
    y = multiply_by_quantized_multiplier(shifted, p.mult, p.shift) + p.y_zp
    return [clamp_to_int8(y).reshape(shape)]


def prepare_mean(node: Node) -> MeanParams:
    from microlith.ops.reduce import tfl_axes

    x, y = node.arg(0), node.output
    (sx, zx), (sy, zy) = tensor_q(x), tensor_q(y)
    return mean_params(x.shape, tfl_axes(node, x.type.rank),
                       keep_dims=bool(node.attr("keep_dims")), x_scale=sx, x_zp=zx,
                       y_scale=sy, y_zp=zy)


integer_op("tfl.mean", prepare=prepare_mean)(run_mean)
