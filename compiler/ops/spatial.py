"""Float arithmetic shared by the convolution and pooling families (NHWC, explicit pads).

For an input ``x`` padded by ``pads = (top, left, bottom, right)`` the convolution is

    y[n, oh, ow, o] = b[o] + sum_{i, j, c} x[n, oh*sh + i*dh, ow*sw + j*dw, g*Cg + c]
                                          * W[o, i, j, c],   g = o // (O / group)

with ``OH = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``. It is evaluated as
im2col + one matrix product per group (batched over groups with ``np.matmul``);
depthwise convolutions (one input channel per group) accumulate ``KH*KW`` shifted
products instead. The im2col matrix is built for a chunk of the batch at a time so
its size stays bounded when calibration runs thousands of samples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microlith.ir.core import Node
from microlith.ops.common import conv_output_size, spatial_axes

#: Upper bound on the bytes of one im2col buffer (the batch is chunked to fit).
IM2COL_BUDGET = 64 << 20

Pads = tuple[int, int, int, int]


def to_nhwc(x: np.ndarray, layout: str) -> np.ndarray:
    """A (possibly strided) NHWC view of a 4-D tensor in ``layout``."""
    if x.ndim != 4:
        raise ValueError(f"expects a 4-D input, got shape {x.shape}")
    spatial_axes(layout)  # validates the layout name
    return x.transpose(0, 2, 3, 1) if layout == "NCHW" else x


def from_nhwc(y: np.ndarray, layout: str) -> np.ndarray:
    """``y`` (NHWC) converted to ``layout``, contiguous."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2) if layout == "NCHW" else y)


def pair(values: Sequence[int], name: str) -> tuple[int, int]:
    a, b = (int(v) for v in values)
    if name != "pads" and (a <= 0 or b <= 0):
        raise ValueError(f"{name} must be positive, got {tuple(values)}")
    return a, b


def node_pads(node: Node, attr: str = "pads") -> Pads:
    top, left, bottom, right = (int(p) for p in node.attr(attr, (0, 0, 0, 0)))
    if min(top, left, bottom, right) < 0:
        raise ValueError(f"negative pads {(top, left, bottom, right)} are not supported")
    return top, left, bottom, right


def pad_nhwc(x: np.ndarray, pads: Pads, value: float) -> np.ndarray:
    """``x`` padded spatially with ``value``; ``x`` itself when the pads are zero."""
    top, left, bottom, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def windows(xp: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Read-only view ``[N, OH, OW, KH, KW, C]`` of padded NHWC ``xp``.

    ``view[n, oh, ow, i, j, c] = xp[n, oh*sh + i*dh, ow*sw + j*dw, c]``.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, out_hw
    s0, s1, s2, s3 = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(xp.shape[0], oh, ow, kh, kw, xp.shape[3]),
        strides=(s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3), writeable=False)


def out_hw(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
           dilations: tuple[int, int], pads: Pads) -> tuple[int, int]:
    top, left, bottom, right = pads
    return (conv_output_size(x.shape[1], kernel[0], strides[0], dilations[0], top, bottom),
            conv_output_size(x.shape[2], kernel[1], strides[1], dilations[1], left, right))


