"""Integer QUANTIZE / DEQUANTIZE and data movement (PAD, CONCATENATION, RESHAPE, TRANSPOSE,
SPLIT, SPLIT_V), bit-exact with TFLite-Micro.

QUANTIZE float -> int: ``clamp(int32(round(x / float(s_y))) + z_y)`` in float32 (ties away
from zero; an out-of-range float converts to -2**31 as on x86). QUANTIZE int -> int
(requantize): ``clamp(z_y + MBQM(x - z_x, double(s_x) / double(s_y)))``. DEQUANTIZE:
``float32(double(s) (x - z))`` (per axis for weights read by a float op).
Data movement copies integers unchanged (TFLite-Micro requires equal quantization); PAD
fills with the output zero point, PADV2 with its constant input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ir.types import QuantParams
from microlith.ops.common import need
from microlith.quant import fixed_point as fp
from microlith.quant.arith import as_int, f32, float_to_int32, round_half_away_f
from microlith.quant.nodes import qparams, tensor_q
from microlith.quant.params import dequantize_array
from microlith.quant.registry import integer_op

RANGES = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(np.int32): (fp.INT32_MIN, fp.INT32_MAX),
    np.dtype(np.uint8): (0, 255),
}


@dataclass(frozen=True, eq=False)
class QuantizeParams:
    requantize: int  # 0: float input; 1: integer input
    y_scale: float  # the float32 scale (float input)
    x_zp: int
    mult: int  # requantize: QuantizeMultiplier(s_x / s_y)
    shift: int
    y_zp: int
    qmin: int
    qmax: int
    dtype: str  # numpy name of the output


@dataclass(frozen=True, eq=False)
class DequantizeParams:
    scale: float
    zp: int
    per_axis: QuantParams | None  # weights feeding a float op


@dataclass(frozen=True, eq=False)
class PadParams:
    paddings: tuple[tuple[int, int], ...]
    fill: int


@dataclass(frozen=True, eq=False)
class ShapeParams:
    """RESHAPE: typed input and output shapes (a leading batch of samples is kept)."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class AxisParams:
    """CONCATENATION / SPLIT / SPLIT_V along ``axis``; TRANSPOSE by ``perm``."""

    axis: int
    perm: tuple[int, ...] = ()
    parts: int = 0
    sizes: tuple[int, ...] = ()  # SPLIT_V: the size of each part along ``axis``


def quantize_params(*, y_scale: float, y_zp: int, dtype: np.dtype | type,
                    x_scale: float | None = None, x_zp: int = 0) -> QuantizeParams:
    dt = np.dtype(dtype)
    lo, hi = RANGES[dt]
    if x_scale is None:
        return QuantizeParams(0, float(f32(y_scale)), 0, 0, 0, int(y_zp), lo, hi, dt.name)
    m, s = fp.quantize_multiplier(float(f32(x_scale)) / float(f32(y_scale)))
    return QuantizeParams(1, float(f32(y_scale)), int(x_zp), m, s, int(y_zp), lo, hi, dt.name)


