"""Normalization: inference ``BatchNormalization`` (``fold-batchnorm`` removes it)."""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Layout, define_op
from microlith.ops.common import Arrays, need, same_type


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
