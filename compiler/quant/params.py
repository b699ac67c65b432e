"""Quantization parameters per the TFLite int8 spec.

Activations: asymmetric per-tensor int8 over [-128, 127]. The range [lo, hi] is
first widened to include 0; ``scale = (hi - lo) / 255`` and the zero point is the
nudged ``round(-128 - lo / scale)`` clamped to [-128, 127], so real 0 is exactly
representable. Weights: symmetric int8 over [-127, 127], zero point 0, per channel
along ``axis``: ``scale[c] = max|W[c]| / 127``. Bias: int32 with
``scale[c] = s_in * s_w[c]`` (float32 product) and zero point 0. Scales are float32
values because that is what the flatbuffer stores and what kernels compute from.
A zero range (a constant-zero tensor or weight channel) gets scale 1 (any scale
represents 0 exactly) instead of dividing by zero. So does a weight channel whose
scale ``max|W[c]| / 127`` would be subnormal in float32 (largest value below about
1.5e-36, e.g. a denormal 1e-45): it quantizes to all zeros, as its values are zero
at float32 resolution, instead of getting a zero or subnormal scale. A weight channel
whose scale would be too small for its bias (``s_in * s_w`` so small that the int32
bias saturates) gets the larger scale the TF converter gives it (``bias_safe_max_abs``).
"""

from __future__ import annotations

import numpy as np

from microlith.ir.types import QuantParams

INT8_MIN, INT8_MAX = -128, 127


def f32(x: float) -> float:
    return float(np.float32(x))


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round half away from zero (C's round(), which TFLite uses)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_params(lo: float, hi: float, qmin: int = INT8_MIN,
                      qmax: int = INT8_MAX) -> QuantParams:
    """Asymmetric per-tensor parameters covering [min(lo, 0), max(hi, 0)]."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError(f"range [{lo}, {hi}] is not finite")
    if hi - lo <= 0.0:
        return QuantParams((1.0,), (qmin,))
    scale = f32((hi - lo) / (qmax - qmin))
    if scale <= 0.0:  # range below float32 resolution
        scale = float(np.finfo(np.float32).tiny)
    zero_point = qmin - lo / scale
    zero_point = int(min(max(int(round_half_away(np.float64(zero_point))), qmin), qmax))
    return QuantParams((scale,), (zero_point,))


INT16_MAX = 32767


def symmetric_params(lo: float, hi: float, qmax: int = INT16_MAX) -> QuantParams:
    """Symmetric per-tensor parameters (zero point 0): ``scale = max(|lo|, |hi|) / qmax``
    (the TFLite 16x8 spec's activations, ``qmax = 32767``)."""
    lo, hi = float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise ValueError(f"range [{lo}, {hi}] is not finite")
    bound = max(abs(lo), abs(hi))
    if bound <= 0.0:
        return QuantParams((1.0,), (0,))
    scale = f32(bound / qmax)
    if scale <= 0.0:
        scale = float(np.finfo(np.float32).tiny)
    return QuantParams((scale,), (0,))


def fixed_params(scale: float, zero_point: int) -> QuantParams:
    return QuantParams((f32(scale),), (int(zero_point),))


INT32_MAX = 2**31 - 1


def bias_safe_max_abs(max_abs: np.ndarray, bias: np.ndarray, input_scale: float
                      ) -> np.ndarray:
    """Raise a weight channel's ``max|W|`` where its bias would not fit in int32.

    The TF converter's rule: where ``|b| >= 0.5 * s_in * s_w * INT32_MAX`` (the bias
    would leave the middle half of int32 at scale ``s_in * s_w``), the channel's range
    becomes ``max|W| = 2 |b| / INT32_MAX * 127 / s_in``, so ``s_w = 2 |b| / (INT32_MAX
    s_in)`` and the bias quantizes to about 2^30, exactly enough to hold it; that
    channel's (tiny) weights then quantize to 0. Per tensor (one channel), the largest
    ``|b|`` decides. A dead channel (float weights ~1e-33, common in trained
    MobileNets) is the case this exists for."""
    b = np.abs(np.asarray(bias, np.float64).reshape(-1))
    if len(max_abs) == 1:
        b = np.array([b.max(initial=0.0)])
    if len(b) != len(max_abs) or input_scale <= 0.0:
        return max_abs
    scales = max_abs / 127.0
    raise_ = b >= 0.5 * input_scale * scales * INT32_MAX
    return np.where(raise_, 2.0 * b / INT32_MAX * (127.0 / input_scale), max_abs)


def quantize_weights(weights: np.ndarray, axis: int | None, bias: np.ndarray | None = None,
                     input_scale: float = 0.0) -> tuple[np.ndarray, QuantParams]:
    """Symmetric int8 weights (per channel along ``axis``, per tensor if None); with
    ``bias`` and ``input_scale``, no channel's scale is too small for its bias
    (``bias_safe_max_abs``)."""
    if np.ndim(weights) >= 2 and axis in (0, None) and np.size(weights) >= _CHUNKED_MIN:
        return _quantize_weights_chunked(np.asarray(weights), axis, bias, input_scale)
    w = np.asarray(weights, np.float64)
    if axis is None:
        max_abs = np.array([np.abs(w).max(initial=0.0)])
        shape = [1] * w.ndim
    else:
        reduce = tuple(i for i in range(w.ndim) if i != axis)
        max_abs = np.abs(w).max(axis=reduce, initial=0.0)
        shape = [1] * w.ndim
        shape[axis] = -1
    if bias is not None:
        max_abs = bias_safe_max_abs(max_abs, bias, input_scale)
    tiny = float(np.finfo(np.float32).tiny)  # smallest normal float32
    scales = np.where(max_abs / 127.0 >= tiny, max_abs / 127.0, 1.0).astype(np.float32)
    q = round_half_away(w / scales.astype(np.float64).reshape(shape))
    q = np.clip(q, -127, 127).astype(np.int8)
    params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)
    return q, params