def run_quantize(p: QuantizeParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    if not p.requantize:
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError("quantize: an integer input needs x_scale (requantization)")
        with np.errstate(over="ignore", invalid="ignore"):  # inf/nan follow the C cast
            scaled = x.astype(np.float32) / f32(p.y_scale)
        q = fp.wrap_int32(float_to_int32(round_half_away_f(scaled)) + p.y_zp)
    else:
        q = fp.multiply_by_quantized_multiplier(as_int(x) - p.x_zp, p.mult, p.shift) + p.y_zp
    return [np.clip(q, p.qmin, p.qmax).astype(np.dtype(p.dtype))]


def _prepare_quantize(node: Node) -> QuantizeParams:
    source, y = node.arg(0), node.output
    sy, zy = tensor_q(y)
    if source is not None and source.quant is not None and not source.dtype.is_float:
        sx, zx = tensor_q(source)
        return quantize_params(y_scale=sy, y_zp=zy, dtype=y.dtype.numpy, x_scale=sx, x_zp=zx)
    return quantize_params(y_scale=sy, y_zp=zy, dtype=y.dtype.numpy)


integer_op("QuantizeLinear", "tfl.quantize", prepare=_prepare_quantize)(run_quantize)


def run_dequantize(p: DequantizeParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    if p.per_axis is not None:
        return [dequantize_array(need(args, 0), p.per_axis)]
    return [(float(f32(p.scale)) * (as_int(need(args, 0)) - p.zp).astype(np.float64)).astype(
        np.float32)]


def _prepare_dequantize(node: Node) -> DequantizeParams:
    q = qparams(node.arg(0))
    if q.axis is not None:
        return DequantizeParams(0.0, 0, q)
    return DequantizeParams(float(f32(q.scale[0])), int(q.zero_point[0]), None)


integer_op("DequantizeLinear", "tfl.dequantize", prepare=_prepare_dequantize)(run_dequantize)


def run_pad(p: PadParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    return [np.pad(x, [list(w) for w in p.paddings], constant_values=p.fill).astype(x.dtype)]


def _prepare_pad(node: Node) -> PadParams:
    from microlith.ops.tensor import tfl_paddings

    fill = tensor_q(node.output)[1]
    if node.op == "tfl.padv2":
        value = node.const_input(2)
        if value is None:
            raise ValueError("the PADV2 fill value must be a constant")
        fill = int(np.asarray(value).reshape(-1)[0])
    return PadParams(tuple(tfl_paddings(node)), fill)


integer_op("tfl.pad", "tfl.padv2", prepare=_prepare_pad)(run_pad)


@integer_op("tfl.concatenation", prepare=lambda node: AxisParams(
    int(node.attr("axis")) % node.output.type.rank))
def run_concatenation(p: AxisParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [np.concatenate([np.asarray(a) for a in args if a is not None], axis=p.axis)]


def run_reshape(p: ShapeParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    out: Sequence[int] = p.out_shape
    if (x.ndim == len(p.in_shape) and x.ndim > 0 and len(out) > 0 and x.shape[0] != p.in_shape[0]
            and p.in_shape[0] == out[0] and x.shape[1:] == tuple(p.in_shape[1:])):
        out = (x.shape[0], *out[1:])  # a batch of samples run at once
    return [x.reshape(tuple(int(d) for d in out))]


integer_op("tfl.reshape", prepare=lambda node: ShapeParams(
    tuple(node.arg(0).shape), tuple(node.output.shape)))(run_reshape)


def _prepare_transpose(node: Node) -> AxisParams:
    perm = node.const_input(1)
    if perm is None:
        raise ValueError("the transpose permutation must be a constant")
    return AxisParams(0, tuple(int(p) for p in np.asarray(perm).reshape(-1)))


@integer_op("tfl.transpose", prepare=_prepare_transpose)
def run_transpose(p: AxisParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.transpose(np.asarray(need(args, 0)), p.perm))]


def _prepare_split(node: Node) -> AxisParams:
    axis = node.const_input(0)
    if axis is None:
        raise ValueError("the split axis must be a constant")
    rank = node.arg(1).type.rank
    return AxisParams(int(np.asarray(axis).reshape(-1)[0]) % rank,
                      parts=int(node.attr("num_splits")))


@integer_op("tfl.split", prepare=_prepare_split)
def run_split(p: AxisParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    parts = np.split(np.asarray(need(args, 1)), p.parts, axis=p.axis)
    return [np.ascontiguousarray(a) for a in parts]


def _prepare_split_v(node: Node) -> AxisParams:
    sizes, axis = node.const_input(1), node.const_input(2)
    if sizes is None or axis is None:
        raise ValueError("the split sizes and axis must be constants")
    rank = node.arg(0).type.rank
    parts = tuple(int(s) for s in np.asarray(sizes).reshape(-1))
    return AxisParams(int(np.asarray(axis).reshape(-1)[0]) % rank, parts=len(parts),
                      sizes=parts)


@integer_op("tfl.split_v", prepare=_prepare_split_v)
def run_split_v(p: AxisParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Copies of consecutive parts (the quantization is the input's: bytes only)."""
    bounds = np.cumsum(p.sizes)[:-1]
    parts = np.split(np.asarray(need(args, 0)), bounds, axis=p.axis)
    return [np.ascontiguousarray(a) for a in parts]
