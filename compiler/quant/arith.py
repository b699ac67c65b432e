"""Helpers shared by the int8 TFLite kernels: float32 arithmetic, activation ranges, padding.

TFLite-Micro derives its integer parameters in ``Prepare`` from the float32 scales of
the flatbuffer, sometimes in float32 and sometimes in double arithmetic; ``f32`` rounds a
Python float to float32 so that a computation can be replayed in the same precision.

Fused activation ``act`` on an output ``(scale s, zero point z)`` clamps to
``[max(-128, z + round(lo / s)), min(127, z + round(hi / s))]`` with ``(lo, hi)`` =
``(0, inf)`` for RELU, ``(0, 6)`` for RELU6 and ``(-1, 1)`` for RELU_N1_TO_1; the
division and the rounding (half away from zero) happen in float32, as in
``CalculateActivationRangeQuantized``.

SAME/VALID padding follows ``ComputePaddingHeightWidth``: the output size is
``ceil(in / stride)`` (SAME) or ``ceil((in - (k - 1) d) / stride)`` (VALID), the total
padding ``max(0, (out - 1) stride + (k - 1) d + 1 - in)`` and the leading padding is its
floor half.
"""

from __future__ import annotations

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def f32(x: float) -> np.float32:
    """``x`` rounded to float32 (the precision of flatbuffer scales and float C math)."""
    return np.float32(x)


def round_half_away_f(x: np.ndarray | float) -> np.ndarray:
    """``std::round`` of float32/float64 values (ties away from zero), returned as float64."""
    v = np.asarray(x, dtype=np.float64)
    return np.copysign(np.floor(np.abs(v) + 0.5), v)


def float_to_int32(x: np.ndarray | float) -> np.ndarray:
    """``static_cast<int32_t>`` of rounded floats as x86 does it (out of range/NaN -> -2**31)."""
    v = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(v) & (v >= -(2.0**31)) & (v < 2.0**31)
    return np.where(ok, np.where(ok, v, 0).astype(np.int64), -(1 << 31))


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for a fused activation on an int8 output."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unsupported fused activation {activation!r} for an int8 kernel")

    def quantize(value: float) -> int:
        q = round_half_away_f(np.float32(value) / f32(scale))
        return int(zero_point) + int(q)

    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    return qmin, qmax


def clamp_to_int8(y: np.ndarray, lo: int = INT8_MIN, hi: int = INT8_MAX) -> np.ndarray:
    """``min(max(y, lo), hi)`` as an int8 array."""
    return np.clip(y, lo, hi).astype(np.int8)


def output_size(padding: str, size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Output extent of one spatial axis (``ComputeOutSizeChecked``)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    if padding == "VALID":
        return (size + stride - effective) // stride
    raise ValueError(f"unknown padding {padding!r}")


def leading_pad(padding: str, size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Padding before the first element of one spatial axis (``ComputePaddingWithOffset``)."""
    out = output_size(padding, size, kernel, stride, dilation)
    total = (out - 1) * stride + (kernel - 1) * dilation + 1 - size
    return max(total, 0) // 2


def spatial_geometry(
    padding: str,
    in_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride_hw: tuple[int, int],
    dilation_hw: tuple[int, int] = (1, 1),
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((out_h, out_w), (pad_top, pad_left))`` of a 2-D window op."""
    out = tuple(
        output_size(padding, n, k, s, d)
        for n, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw, strict=True)
    )
    pad = tuple(
        leading_pad(padding, n, k, s, d)
        for n, k, s, d in zip(in_hw, kernel_hw, stride_hw, dilation_hw, strict=True)
    )
    if min(out) <= 0:
        raise ValueError(f"window op produces an empty output {out} for input {in_hw}")
    return out, pad  # type: ignore[return-value]


def as_int(x: np.ndarray) -> np.ndarray:
    """An int64 copy of an integer tensor (the carrier of all kernel arithmetic)."""
    return np.asarray(x).astype(np.int64)
