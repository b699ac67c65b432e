"""Int8 TFLite kernels with accumulators: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
AVERAGE_POOL_2D, MAX_POOL_2D and MEAN, bit-exact with TFLite-Micro's reference kernels.

Convolutions (NHWC input, zero points ``z``, per-output-channel weight scales ``s_w[c]``)::

    acc[c] = int32( sum_taps (x - z_x) * w[c] + b[c] )        (taps outside the image skipped)
    y[c]   = clamp(z_y + MBQM(acc[c], m[c], shift[c]), act_lo, act_hi)
    (m[c], shift[c]) = QuantizeMultiplier(double(s_x) * double(s_w[c]) / double(s_y))

``MBQM`` is ``fixed_point.multiply_by_quantized_multiplier``; ``int32(.)`` wraps, as the
C accumulator does (the wrapped sum does not depend on the summation order, so the
exact sum is taken first -- in float64, which is exact because every partial sum is
an integer below 2**53 -- and wrapped once).  The weight zero point is ignored, as in
TFLite-Micro (int8 weights are symmetric).  FULLY_CONNECTED supports per-tensor and (in
TFLite-Micro, for int8) per-channel weight scales with the same double formula; with one
weight scale it also honours a weight zero point.  (The TFLite-Micro source snapshot of
August 2026 forms the per-tensor product ``s_x * s_w`` in float32; the runtime we test
against, tflite-micro 0.dev20261023, matches the double product bit for bit --
``test_precision_fully_connected`` pins scales where the two differ.)

AVERAGE_POOL_2D averages the in-image taps only, ``(acc ± n/2) / n`` with C division
(round half away from zero); MAX_POOL_2D takes the max of the in-image taps; both then
clamp to the fused activation range.  Input and output quantization must be equal.

MEAN (int8) sums over the reduced axes in int32, then folds ``1/n`` into the multiplier
``QuantizeMultiplier(double(s_x) / double(s_y))``: with ``k = min(floor(log2 n), 32,
31 + shift)``, ``m' = (m << k) // n`` and ``shift' = shift - k``;
``y = clamp(z_y + MBQM(int32(sum - z_x n), m', shift'), -128, 127)``.  TFLite-Micro has no
special 4-D H/W path for int8 MEAN: every axis set goes through this one formula.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from microlith.interpreter.fixed_point import (
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    wrap_int32,
)
from microlith.interpreter.int8_common import (
    INT8_MIN,
    activation_range,
    as_int,
    clamp_to_int8,
    f32,
    spatial_geometry,
)

Pair = tuple[int, int]


def _conv_multipliers(
    x_scale: float, w_scales: Sequence[float], y_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(m, shift)`` of ``PopulateConvolutionQuantizationParams``."""
    pairs = [
        quantize_multiplier(float(f32(x_scale)) * float(f32(s)) / float(f32(y_scale)))
        for s in w_scales
    ]
    return (np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64))


def _requantize(
    acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, y_zp: int, lo: int, hi: int
) -> np.ndarray:
    return clamp_to_int8(multiply_by_quantized_multiplier(acc, mult, shift) + int(y_zp), lo, hi)


def _output_stage(
    acc: np.ndarray, bias: np.ndarray | None, x_scale: float, w_scales: Sequence[float],
    y_scale: float, y_zero_point: int, activation: str,
) -> np.ndarray:
    """``clamp(z_y + MBQM(acc + bias, QM(s_x s_w[c] / s_y)), act)``: the conv/FC epilogue."""
    if bias is not None:
        acc = acc + as_int(bias).reshape(acc.shape[-1])
    mult, shift = _conv_multipliers(x_scale, w_scales, y_scale)
    lo, hi = activation_range(activation, y_scale, y_zero_point)
    return _requantize(wrap_int32(acc), mult, shift, y_zero_point, lo, hi)


def _padded(
    x: np.ndarray, pad: Pair, out: Pair, kernel: Pair, stride: Pair, dilation: Pair, fill: int
) -> np.ndarray:
    """``x`` (NHWC) padded with ``fill`` so every tap of every output window is in range."""
    widths = [(0, 0)]
    for axis in (0, 1):
        need = (out[axis] - 1) * stride[axis] + (kernel[axis] - 1) * dilation[axis] + 1
        after = max(need - pad[axis] - x.shape[1 + axis], 0)
        widths.append((pad[axis], after))
    widths.append((0, 0))
    return np.pad(x, widths, constant_values=fill)


