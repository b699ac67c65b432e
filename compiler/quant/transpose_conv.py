"""Integer TRANSPOSE_CONV (VALID), bit-exact with TFLite-Micro.

Each input pixel ``(h, w)`` scatters ``(x - z_x) * W[o, fy, fx, i]`` into the int32
accumulator at ``(h s_h + fy, w s_w + fx, o)`` (the output shape is input 0; positions past
the full extent receive nothing); then per output channel
``y = clamp(z_y + MBQM(acc + bias[o], M[o]))`` with TFLite's per-channel convolution
multipliers ``QuantizeMultiplier(double(s_x) double(s_w[o]) / double(s_y))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import activation_range, as_int, clamp_to_int8
from microlith.quant.conv import channel_multipliers
from microlith.quant.nodes import activation, qparams, tensor_q
from microlith.quant.registry import integer_op


@dataclass(frozen=True, eq=False)
class TransposeConvParams:
    out_shape: tuple[int, int, int, int]
    stride_h: int
    stride_w: int
    x_zp: int
    y_zp: int
    act_min: int
    act_max: int
    weights: np.ndarray  # int8 [O, KH, KW, I]
    bias: np.ndarray  # int32 [O] (zeros when absent)
    mult: np.ndarray  # int32 [O]
    shift: np.ndarray  # int32 [O]


def _prepare(node: Node) -> TransposeConvParams:
    shape, w, x, y = node.const_input(0), node.arg(1), node.arg(2), node.output
    if shape is None or w.data is None:
        raise ValueError("the output shape and the weights must be constant")
    if node.attr("padding") != "VALID":
        raise ValueError("only VALID transposed convolution is supported")
    bias = node.input(3)
    out_c = w.shape[0]
    b = np.zeros(out_c, np.int32) if bias is None else np.asarray(bias.data, np.int32)
    (sx, zx), (sy, zy) = tensor_q(x), tensor_q(y)
    mult, shift = channel_multipliers(sx, qparams(w).scale, sy, out_c)
    lo, hi = activation_range(activation(node), sy, zy)
    dims = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    return TransposeConvParams((dims[0], dims[1], dims[2], dims[3]), int(node.attr("stride_h")),
                               int(node.attr("stride_w")), zx, zy, lo, hi,
                               np.asarray(w.data, np.int8), b, mult, shift)


@integer_op("tfl.transpose_conv", prepare=_prepare)
def run_transpose_conv(p: TransposeConvParams, args: list[np.ndarray | None]
                       ) -> list[np.ndarray]:
    x = as_int(need(args, 2)) - p.x_zp
    n, h, w, _ = x.shape
    _, out_h, out_w, out_c = p.out_shape
    _, kh, kw, _ = p.weights.shape
    acc = np.zeros((n, out_h, out_w, out_c), np.int64)
    weights = p.weights.astype(np.int64)
    for fy in range(kh):
        rows = np.arange(h) * p.stride_h + fy
        keep_r = rows < out_h
        for fx in range(kw):
            cols = np.arange(w) * p.stride_w + fx
            keep_c = cols < out_w
            part = np.einsum("nhwi,oi->nhwo", x[:, keep_r][:, :, keep_c], weights[:, fy, fx, :])
            acc[:, rows[keep_r][:, None], cols[keep_c][None, :], :] += part
    total = fp.wrap_int32(fp.wrap_int32(acc) + p.bias)
    y = fp.multiply_by_quantized_multiplier(total, p.mult, p.shift) + p.y_zp
    return [clamp_to_int8(y, p.act_min, p.act_max)]
