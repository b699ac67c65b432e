"""The integer kernels by TFLite builtin name, with keyword quantization parameters.

A numpy reference of int8 TFLite operators (the TFLite-Micro oracle): for the same int8
``.tflite``, these functions produce the bytes TFLite-Micro's reference kernels produce.
Each one builds the op's parameter record from the float32 scales (as TFLite-Micro's
``Prepare`` does; see the family modules for the maths) and runs its kernel. Arguments are
numpy arrays plus keyword quantization parameters (``*_scale`` as stored in the
flatbuffer, ``*_zero_point``) and the op's options; ``padding`` is "SAME" or "VALID".

TFLite-Micro has no int8 kernel for RELU_N1_TO_1, RELU_0_TO_1, EXP, SQRT or NEG; fused
RELU_N1_TO_1 on CONV/FC/ADD/... is supported (it only changes the clamp range).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from microlith.quant import activation as act
from microlith.quant import conv, data, elementwise, pool
from microlith.quant.arith import activation_range, f32, spatial_geometry

Pair = tuple[int, int]

__all__ = ["INT8_KERNELS", "TFLM_MISSING_INT8", "activation_range"]


def conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *, x_scale: float,
            x_zero_point: int, w_scales: Sequence[float], y_scale: float, y_zero_point: int,
            stride: Pair = (1, 1), dilation: Pair = (1, 1), padding: str = "SAME",
            activation: str = "NONE") -> np.ndarray:
    """CONV_2D: NHWC int8 ``x``, OHWI int8 ``w`` (grouped when ``I < C_in``), int32 bias."""
    out, pad = spatial_geometry(padding, x.shape[1:3], w.shape[1:3], stride, dilation)
    p = conv.conv_params(x.shape, w, bias, x_scale=x_scale, x_zp=x_zero_point,
                         w_scales=w_scales, y_scale=y_scale, y_zp=y_zero_point, out_hw=out,
                         stride=stride, dilation=dilation, pad=pad, activation=activation,
                         depthwise=False)
    return conv.run_conv(p, [x, w, bias])[0]


def depthwise_conv_2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *,
                      x_scale: float, x_zero_point: int, w_scales: Sequence[float],
                      y_scale: float, y_zero_point: int, depth_multiplier: int = 1,
                      stride: Pair = (1, 1), dilation: Pair = (1, 1), padding: str = "SAME",
                      activation: str = "NONE") -> np.ndarray:
    """DEPTHWISE_CONV_2D: filter ``[1, KH, KW, C*M]``; output channel ``c*M + m`` reads ``c``."""
    if w.shape[3] != x.shape[3] * depth_multiplier:
        raise ValueError(f"depthwise: {w.shape[3]} output channels != {x.shape[3]} x "
                         f"{depth_multiplier}")
    out, pad = spatial_geometry(padding, x.shape[1:3], w.shape[1:3], stride, dilation)
    p = conv.conv_params(x.shape, w, bias, x_scale=x_scale, x_zp=x_zero_point,
                         w_scales=w_scales, y_scale=y_scale, y_zp=y_zero_point, out_hw=out,
                         stride=stride, dilation=dilation, pad=pad, activation=activation,
                         depthwise=True)
    return conv.run_conv(p, [x, w, bias])[0]


def fully_connected(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *, x_scale: float,
                    x_zero_point: int, w_scales: Sequence[float], y_scale: float,
                    y_zero_point: int, w_zero_point: int = 0, activation: str = "NONE",
                    keep_num_dims: bool = False, bias_scale: float | None = None) -> np.ndarray:
    """FULLY_CONNECTED: ``w`` is ``[out, depth]``; ``x`` is read as ``[-1, depth]``.

    Per-tensor weights (one scale) honour the weight zero point; per-channel weights
    ignore it. With ``bias_scale``, TFLite's Prepare check ``|s_x s_w - s_b| / s_y <= 0.02``
    is applied (per-tensor only, ``ValueError`` if not).
    """
    if bias_scale is not None and bias is not None and len(w_scales) == 1:
        product = float(f32(x_scale)) * float(f32(w_scales[0]))
        if abs(product - float(f32(bias_scale))) / float(f32(y_scale)) > 0.02:
            raise ValueError("fully_connected: bias scale differs from s_x*s_w (TFLM refuses)")
    p = conv.fully_connected_params(w, bias, x_scale=x_scale, x_zp=x_zero_point,
                                    w_scales=w_scales, w_zp=w_zero_point, y_scale=y_scale,
                                    y_zp=y_zero_point, activation=activation,
                                    keep_num_dims=keep_num_dims)
    return conv.run_fully_connected(p, [x, w, bias])[0]


def _pool(x: np.ndarray, is_max: bool, filter_hw: Pair, stride: Pair, padding: str,
          y_scale: float, y_zero_point: int, activation: str) -> np.ndarray:
    out, pad = spatial_geometry(padding, x.shape[1:3], filter_hw, stride)
    p = pool.pool_params(x.shape, out, filter_hw, stride, pad, is_max=is_max,
                         count_border=False, x_zp=0, y_scale=y_scale, y_zp=y_zero_point,
                         activation=activation)
    return pool.run_pool(p, [x])[0]


def average_pool_2d(x: np.ndarray, *, filter_hw: Pair, stride: Pair, padding: str = "VALID",
                    y_scale: float, y_zero_point: int, activation: str = "NONE") -> np.ndarray:
    """AVERAGE_POOL_2D (int8, input quantization == output quantization)."""
    return _pool(x, False, filter_hw, stride, padding, y_scale, y_zero_point, activation)


def max_pool_2d(x: np.ndarray, *, filter_hw: Pair, stride: Pair, padding: str = "VALID",
                y_scale: float, y_zero_point: int, activation: str = "NONE") -> np.ndarray:
    """MAX_POOL_2D (int8, input quantization == output quantization)."""
    return _pool(x, True, filter_hw, stride, padding, y_scale, y_zero_point, activation)


def mean(x: np.ndarray, axes: Sequence[int], *, keep_dims: bool, x_scale: float,
         x_zero_point: int, y_scale: float, y_zero_point: int) -> np.ndarray:
    """MEAN (int8): integer sum over ``axes``, ``1/n`` folded into the output multiplier."""
    p = pool.mean_params(x.shape, axes, keep_dims=keep_dims, x_scale=x_scale,
                         x_zp=x_zero_point, y_scale=y_scale, y_zp=y_zero_point)
    return pool.run_mean(p, [x])[0]


def add(a: np.ndarray, b: np.ndarray, *, a_scale: float, a_zero_point: int, b_scale: float,
        b_zero_point: int, y_scale: float, y_zero_point: int, activation: str = "NONE"
        ) -> np.ndarray:
    """ADD (int8, broadcasting): both inputs rescaled to ``2 max(s_a, s_b) / 2**20``."""
    p = elementwise.add_sub_params(1, a_scale=a_scale, a_zp=a_zero_point, b_scale=b_scale,
                                   b_zp=b_zero_point, y_scale=y_scale, y_zp=y_zero_point,
                                   activation=activation)
    return elementwise.run_add_sub(p, [a, b])[0]


def sub(a: np.ndarray, b: np.ndarray, *, a_scale: float, a_zero_point: int, b_scale: float,
        b_zero_point: int, y_scale: float, y_zero_point: int, activation: str = "NONE"
        ) -> np.ndarray:
    """SUB (int8, broadcasting): as ADD with ``a' - b'``."""
    p = elementwise.add_sub_params(-1, a_scale=a_scale, a_zp=a_zero_point, b_scale=b_scale,
                                   b_zp=b_zero_point, y_scale=y_scale, y_zp=y_zero_point,
                                   activation=activation)
    return elementwise.run_add_sub(p, [a, b])[0]


def mul(a: np.ndarray, b: np.ndarray, *, a_scale: float, a_zero_point: int, b_scale: float,
        b_zero_point: int, y_scale: float, y_zero_point: int, activation: str = "NONE"
        ) -> np.ndarray:
    """MUL (int8, broadcasting): one multiplier ``s_a s_b / s_y`` on the centred product."""
    p = elementwise.mul_params(a_scale=a_scale, a_zp=a_zero_point, b_scale=b_scale,
                               b_zp=b_zero_point, y_scale=y_scale, y_zp=y_zero_point,
                               activation=activation)
    return elementwise.run_mul(p, [a, b])[0]


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return elementwise.run_extremum(elementwise.ExtremumParams(1), [a, b])[0]


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return elementwise.run_extremum(elementwise.ExtremumParams(0), [a, b])[0]


def softmax(x: np.ndarray, *, beta: float, x_scale: float, y_scale: float = 1.0 / 256.0,
            y_zero_point: int = -128) -> np.ndarray:
    """SOFTMAX over the last axis, int8 -> int8 (output quantization fixed to 1/256, -128)."""
    p = act.softmax_params(beta=beta, x_scale=x_scale, y_scale=y_scale, y_zp=y_zero_point)
    return act.run_softmax(p, [x])[0]


def logistic(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """LOGISTIC (int8); the output is implicitly quantized with scale 1/256, zero point -128."""
    return act.run_sigmoid(act.sigmoid_params(x_scale=x_scale, x_zp=x_zero_point,
                                              is_tanh=False), [x])[0]


def tanh(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """TANH (int8); the output is implicitly quantized with scale 1/128, zero point 0."""
    return act.run_sigmoid(act.sigmoid_params(x_scale=x_scale, x_zp=x_zero_point,
                                              is_tanh=True), [x])[0]


def hard_swish(x: np.ndarray, *, x_scale: float, x_zero_point: int, y_scale: float,
               y_zero_point: int) -> np.ndarray:
    """HARD_SWISH (int8): ``x relu6(x + 3) / 6`` in TFLite's int16 fixed point."""
    p = act.hard_swish_params(x_scale=x_scale, x_zp=x_zero_point, y_scale=y_scale,
                              y_zp=y_zero_point)
    return act.run_hard_swish(p, [x])[0]


