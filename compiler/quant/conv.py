"""Integer convolutions and fully connected layers, bit-exact with TFLite-Micro.

For NHWC int8 ``x`` (zero point ``z_x``), int8 weights with per-channel scales ``s_w[c]``
(the weight zero point is ignored, as TFLite-Micro does for symmetric int8 weights) and
an int32 bias::

    acc[c] = int32( sum_taps (x - z_x) * w[c] + b[c] )        (taps outside the image skipped)
    y[c]   = clamp(z_y + MBQM(acc[c], m[c], shift[c]), act_lo, act_hi)
    (m[c], shift[c]) = QuantizeMultiplier(double(s_x) * double(s_w[c]) / double(s_y))

``MBQM`` is ``fixed_point.multiply_by_quantized_multiplier``; ``int32(.)`` wraps as the C
accumulator does (the wrapped sum does not depend on the summation order, so the exact sum
is taken first, in float64 -- exact, every partial sum being an integer below 2**53 -- and
wrapped once). Out-of-image taps are skipped, which equals a border of ``z_x``.

The records also hold the zero-point-folded bias ``b[c] - z_x sum w[c]`` (the C kernels
use it for windows fully inside the image) and ``acc_bound = max_c |b[c]| + 256 sum
|w[c]|``: the C kernels are exact only while it stays below 2**31.
FULLY_CONNECTED uses the same epilogue; with one weight scale it also honours a weight
zero point (TFLite-Micro's per-tensor path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant.arith import activation_range, as_int, clamp_to_int8, f32
from microlith.quant.fixed_point import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    wrap_int32,
)
from microlith.quant.nodes import activation, qparams, tensor_q
from microlith.quant.registry import integer_op

Pair = tuple[int, int]


@dataclass(frozen=True, eq=False)
class ConvParams:
    """CONV_2D (``depth_multiplier == 0``, grouped) or DEPTHWISE_CONV_2D, after Prepare."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_top: int
    pad_left: int
    groups: int  # CONV_2D: C_in / filter depth (1 unless grouped)
    depth_multiplier: int  # DEPTHWISE_CONV_2D: M; 0 for CONV_2D
    x_zp: int
    y_zp: int
    act_min: int
    act_max: int
    mult: np.ndarray  # int32 [out_c]
    shift: np.ndarray  # int32 [out_c]
    bias: np.ndarray  # int32 [out_c], zeros when the op has none
    bias_folded: np.ndarray  # int32 [out_c]: bias - z_x * sum(w[c])
    acc_bound: int  # max |bias| + 256 sum |w[c]|
    scratch_bytes: int = 0  # kernel scratch in the arena (set by select-kernels for C)


@dataclass(frozen=True, eq=False)
class FullyConnectedParams:
    depth: int
    units: int
    keep_num_dims: bool
    x_zp: int
    w_zp: int
    y_zp: int
    act_min: int
    act_max: int
    mult: np.ndarray  # int32 [units]
    shift: np.ndarray  # int32 [units]
    bias: np.ndarray  # int32 [units]
    bias_folded: np.ndarray  # int32 [units]: bias - z_x * sum(w[u] - z_w)
    acc_bound: int


