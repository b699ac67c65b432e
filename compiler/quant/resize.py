"""Integer RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR, bit-exact with TFLite-Micro.

Both keep the input's quantization. Nearest copies the int8 value at TFLite's source
index (``microlith.ops.resize.tflite_nearest``). Bilinear (``ResizeBilinearInteger``): per
axis ``t10 = (2**10 in + out // 2) // out`` (align_corners: ``(2**10 (in - 1) + (out - 1)
// 2) // (out - 1)``), ``v = o t10`` (half pixel: ``o t10 + t10 // 2 - 2**9``), ``lo =
max(v / 2**10, 0)`` and ``hi = min(ceil(v / 2**10), in - 1)`` (C division), weight ``d = v -
2**10 lo``; the four taps sum in int64 to ``acc`` (weights ``(2**10 - d_y)(2**10 - d_x)``
...), ``y = (acc + sign(acc) 2**19) / 2**20`` truncated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import need
from microlith.quant.registry import integer_op


@dataclass(frozen=True, eq=False)
class ResizeParams:
    bilinear: int
    rows: tuple[tuple[int, int, int], ...]  # per output row: (lo, hi, d) (nearest: d = 0)
    cols: tuple[tuple[int, int, int], ...]


def _c_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def integer_taps(out: int, size: int, align: bool, half: bool) -> tuple[tuple[int, int, int], ...]:
    if align and out > 1:
        t10 = ((1 << 10) * (size - 1) + (out - 1) // 2) // (out - 1)
    else:
        t10 = ((1 << 10) * size + out // 2) // out
    taps = []
    for o in range(out):
        v = o * t10 + t10 // 2 - (1 << 9) if half else o * t10
        lo = max(_c_div(v, 1 << 10), 0)
        hi = min(_c_div(v + (1 << 10) - 1, 1 << 10), size - 1)
        taps.append((lo, hi, v - (1 << 10) * lo))
    return tuple(taps)


def _prepare_resize(node: Node) -> ResizeParams:
    from microlith.ops.resize import tfl_size, tflite_nearest

    x = node.arg(0)
    align, half = bool(node.attr("align_corners")), bool(node.attr("half_pixel_centers"))
    out_h, out_w = tfl_size(node)
    if node.op == "tfl.resize_bilinear":
        return ResizeParams(1, integer_taps(out_h, x.shape[1], align, half),
                            integer_taps(out_w, x.shape[2], align, half))
    rows = tuple((int(i), int(i), 0) for i in tflite_nearest(out_h, x.shape[1], align, half))
    cols = tuple((int(i), int(i), 0) for i in tflite_nearest(out_w, x.shape[2], align, half))
    return ResizeParams(0, rows, cols)


@integer_op("tfl.resize_nearest_neighbor", "tfl.resize_bilinear", prepare=_prepare_resize)
def run_resize(p: ResizeParams, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = np.asarray(need(args, 0))
    r, c = np.asarray(p.rows, np.int64), np.asarray(p.cols, np.int64)
    if not p.bilinear:
        return [np.ascontiguousarray(x[:, r[:, 0]][:, :, c[:, 0]])]
    v = x.astype(np.int64)
    one = 1 << 10
    dy = r[:, 2].reshape(1, -1, 1, 1)
    dx = c[:, 2].reshape(1, 1, -1, 1)
    top, bottom = v[:, r[:, 0]], v[:, r[:, 1]]
    acc = (top[:, :, c[:, 0]] * (one - dy) * (one - dx) + bottom[:, :, c[:, 0]] * dy * (one - dx)
           + top[:, :, c[:, 1]] * (one - dy) * dx + bottom[:, :, c[:, 1]] * dy * dx)
    rounded = acc + np.where(acc > 0, 1 << 19, -(1 << 19))
    y = np.sign(rounded) * (np.abs(rounded) >> 20)
    return [y.astype(np.int8)]