def leaky_relu(x: np.ndarray, *, alpha: float, x_scale: float, x_zero_point: int,
               y_scale: float, y_zero_point: int) -> np.ndarray:
    """LEAKY_RELU (int8): separate multipliers for the identity and the alpha branch."""
    p = act.leaky_relu_params(alpha=alpha, x_scale=x_scale, x_zp=x_zero_point,
                              y_scale=y_scale, y_zp=y_zero_point)
    return act.run_leaky_relu(p, [x])[0]


def relu(x: np.ndarray, *, x_scale: float, x_zero_point: int, y_scale: float,
         y_zero_point: int) -> np.ndarray:
    """RELU (int8): requantize ``x`` to the output and clamp below at the output zero point."""
    p = act.relu_params(x_scale=x_scale, x_zp=x_zero_point, y_scale=y_scale, y_zp=y_zero_point)
    return act.run_relu(p, [x])[0]


def relu6(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """RELU6 (int8, TFLite-Micro): clamp to ``[z_x, z_x + round(6 / s_x)]`` on the input scale."""
    return act.run_clamp(act.relu6_params(x_scale=x_scale, x_zp=x_zero_point), [x])[0]


def pad(x: np.ndarray, paddings: Sequence[Sequence[int]], *, y_zero_point: int,
        constant: int | None = None) -> np.ndarray:
    """PAD / PADV2: ``paddings[d] = (before, after)``, filled with ``constant`` or ``z_y``."""
    widths = tuple((int(p[0]), int(p[1])) for p in paddings)
    fill = int(y_zero_point) if constant is None else int(constant)
    return data.run_pad(data.PadParams(widths, fill), [np.asarray(x, np.int8)])[0]


def concatenation(inputs: Sequence[np.ndarray], axis: int) -> np.ndarray:
    """CONCATENATION (int8; all inputs share the output quantization in TFLite-Micro)."""
    return data.run_concatenation(data.AxisParams(axis), [np.asarray(t, np.int8)
                                                          for t in inputs])[0]


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """RESHAPE (bytes unchanged)."""
    return np.asarray(x).reshape(tuple(int(d) for d in shape))


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """TRANSPOSE: ``y = x.transpose(perm)``."""
    return data.run_transpose(data.AxisParams(0, tuple(int(p) for p in perm)), [x])[0]


def quantize(x: np.ndarray, *, y_scale: float, y_zero_point: int, x_scale: float | None = None,
             x_zero_point: int = 0, out_dtype: type = np.int8) -> np.ndarray:
    """QUANTIZE: float -> int (affine, float32 math) or int -> int (requantize: ``x_scale``)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) and x_scale is None:
        raise ValueError("quantize: an integer input needs x_scale (requantization)")
    p = data.quantize_params(y_scale=y_scale, y_zp=y_zero_point, dtype=out_dtype,
                             x_scale=None if np.issubdtype(x.dtype, np.floating) else x_scale,
                             x_zp=x_zero_point)
    return data.run_quantize(p, [x])[0]


def dequantize(x: np.ndarray, *, x_scale: float, x_zero_point: int) -> np.ndarray:
    """DEQUANTIZE: ``float32(double(s) * (x - z))``."""
    return data.run_dequantize(data.DequantizeParams(float(x_scale), int(x_zero_point), None),
                               [x])[0]


INT8_KERNELS: dict[str, Callable[..., object]] = {
    "CONV_2D": conv_2d, "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "FULLY_CONNECTED": fully_connected, "AVERAGE_POOL_2D": average_pool_2d,
    "MAX_POOL_2D": max_pool_2d, "MEAN": mean, "ADD": add, "SUB": sub, "MUL": mul,
    "MAXIMUM": maximum, "MINIMUM": minimum, "SOFTMAX": softmax, "LOGISTIC": logistic,
    "TANH": tanh, "HARD_SWISH": hard_swish, "LEAKY_RELU": leaky_relu, "RELU": relu,
    "RELU6": relu6, "PAD": pad, "PADV2": pad, "CONCATENATION": concatenation,
    "RESHAPE": reshape, "TRANSPOSE": transpose, "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
}

#: Operators TFLite-Micro cannot run on int8 tensors (no kernel / no int8 path).
TFLM_MISSING_INT8 = ("RELU_N1_TO_1", "RELU_0_TO_1", "EXP", "SQRT", "NEG")