def conv2d_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                strides: tuple[int, int], dilations: tuple[int, int],
                pads: Pads, group: int) -> np.ndarray:
    """Grouped 2-D convolution of NHWC ``x`` with OHWI ``w`` (see the module docstring)."""
    n, _, _, c = x.shape
    o, kh, kw, cg = w.shape
    if group <= 0 or c != cg * group or o % group:
        raise ValueError(f"input channels {c} and weights {w.shape} do not fit group {group}")
    dtype = np.result_type(x, w)
    oh, ow = out_hw(x, (kh, kw), strides, dilations, pads)
    xp = pad_nhwc(x, pads, 0)
    og = o // group
    y = np.empty((n, oh, ow, o), dtype=dtype)
    if cg == 1:  # depthwise (with channel multiplier og): sum of KH*KW shifted products
        win = windows(xp, (kh, kw), strides, dilations, (oh, ow))
        taps = w.reshape(group, og, kh, kw).transpose(2, 3, 0, 1)  # [KH, KW, C, M]
        acc = np.zeros((n, oh, ow, group, og), dtype=dtype)
        for i in range(kh):
            for j in range(kw):
                acc += win[:, :, :, i, j, :, None] * taps[i, j]
        y[...] = acc.reshape(n, oh, ow, o)
    else:
        k = kh * kw * cg
        w_mat = w.reshape(group, og, k).transpose(0, 2, 1)  # [G, K, OG]
        chunk = max(1, IM2COL_BUDGET // max(1, oh * ow * kh * kw * c * dtype.itemsize))
        for start in range(0, n, chunk):
            part = xp[start:start + chunk]
            rows = part.shape[0] * oh * ow
            win = windows(part, (kh, kw), strides, dilations, (oh, ow))
            if group == 1:
                res = win.reshape(rows, k) @ w_mat[0]
            else:
                cols = win.reshape(rows, kh, kw, group, cg).transpose(3, 0, 1, 2, 4)
                res = np.matmul(cols.reshape(group, rows, k), w_mat)  # [G, rows, OG]
                res = res.transpose(1, 0, 2)
            y[start:start + chunk] = res.reshape(part.shape[0], oh, ow, o)
    if b is not None:
        y += b.astype(dtype, copy=False)
    return y


def conv_transpose2d_nhwc(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                          strides: tuple[int, int], dilations: tuple[int, int],
                          pads: Pads, output_padding: tuple[int, int],
                          group: int) -> np.ndarray:
    """Transposed convolution of NHWC ``x`` with ONNX weights ``[C_in, C_out/group, KH, KW]``.

    Every input pixel scatters ``x[n, h, w, :] @ W`` into the full output at
    ``(h*sh + i*dh, w*sw + j*dw)``; the full output (plus ``output_padding`` at the
    end) is then cropped by ``pads``, giving ``OH = sh*(H-1) + oph + dh*(KH-1) + 1 -
    top - bottom``.
    """
    n, h, wd, c = x.shape
    cin, og, kh, kw = w.shape
    if group <= 0 or c != cin or c % group:
        raise ValueError(f"input channels {c} and weights {w.shape} do not fit group {group}")
    (sh, sw), (dh, dw), (oph, opw) = strides, dilations, output_padding
    top, left, bottom, right = pads
    cg, o = c // group, og * group
    dtype = np.result_type(x, w)
    # cols[n, h, w, i, j, g*OG + q] = sum_c x[n, h, w, g*Cg + c] * W[g*Cg + c, q, i, j]
    xg = x.reshape(n * h * wd, group, cg).transpose(1, 0, 2)
    wg = w.reshape(group, cg, og, kh, kw).transpose(0, 1, 3, 4, 2).reshape(group, cg, -1)
    cols = np.matmul(xg, wg).reshape(group, n, h, wd, kh, kw, og)
    cols = cols.transpose(1, 2, 3, 4, 5, 0, 6).reshape(n, h, wd, kh, kw, o)
    full_h = sh * (h - 1) + dh * (kh - 1) + 1 + oph
    full_w = sw * (wd - 1) + dw * (kw - 1) + 1 + opw
    full = np.zeros((n, full_h, full_w, o), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            full[:, i * dh:i * dh + sh * (h - 1) + 1:sh,
                 j * dw:j * dw + sw * (wd - 1) + 1:sw] += cols[:, :, :, i, j]
    if full_h - top - bottom <= 0 or full_w - left - right <= 0:
        raise ValueError(f"pads {pads} crop away the whole {full_h}x{full_w} output")
    y = full[:, top:full_h - bottom, left:full_w - right]
    if b is not None:
        y = y + b.astype(dtype, copy=False)
    return y


def max_pool_nhwc(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                  pads: Pads, dilations: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Window maximum of NHWC ``x``; padding counts as -inf (never selected)."""
    shape = out_hw(x, kernel, strides, dilations, pads)
    low = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    win = windows(pad_nhwc(x, pads, low), kernel, strides, dilations, shape)
    y = win[:, :, :, 0, 0].copy()
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            if i or j:
                np.maximum(y, win[:, :, :, i, j], out=y)
    return y


def average_pool_nhwc(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
                      pads: Pads, count_include_pad: bool,
                      dilations: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Window mean of NHWC ``x``: over ``KH*KW`` taps if ``count_include_pad``, else over the
    taps inside the image."""
    shape = out_hw(x, kernel, strides, dilations, pads)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)

    def window_sum(a: np.ndarray) -> np.ndarray:
        win = windows(pad_nhwc(a, pads, 0), kernel, strides, dilations, shape)
        total = np.zeros(win.shape[:3] + win.shape[5:], dtype=dtype)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                total += win[:, :, :, i, j]
        return total

    total = window_sum(x)
    if count_include_pad or not any(pads):
        count = np.asarray(kernel[0] * kernel[1], dtype=dtype)
    else:
        count = window_sum(np.ones((1, x.shape[1], x.shape[2], 1), dtype=dtype))
    return total / count
