"""Normalization: inference ``BatchNormalization`` (``fold-batchnorm`` removes it), ONNX
``LRN`` across channels and TFLite's ``tfl.local_response_normalization`` (float only:
TFLite-Micro has no LRN kernel)."""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Layout, define_op
from microlith.ops.common import Arrays, define_tfl, need, same_type


def _batch_normalization_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """(x - mean) / sqrt(var + epsilon) * scale + B, per channel.

    The channel axis is 1 in NCHW (any rank >= 2, as ONNX) and the last one in NHWC.
    """
    x = need(inputs, 0)
    scale, bias, mean, var = (need(inputs, i) for i in range(1, 5))
    axis = 1 if node.attr("layout") == "NCHW" else x.ndim - 1
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    eps = np.asarray(node.attr("epsilon"), dtype=var.dtype)
    inv = (scale / np.sqrt(var + eps)).reshape(shape)
    return [(x - mean.reshape(shape)) * inv + bias.reshape(shape)]


define_op("BatchNormalization", "inference batch norm: (x-mean)/sqrt(var+eps)*scale+B",
          infer=same_type, kernel=_batch_normalization_kernel, inputs=(5, 5),
          attrs={"epsilon": 1e-5}, layout=Layout.SPATIAL)


def _window_square_sum(x: np.ndarray, axis: int, below: int, above: int) -> np.ndarray:
    """sum of x[c'] ** 2 over c' in [c - below, c + above] along ``axis`` (clipped)."""
    sq = np.moveaxis(x.astype(np.float64) ** 2, axis, -1)
    padded = np.pad(sq, [(0, 0)] * (sq.ndim - 1) + [(below, above)])
    cumulative = np.concatenate([np.zeros((*sq.shape[:-1], 1)), np.cumsum(padded, -1)], -1)
    width = below + above + 1
    window = cumulative[..., width:] - cumulative[..., :-width]
    return np.moveaxis(window, -1, axis)


def _lrn_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """ONNX LRN: ``x / (bias + alpha / size * sum of x**2 over the channel window)**beta``;
    the window is ``floor((size - 1) / 2)`` channels below and ``ceil`` above."""
    x = need(inputs, 0)
    size = int(node.attr("size"))
    axis = 1 if node.attr("layout") == "NCHW" else x.ndim - 1
    sq = _window_square_sum(x, axis, (size - 1) // 2, size // 2)
    base = float(node.attr("bias")) + float(node.attr("alpha")) / size * sq
    return [(x / base ** float(node.attr("beta"))).astype(x.dtype)]


define_op("LRN", "local response normalization across channels", infer=same_type,
          kernel=_lrn_kernel, attrs={"alpha": 1e-4, "beta": 0.75, "bias": 1.0, "size": None},
          layout=Layout.SPATIAL)


def _tfl_lrn_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """TFLite: ``x / (bias + alpha * sum over [c - radius, c + radius])**beta``, last axis."""
    x = need(inputs, 0)
    radius = int(node.attr("radius"))
    sq = _window_square_sum(x, x.ndim - 1, radius, radius)
    base = float(node.attr("bias")) + float(node.attr("alpha")) * sq
    return [(x / base ** float(node.attr("beta"))).astype(x.dtype)]


define_tfl("LOCAL_RESPONSE_NORMALIZATION", "x / (bias + alpha * window sum of x**2)**beta",
           infer=same_type, kernel=_tfl_lrn_kernel)
