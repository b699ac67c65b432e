"""C renderers: convolutions, fully connected, pooling, mean (see ``microlith.quant.conv`` and
``microlith.quant.pool`` for the maths; the records carry every parameter). TFLite's own
``tfl.conv_2d`` / ``tfl.*_pool_2d`` render too: their records hold SAME/VALID as pads.

Convolution kernels use the zero-point-folded bias for windows inside the image, exact
only while ``|bias| + 256 sum |w|`` stays below 2**31 (checked here).
"""

from __future__ import annotations

import math

import numpy as np

from microlith.backends.c.render_base import (
    INT32_LIMIT,
    Call,
    FieldValue,
    In,
    Out,
    Plan,
    Scratch,
    Table,
    contiguous_strides,
    int8_values,
    numel,
    renders,
    shift_in_range,
    shifts_in_range,
)
from microlith.ir.core import Node
from microlith.quant.conv import ConvParams, FullyConnectedParams
from microlith.quant.fixed_point import wrap_int32
from microlith.quant.pool import MeanParams, PoolParams


def _accumulator_fits(bound: int) -> None:
    if bound >= INT32_LIMIT:
        raise ValueError("the int32 accumulator could overflow (|bias| + 256 sum|w| >= 2**31)")


def requant_table(mult: np.ndarray, shift: np.ndarray, acc_bound: int, y_zp: int = 0
                  ) -> np.ndarray | None:
    """The DSP kernels' one-SMMLAR requantization constants ``[m2, half, r]`` per channel, or
    None when a channel does not fit it (the kernels then use the general MBQM); the result
    is ``y_zp + MBQM(a)``.

    For a multiplier ``m`` in ``[2^30, 2^31)`` and a right shift ``r = -shift >= 1``,
    ``MBQM(a) = RDBP(floor((a m + 2^30) / 2^31), r)`` (SRDHM for ``m >= 0``) and RDBP rounds
    half away from zero: ``floor((h + 2^(r-1) - [a < 0]) / 2^r)`` (``[h < 0]`` may be
    replaced by ``[a < 0]``: they differ only where ``h = 0``, and there both give 0). The two
    floors nest into one: ``floor((2 a m + 2^31 + d 2^32) / 2^(32+r))`` with
    ``d = 2^(r-1) + (a >> 31)``. With ``m2 = 2m - 2^32`` (an int32, as ``m >= 2^30``),
    ``2 a m = a m2 + a 2^32``, so the 64-bit value is ``a * m2`` added to
    ``hi = a + d, lo = 2^31``, whose high word is one SMMLAR (``(hi 2^32 + a m2 + 2^31) >> 32``),
    and the result is ``hi >> r``. Exact while ``h + d`` fits in
    int32: ``|h| <= |a| + 1 <= acc_bound + 1``. The output zero point rides in ``half``:
    ``(hi + y_zp 2^r) >> r = (hi >> r) + y_zp``, so ``half = 2^(r-1) + y_zp 2^r`` (the bound
    then has ``|y_zp| 2^r`` more). A multiplier of 0 (output ``y_zp``) is written as
    ``m = 2^30, r = 31`` when ``y_zp = 0``: ``|h| <= 2^29 + 1``, so the result is 0 too.
    """
    m = np.asarray(mult, np.int64).reshape(-1)
    s = np.asarray(shift, np.int64).reshape(-1)
    if m.size != s.size:
        m, s = np.broadcast_arrays(m, s)
    zero = m == 0
    m = np.where(zero, 1 << 30, m)
    r = np.where(zero, 31, -s)
    if np.any(m < 1 << 30) or np.any(m >= 1 << 31) or np.any(r < 1) or np.any(r > 31):
        return None
    if (zero.any() and y_zp) or abs(y_zp) > 128:
        return None
    half = (np.int64(1) << (r - 1)) + np.int64(y_zp) * (np.int64(1) << r)
    if acc_bound + 2 + int(np.abs(half).max()) >= INT32_LIMIT:
        return None
    rows = np.stack([m * 2 - (1 << 32), half, r], axis=1)
    return rows.astype(np.int32).reshape(-1)


def _tables(node: Node, p: ConvParams | FullyConnectedParams, with_bias: bool
            ) -> list[tuple[str, FieldValue]]:
    w = node.arg(1)
    tables: list[tuple[str, FieldValue]] = [("w", Table(w.name, np.asarray(w.data)))]
    if with_bias:
        tables.append(("bias", Table(f"{node.name}_bias", p.bias)))
    tables += [("bias_folded", Table(f"{node.name}_bias_folded", p.bias_folded)),
               ("mult", Table(f"{node.name}_mult", p.mult)),
               ("shift", Table(f"{node.name}_shift", shifts_in_range(p.shift)))]
    rq = requant_table(p.mult, p.shift, p.acc_bound, p.y_zp)
    if rq is not None:  # read only by the DSP kernels (NULL: the general MBQM)
        tables.append(("rq", Table(f"{node.name}_rq", rq)))
    return tables