#: weights of at least this many elements are quantized a block of rows at a time
_CHUNKED_MIN = 1 << 20
_CHUNK_ELEMENTS = 1 << 21  # float64 temporaries of 16 MB per block


def _row_blocks(w: np.ndarray) -> list[slice]:
    rows = max(1, _CHUNK_ELEMENTS // max(1, w[0].size))
    return [slice(i, i + rows) for i in range(0, w.shape[0], rows)]


def _quantize_weights_chunked(w: np.ndarray, axis: int | None, bias: np.ndarray | None,
                              input_scale: float) -> tuple[np.ndarray, QuantParams]:
    """``quantize_weights`` with the same float64 maths, element for element, done a
    block of rows at a time: the temporaries (the float64 copy, |w|, the quotient) are
    those of one block, not of the whole matrix (a large FC layer's would be gigabytes)."""
    blocks = _row_blocks(w)
    reduce = tuple(range(1, w.ndim))
    # |w| and max are exact in float32; the float64 result is the same
    if axis is None:
        maxes = [np.abs(np.asarray(w[b], np.float64)).max(initial=0.0) for b in blocks]
        max_abs = np.array([np.max(maxes, initial=0.0)])
        shape = [1] * w.ndim
    else:
        max_abs = np.concatenate([np.abs(np.asarray(w[b], np.float64)).max(
            axis=reduce, initial=0.0) for b in blocks])
        shape = [-1] + [1] * (w.ndim - 1)
    if bias is not None:
        max_abs = bias_safe_max_abs(max_abs, bias, input_scale)
    tiny = float(np.finfo(np.float32).tiny)
    scales = np.where(max_abs / 127.0 >= tiny, max_abs / 127.0, 1.0).astype(np.float32)
    divisor = scales.astype(np.float64).reshape(shape)
    q = np.empty(w.shape, np.int8)
    for b in blocks:
        d = divisor if axis is None else divisor[b]
        q[b] = np.clip(round_half_away(np.asarray(w[b], np.float64) / d), -127, 127
                       ).astype(np.int8)
    params = QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)
    return q, params


def quantize_bias(bias: np.ndarray, input_scale: float, weight_scales: tuple[float, ...],
                  bits: int = 32) -> tuple[np.ndarray, QuantParams]:
    """int32 (int64 with ``bits=64``, the 16x8 spec) bias with scale s_in * s_w[c]: per
    channel (axis 0) when the weights are."""
    scales = (np.float32(input_scale) * np.asarray(weight_scales, np.float32)).astype(np.float32)
    q = bias_real_quotient(bias, scales)
    limit = float(2 ** (bits - 1))
    q = np.clip(q, -limit, limit - 1 if bits == 32 else limit - 1024)
    q = q.astype(np.int32 if bits == 32 else np.int64)
    axis = 0 if len(scales) > 1 else None
    return q, QuantParams(tuple(float(s) for s in scales), (0,) * len(scales), axis)


def bias_real_quotient(bias: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``round(b / scale)`` before saturation to int32 (float64)."""
    return round_half_away(np.asarray(bias, np.float64) / np.asarray(scales, np.float32
                                                                       ).astype(np.float64))


def saturated_biases(bias: np.ndarray, input_scale: float, weight_scales: tuple[float, ...]
                     ) -> int:
    """How many biases ``quantize_bias`` would clamp to the int32 range."""
    scales = (np.float32(input_scale) * np.asarray(weight_scales, np.float32)).astype(np.float32)
    q = bias_real_quotient(bias, scales)
    return int(np.count_nonzero((q > INT32_MAX) | (q < -(2**31))))


def quantize_array(x: np.ndarray, params: QuantParams, dtype: type = np.int8) -> np.ndarray:
    """Per-tensor affine quantization with round-half-away and saturation."""
    info = np.iinfo(dtype)
    q = round_half_away(np.asarray(x, np.float64) / params.scale[0]) + params.zero_point[0]
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_array(q: np.ndarray, params: QuantParams, axis: int | None = None) -> np.ndarray:
    scale = np.asarray(params.scale, np.float32)
    zero = np.asarray(params.zero_point, np.int64)
    if params.axis is not None:
        shape = [1] * q.ndim
        shape[params.axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q.astype(np.int64) - zero) * scale).astype(np.float32)