def _taps(xp: np.ndarray, out: Pair, kernel: Pair, stride: Pair, dilation: Pair):
    """Yield ``(i, j, window)`` with ``window[n, oh, ow, :] = xp[n, oh*sh + i*dh, ...]``."""
    (oh, ow), (sh, sw), (dh, dw) = out, stride, dilation
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            y0, x0 = i * dh, j * dw
            yield i, j, xp[:, y0 : y0 + (oh - 1) * sh + 1 : sh, x0 : x0 + (ow - 1) * sw + 1 : sw, :]


def conv_2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scales: Sequence[float],
    y_scale: float,
    y_zero_point: int,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
) -> np.ndarray:
    """CONV_2D: NHWC int8 ``x``, OHWI int8 ``w`` (grouped when ``I < C_in``), int32 bias."""
    n, h, wd, cin = x.shape
    cout, kh, kw, cg = w.shape
    if cin % cg or cout % (cin // cg):
        raise ValueError(f"conv_2d: input depth {cin} and filter {w.shape} do not form groups")
    groups = cin // cg
    out, pad = spatial_geometry(padding, (h, wd), (kh, kw), stride, dilation)
    xp = _padded(as_int(x) - int(x_zero_point), pad, out, (kh, kw), stride, dilation, 0)
    wg = as_int(w).reshape(groups, cout // groups, kh, kw, cg).astype(np.float64)
    acc = np.zeros((groups, n * out[0] * out[1], cout // groups), np.float64)
    for i, j, win in _taps(xp, out, (kh, kw), stride, dilation):
        cols = win.reshape(-1, groups, cg).transpose(1, 0, 2).astype(np.float64)
        acc += cols @ wg[:, :, i, j, :].transpose(0, 2, 1)
    acc_i = acc.astype(np.int64).transpose(1, 0, 2).reshape(n, out[0], out[1], cout)
    return _output_stage(acc_i, bias, x_scale, w_scales, y_scale, y_zero_point, activation)


def depthwise_conv_2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scales: Sequence[float],
    y_scale: float,
    y_zero_point: int,
    depth_multiplier: int = 1,
    stride: Pair = (1, 1),
    dilation: Pair = (1, 1),
    padding: str = "SAME",
    activation: str = "NONE",
) -> np.ndarray:
    """DEPTHWISE_CONV_2D: filter ``[1, KH, KW, C*M]``; output channel ``c*M + m`` reads ``c``."""
    n, h, wd, cin = x.shape
    _, kh, kw, cout = w.shape
    if cout != cin * depth_multiplier:
        raise ValueError(f"depthwise: {cout} output channels != {cin} x {depth_multiplier}")
    out, pad = spatial_geometry(padding, (h, wd), (kh, kw), stride, dilation)
    xc = np.repeat(as_int(x) - int(x_zero_point), depth_multiplier, axis=3)
    xp = _padded(xc, pad, out, (kh, kw), stride, dilation, 0)
    wi = as_int(w)
    acc = np.zeros((n, out[0], out[1], cout), np.int64)
    for i, j, win in _taps(xp, out, (kh, kw), stride, dilation):
        acc += win * wi[0, i, j, :]
    return _output_stage(acc, bias, x_scale, w_scales, y_scale, y_zero_point, activation)


def fully_connected(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    *,
    x_scale: float,
    x_zero_point: int,
    w_scales: Sequence[float],
    y_scale: float,
    y_zero_point: int,
    w_zero_point: int = 0,
    activation: str = "NONE",
    keep_num_dims: bool = False,
    bias_scale: float | None = None,
) -> np.ndarray:
    """FULLY_CONNECTED: ``w`` is ``[out, depth]``; ``x`` is read as ``[-1, depth]``.

    Per-tensor weights (one scale) honour the weight zero point; per-channel weights
    ignore it.  When ``bias_scale`` is given, TFLite's Prepare check
    ``|s_x s_w - s_b| / s_y <= 0.02`` is applied (per-tensor only, ``ValueError`` if not).
    """
    units, depth = w.shape
    xf = as_int(x).reshape(-1, depth) - int(x_zero_point)
    per_channel = len(w_scales) > 1
    wz = 0 if per_channel else int(w_zero_point)
    if bias_scale is not None and bias is not None and not per_channel:
        product = float(f32(x_scale)) * float(f32(w_scales[0]))
        if abs(product - float(f32(bias_scale))) / float(f32(y_scale)) > 0.02:
            raise ValueError("fully_connected: bias scale differs from s_x*s_w (TFLM refuses)")
    wf = (as_int(w) - wz).astype(np.float64)
    acc = (xf.astype(np.float64) @ wf.T).astype(np.int64)
    y = _output_stage(acc, bias, x_scale, w_scales, y_scale, y_zero_point, activation)
    return y.reshape(*x.shape[:-1], units) if keep_num_dims else y


def _pool_geometry(x: np.ndarray, filter_hw: Pair, stride: Pair, padding: str):
    return spatial_geometry(padding, x.shape[1:3], filter_hw, stride)


def average_pool_2d(
    x: np.ndarray,
    *,
    filter_hw: Pair,
    stride: Pair,
    padding: str = "VALID",
    y_scale: float,
    y_zero_point: int,
    activation: str = "NONE",
) -> np.ndarray:
    """AVERAGE_POOL_2D (int8, input quantization == output quantization)."""
    out, pad = _pool_geometry(x, filter_hw, stride, padding)
    xp = _padded(as_int(x), pad, out, filter_hw, stride, (1, 1), 0)
    ones = _padded(np.ones((1, *x.shape[1:3], 1), np.int64), pad, out, filter_hw, stride, (1, 1), 0)
    acc = np.zeros((x.shape[0], *out, x.shape[3]), np.int64)
    count = np.zeros((1, *out, 1), np.int64)
    for _, _, win in _taps(xp, out, filter_hw, stride, (1, 1)):
        acc += win
    for _, _, win in _taps(ones, out, filter_hw, stride, (1, 1)):
        count += win
    acc = wrap_int32(acc)
    avg = np.sign(acc) * ((np.abs(acc) + count // 2) // count)  # C: (acc ± n/2) / n
    lo, hi = activation_range(activation, y_scale, y_zero_point)
    return clamp_to_int8(avg, lo, hi)


def max_pool_2d(
    x: np.ndarray,
    *,
    filter_hw: Pair,
    stride: Pair,
    padding: str = "VALID",
    y_scale: float,
    y_zero_point: int,
    activation: str = "NONE",
) -> np.ndarray:
    """MAX_POOL_2D (int8, input quantization == output quantization)."""
    out, pad = _pool_geometry(x, filter_hw, stride, padding)
    xp = _padded(as_int(x), pad, out, filter_hw, stride, (1, 1), INT8_MIN)
    best = np.full((x.shape[0], *out, x.shape[3]), INT8_MIN, np.int64)
    for _, _, win in _taps(xp, out, filter_hw, stride, (1, 1)):
        best = np.maximum(best, win)
    lo, hi = activation_range(activation, y_scale, y_zero_point)
    return clamp_to_int8(best, lo, hi)


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


def mean(
    x: np.ndarray,
    axes: Sequence[int],
    *,
    keep_dims: bool,
    x_scale: float,
    x_zero_point: int,
    y_scale: float,
    y_zero_point: int,
) -> np.ndarray:
    """MEAN (int8): integer sum over ``axes``, ``1/n`` folded into the output multiplier."""
    resolved = resolve_axes(axes, x.ndim)
    total = wrap_int32(as_int(x).sum(axis=tuple(resolved), keepdims=True))
    shape = [1 if (i in resolved) else d for i, d in enumerate(x.shape)]
    if not keep_dims:
        shape = [d for i, d in enumerate(x.shape) if i not in resolved]
    count = math.prod(x.shape[a] for a in resolved)
    if count == 0:
        return np.zeros(shape, np.int8)
    mult, shift = quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    mult = int(wrap_int32((mult << k) // count))
    shift -= k
    shifted = wrap_int32(total - int(x_zero_point) * count)
    y = multiply_by_quantized_multiplier(shifted, mult, shift) + int(y_zero_point)
    return clamp_to_int8(y).reshape(shape)