@renders("c.conv_2d", "c.depthwise_conv_2d", "tfl.conv_2d", "tfl.depthwise_conv_2d")
def _conv(node: Node, p: ConvParams) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    int8_values(x, w, y)
    _accumulator_fits(p.acc_bound)
    Fields = list[tuple[str, FieldValue]]
    geometry: Fields = [("batches", x.shape[0]), ("in_h", p.in_h), ("in_w", p.in_w),
                        ("in_c", p.in_c), ("out_h", p.out_h), ("out_w", p.out_w)]
    window: Fields = [("k_h", p.k_h), ("k_w", p.k_w), ("stride_h", p.stride_h),
                      ("stride_w", p.stride_w), ("dil_h", p.dil_h), ("dil_w", p.dil_w),
                      ("pad_top", p.pad_top), ("pad_left", p.pad_left)]
    quant: Fields = [("x_zp", p.x_zp), ("y_zp", p.y_zp), ("act_min", p.act_min),
                     ("act_max", p.act_max)]
    text = (f"{p.k_h}x{p.k_w} stride {p.stride_h}x{p.stride_w} dilation {p.dil_h}x{p.dil_w} "
            f"pad {p.pad_top},{p.pad_left}, ")
    if p.depth_multiplier:
        fields = [*_tables(node, p, True), *geometry, ("depth_mult", p.depth_multiplier),
                  *window, *quant]
        scratch = ""
        if p.scratch_bytes:  # select-kernels{optimize=speed}: the DSP kernel's rows
            fields.append(("scratch", Scratch(p.scratch_bytes, "int16_t")))
            scratch = f", scratch {p.scratch_bytes} bytes"
        call = Call("mlk_depthwise_conv2d_i8", "mlk_depthwise_conv2d_params", tuple(fields),
                    (In(x), Out(y)))
        return Plan(f"depthwise {text}x{p.depth_multiplier}{scratch}", (call,))
    fields = [*_tables(node, p, True), *geometry, ("out_c", p.out_c), *window,
              ("groups", p.groups), *quant]
    scratch = ""
    if p.scratch_bytes:  # select-kernels{optimize=speed}: the DSP kernel's columns
        fields.append(("scratch", Scratch(p.scratch_bytes)))
        scratch = f", scratch {p.scratch_bytes} bytes"
    call = Call("mlk_conv2d_i8", "mlk_conv2d_params", tuple(fields), (In(x), Out(y)))
    return Plan(f"{text}{p.in_c}->{p.out_c} groups {p.groups}{scratch}", (call,))


@renders("tfl.fully_connected")
def _fully_connected(node: Node, p: FullyConnectedParams) -> Plan:
    x, w, y = node.arg(0), node.arg(1), node.output
    int8_values(x, w, y)
    if not w.is_constant or w.type.rank != 2:
        raise ValueError("fully-connected weights must be a constant [units, depth] tensor")
    if p.w_zp:
        raise ValueError("the C fully-connected kernel needs symmetric weights (zero point 0)")
    _accumulator_fits(p.acc_bound)
    fields = (*_tables(node, p, False), ("batches", numel(x) // p.depth), ("depth", p.depth),
              ("units", p.units), ("y_zp", p.y_zp), ("act_min", p.act_min),
              ("act_max", p.act_max))
    call = Call("mlk_fully_connected_i8", "mlk_fully_connected_params", fields, (In(x), Out(y)))
    return Plan(f"{p.depth}->{p.units}", (call,))


@renders("c.max_pool_2d", "c.average_pool_2d", "tfl.max_pool_2d", "tfl.average_pool_2d")
def _pool(node: Node, p: PoolParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    common = [("batches", x.shape[0]), ("in_h", p.in_h), ("in_w", p.in_w), ("ch", p.channels),
              ("out_h", p.out_h), ("out_w", p.out_w), ("k_h", p.k_h), ("k_w", p.k_w),
              ("stride_h", p.stride_h), ("stride_w", p.stride_w), ("pad_top", p.pad_top),
              ("pad_left", p.pad_left)]
    act = [("act_min", p.act_min), ("act_max", p.act_max)]
    mode = f"pad {p.pad_top},{p.pad_left}" + (", border counted" if p.count_border else "")
    text = f"{p.k_h}x{p.k_w} stride {p.stride_h}x{p.stride_w} {mode}"
    if p.is_max:
        return Plan(text, (Call("mlk_max_pool2d_i8", "mlk_max_pool2d_params",
                                tuple(common + act), (In(x), Out(y))),))
    fields = (*common, ("count_border", p.count_border), ("fill", p.x_zp), *act)
    return Plan(text, (Call("mlk_avg_pool2d_i8", "mlk_avg_pool2d_params", fields,
                            (In(x), Out(y))),))


@renders("tfl.mean")
def _mean(node: Node, p: MeanParams) -> Plan:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    if p.count == 0:
        raise ValueError("mean over an empty axis")
    shift_in_range(p.shift, "the mean multiplier")
    strides = contiguous_strides(x.shape)
    groups: list[list[int]] = [[], []]  # (size, stride) of kept / reduced runs
    previous = None
    for axis, (n, s) in enumerate(zip(x.shape, strides, strict=True)):
        reduced = int(axis in p.axes)
        if n == 1:
            continue
        if previous == reduced:
            groups[reduced][-2] *= n
            groups[reduced][-1] = s
        else:
            groups[reduced] += [n, s]
        previous = reduced
    if len(groups[0]) > 4 or len(groups[1]) > 4:
        raise ValueError(f"mean over axes {list(p.axes)} of {x.shape} needs more than 2+2 loops")
    kept = [1, 0] * (2 - len(groups[0]) // 2) + groups[0]
    red = groups[1] + [1, 0] * (2 - len(groups[1]) // 2)
    names = ("k0", "ks0", "k1", "ks1", "r0", "rs0", "r1", "rs1")
    fields = (*zip(names, [*kept, *red], strict=True),
              ("zp_times_count", int(wrap_int32(p.zp_count))), ("mult", p.mult),
              ("shift", p.shift), ("y_zp", p.y_zp))
    call = Call("mlk_mean_i8", "mlk_mean_params", tuple(fields), (In(x), Out(y)))
    return Plan(f"axes {list(p.axes)}, {math.prod(x.shape[a] for a in p.axes)} elements",
                (call,))