def channel_multipliers(x_scale: float, w_scales: Sequence[float], y_scale: float,
                        channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(m, shift)`` of ``PopulateConvolutionQuantizationParams``.

    One weight scale is used for every channel.
    """
    scales = list(w_scales)
    if len(scales) == 1:
        scales = scales * channels
    if len(scales) != channels:
        raise ValueError(f"{len(scales)} weight scales for {channels} output channels")
    pairs = [quantize_multiplier(float(f32(x_scale)) * float(f32(s)) / float(f32(y_scale)))
             for s in scales]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def folded_biases(w2d: np.ndarray, bias: np.ndarray | None, x_zp: int, w_zp: int = 0
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """(bias, bias - z_x sum(w - z_w), max |bias| + 256 sum |w - z_w|) per output row."""
    units = w2d.shape[0]
    b = np.zeros(units, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(units)
    sums, abs_sums = np.zeros(units, np.int64), np.zeros(units, np.int64)
    rows = max(1, (1 << 21) // max(1, w2d.size // max(1, units)))  # int64 blocks, 16 MB
    for start in range(0, units, rows):
        w = w2d[start:start + rows].astype(np.int64) - int(w_zp)
        sums[start:start + rows] = w.sum(axis=1)
        abs_sums[start:start + rows] = np.abs(w).sum(axis=1)
    bound = np.abs(b) + 256 * abs_sums
    folded = wrap_int32(b - int(x_zp) * sums)
    return (b.astype(np.int32), folded.astype(np.int32),
            int(bound.max()) if bound.size else 0)


def conv_params(x_shape: Sequence[int], w: np.ndarray, bias: np.ndarray | None, *,
                x_scale: float, x_zp: int, w_scales: Sequence[float], y_scale: float,
                y_zp: int, out_hw: Pair, stride: Pair, dilation: Pair, pad: Pair,
                activation: str, depthwise: bool) -> ConvParams:
    """The record of a convolution with NHWC input ``x_shape`` and weights ``w`` (OHWI, or
    ``[1, KH, KW, C*M]`` when ``depthwise``); ``pad`` is (top, left)."""
    _, in_h, in_w, in_c = (int(d) for d in x_shape)
    if depthwise:
        _, kh, kw, out_c = w.shape
        w2d = w.reshape(kh * kw, out_c).T
        groups, multiplier = 0, out_c // in_c
    else:
        out_c, kh, kw, cg = w.shape
        w2d = w.reshape(out_c, -1)
        if in_c % cg or out_c % (in_c // cg):
            raise ValueError(f"input depth {in_c} and filter {w.shape} do not form groups")
        groups, multiplier = in_c // cg, 0
    mult, shift = channel_multipliers(x_scale, w_scales, y_scale, out_c)
    b, folded, bound = folded_biases(w2d, bias, x_zp)
    lo, hi = activation_range(activation, y_scale, y_zp)
    return ConvParams(in_h, in_w, in_c, int(out_hw[0]), int(out_hw[1]), out_c, kh, kw,
                      int(stride[0]), int(stride[1]), int(dilation[0]), int(dilation[1]),
                      int(pad[0]), int(pad[1]), groups, multiplier, int(x_zp), int(y_zp), lo,
                      hi, mult, shift, b, folded, bound)


def _requantize(acc: np.ndarray, p: ConvParams | FullyConnectedParams) -> np.ndarray:
    """``clamp(z_y + MBQM(int32(acc + bias), m, shift))`` along the last axis."""
    acc = wrap_int32(acc + p.bias.astype(np.int64))
    y = multiply_by_quantized_multiplier(acc, p.mult.astype(np.int64), p.shift.astype(np.int64))
    return clamp_to_int8(y + p.y_zp, p.act_min, p.act_max)


def _padded(x: np.ndarray, p: ConvParams) -> np.ndarray:
    """``x`` (NHWC, already centred) padded with 0 so every tap of every window is in range."""
    widths = [(0, 0)]
    for size, out, k, s, d, before in ((p.in_h, p.out_h, p.k_h, p.stride_h, p.dil_h, p.pad_top),
                                       (p.in_w, p.out_w, p.k_w, p.stride_w, p.dil_w, p.pad_left)):
        need = (out - 1) * s + (k - 1) * d + 1
        widths.append((before, max(need - before - size, 0)))
    widths.append((0, 0))
    return np.pad(x, widths, constant_values=0)


def _taps(xp: np.ndarray, p: ConvParams):
    """Yield ``(i, j, window)`` with ``window[n, oh, ow, :] = xp[n, oh*sh + i*dh, ...]``."""
    for i in range(p.k_h):
        for j in range(p.k_w):
            y0, x0 = i * p.dil_h, j * p.dil_w
            yield i, j, xp[:, y0:y0 + (p.out_h - 1) * p.stride_h + 1:p.stride_h,
                           x0:x0 + (p.out_w - 1) * p.stride_w + 1:p.stride_w, :]


def conv_accumulate(p: ConvParams, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The exact ``sum_taps (x - z_x) * w[c]`` per output element (int64, NHWC, no bias)."""
    n = x.shape[0]
    if p.depth_multiplier:
        xc = np.repeat(as_int(x) - p.x_zp, p.depth_multiplier, axis=3)
        xp = _padded(xc, p)
        wi = as_int(w)
        acc = np.zeros((n, p.out_h, p.out_w, p.out_c), np.int64)
        for i, j, win in _taps(xp, p):
            acc += win * wi[0, i, j, :]
        return acc
    groups, cg = p.groups, w.shape[3]
    xp = _padded(as_int(x) - p.x_zp, p)
    wg = as_int(w).reshape(groups, p.out_c // groups, p.k_h, p.k_w, cg).astype(np.float64)
    accf = np.zeros((groups, n * p.out_h * p.out_w, p.out_c // groups), np.float64)
    for i, j, win in _taps(xp, p):
        cols = win.reshape(-1, groups, cg).transpose(1, 0, 2).astype(np.float64)
        accf += cols @ wg[:, :, i, j, :].transpose(0, 2, 1)
    return accf.astype(np.int64).transpose(1, 0, 2).reshape(n, p.out_h, p.out_w, p.out_c)


def run_conv(p: ConvParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [_requantize(conv_accumulate(p, need(args, 0), need(args, 1)), p)]


def prepare_conv(node: Node, bias_dtype: type = np.int32) -> ConvParams:
    """tfl.conv_2d / tfl.depthwise_conv_2d (SAME/VALID) and c.conv_2d / c.depthwise_conv_2d
    (explicit pads). With ``bias_dtype=np.int64`` (16x8) the record's bias fields are zeros:
    the caller reads the int64 bias itself."""
    from microlith.ops.common import same_valid_pads

    x, w, y = node.arg(0), node.arg(1), node.output
    if w is None or not w.is_constant:
        raise ValueError("convolution weights must be constant")
    bias = node.input(2)
    if bias is not None and (not bias.is_constant or bias.dtype.numpy != bias_dtype):
        raise ValueError(f"the bias must be a constant {np.dtype(bias_dtype).name} tensor")
    if bias_dtype is not np.int32:
        bias = None
    depthwise = node.op.endswith("depthwise_conv_2d")
    kernel = (w.shape[1], w.shape[2])
    if node.op.startswith("tfl."):
        stride = (node.attr("stride_h"), node.attr("stride_w"))
        dilation = (node.attr("dilation_h_factor"), node.attr("dilation_w_factor"))
        pads = same_valid_pads(node.attr("padding"), x.shape[1:3], kernel, stride, dilation)
    else:
        stride, dilation, pads = node.attr("strides"), node.attr("dilations"), node.attr("pads")
    (sx, zx), (sy, zy) = tensor_q(x), tensor_q(y)
    return conv_params(x.shape, np.asarray(w.data), None if bias is None else bias.data,
                       x_scale=sx, x_zp=zx, w_scales=qparams(w).scale, y_scale=sy, y_zp=zy,
                       out_hw=(y.shape[1], y.shape[2]), stride=stride, dilation=dilation,
                       pad=(pads[0], pads[1]), activation=activation(node),
                       depthwise=depthwise)


integer_op("tfl.conv_2d", "tfl.depthwise_conv_2d", "c.conv_2d", "c.depthwise_conv_2d",
           prepare=prepare_conv)(run_conv)


def fully_connected_params(w: np.ndarray, bias: np.ndarray | None, *, x_scale: float,
                           x_zp: int, w_scales: Sequence[float], w_zp: int, y_scale: float,
                           y_zp: int, activation: str, keep_num_dims: bool
                           ) -> FullyConnectedParams:
    units, depth = w.shape
    w_zp = 0 if len(w_scales) > 1 else int(w_zp)
    mult, shift = channel_multipliers(x_scale, w_scales, y_scale, units)
    b, folded, bound = folded_biases(w, bias, x_zp, w_zp)
    lo, hi = activation_range(activation, y_scale, y_zp)
    return FullyConnectedParams(depth, units, bool(keep_num_dims), int(x_zp), w_zp, int(y_zp), lo,
                                hi, mult, shift, b, folded, bound)


def run_fully_connected(p: FullyConnectedParams, args: list[np.ndarray | None]
                        ) -> list[np.ndarray]:
    x, w = need(args, 0), need(args, 1)
    xf = as_int(x).reshape(-1, p.depth) - p.x_zp
    wf = (as_int(w) - p.w_zp).astype(np.float64)
    acc = (xf.astype(np.float64) @ wf.T).astype(np.int64)
    y = _requantize(acc, p)
    return [y.reshape(*x.shape[:-1], p.units) if p.keep_num_dims else y]


@integer_op("tfl.fully_connected", prepare=lambda node: prepare_fully_connected(node))
def _fully_connected(p: FullyConnectedParams, args: list[np.ndarray | None]
                     ) -> list[np.ndarray]:
    return run_fully_connected(p, args)


def prepare_fully_connected(node: Node, bias_dtype: type = np.int32) -> FullyConnectedParams:
    """The FULLY_CONNECTED record; with ``bias_dtype=np.int64`` (16x8) its bias fields are
    zeros (the caller reads the int64 bias)."""
    x, w, y = node.arg(0), node.arg(1), node.output
    if w is None or not w.is_constant or w.type.rank != 2:
        raise ValueError("fully-connected weights must be a constant [units, depth] tensor")
    bias = node.input(2)
    if bias is not None and (not bias.is_constant or bias.dtype.numpy != bias_dtype):
        raise ValueError(f"the bias must be a constant {np.dtype(bias_dtype).name} tensor")
    if bias_dtype is not np.int32:
        bias = None
    (sx, zx), (sy, zy) = tensor_q(x), tensor_q(y)
    wq = qparams(w)
    return fully_connected_params(np.asarray(w.data), None if bias is None else bias.data,
                                  x_scale=sx, x_zp=zx, w_scales=wq.scale,
                                  w_zp=wq.zero_point[0], y_scale=sy, y_zp=zy,
                                  activation=activation(node),
                                  keep_num_dims=bool(node.attr("keep_num_dims")))
