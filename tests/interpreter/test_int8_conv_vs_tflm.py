"""Int8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED vs TFLite-Micro, byte for byte.

Hand-picked cases (strides, dilations, paddings, groups, per-channel or per-tensor
weights, fused activations, no bias) and seeded random sweeps; the harness is
``tflm_oneop``.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.quant import reference as ops
from tests.interpreter.tflm_oneop import (
    ACTS,
    OneOp,
    check,
    f32,
    pick,
    q,
    rand_i8,
    rand_scale,
    rand_zp,
    rng_for,
)

# --------------------------------------------------------------------------- conv / fc


CONV_CASES = [
    # (n, h, w, cin, cout, kh, kw, stride, dilation, padding, act, per_channel, groups, bias)
    (1, 8, 8, 3, 4, 3, 3, (1, 1), (1, 1), "SAME", "NONE", True, 1, True),
    (2, 9, 7, 4, 6, 3, 3, (2, 2), (1, 1), "SAME", "RELU", True, 1, True),
    (1, 10, 10, 5, 3, 3, 2, (1, 2), (2, 2), "VALID", "RELU6", True, 1, True),
    (1, 7, 7, 8, 4, 1, 1, (1, 1), (1, 1), "VALID", "RELU_N1_TO_1", False, 1, True),
    (1, 6, 6, 4, 4, 3, 3, (2, 1), (1, 1), "SAME", "NONE", True, 2, True),
    (1, 6, 5, 16, 8, 5, 5, (1, 1), (1, 1), "SAME", "NONE", True, 1, False),
    (1, 12, 12, 2, 5, 3, 3, (3, 3), (2, 1), "SAME", "RELU6", False, 1, True),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[9]}-{c[10]}-s{c[7]}-d{c[8]}")
def test_conv_2d(case):
    n, h, w, cin, cout, kh, kw, stride, dil, padding, act, per_channel, groups, use_bias = case
    rng = rng_for(case)
    x = rand_i8(rng, (n, h, w, cin))
    wt = rng.integers(-127, 128, size=(cout, kh, kw, cin // groups), dtype=np.int8)
    sx, zx, sy, zy = (
        rand_scale(rng, 0.01, 0.1),
        rand_zp(rng),
        rand_scale(rng, 0.02, 0.3),
        rand_zp(rng),
    )
    sw = [rand_scale(rng, 2e-3, 2e-2) for _ in range(cout if per_channel else 1)]
    bias = rng.integers(-3000, 3000, size=(cout,), dtype=np.int32) if use_bias else None
    options = dict(
        padding=padding,
        stride_h=stride[0],
        stride_w=stride[1],
        dilation_h_factor=dil[0],
        dilation_w_factor=dil[1],
        fused_activation_function=act,
    )
    ours = ops.conv_2d(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        stride=stride,
        dilation=dil,
        padding=padding,
        activation=act,
    )
    m = OneOp("CONV_2D", options, per_channel=per_channel).input(x, q(sx, zx))
    m.const(wt, q(sw, 0)).const(bias, q([sx * s for s in sw], 0) if use_bias else None)
    check(m.output(ours.shape, q(sy, zy)), ours)


DW_CASES = [
    # (n, h, w, c, mult, kh, kw, stride, dilation, padding, act, per_channel)
    (1, 8, 8, 3, 1, 3, 3, (1, 1), (1, 1), "SAME", "NONE", True),
    (2, 9, 9, 4, 2, 3, 3, (2, 2), (1, 1), "SAME", "RELU6", True),
    (1, 10, 8, 2, 3, 3, 3, (1, 1), (2, 2), "VALID", "RELU", True),
    (1, 7, 7, 5, 1, 5, 5, (2, 1), (1, 1), "SAME", "NONE", False),
    (1, 6, 6, 8, 1, 3, 3, (1, 1), (1, 1), "VALID", "RELU_N1_TO_1", True),
]


@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: f"m{c[4]}-{c[9]}-{c[10]}-s{c[7]}")
def test_depthwise_conv_2d(case):
    n, h, w, c, mult, kh, kw, stride, dil, padding, act, per_channel = case
    rng = rng_for(case)
    x = rand_i8(rng, (n, h, w, c))
    wt = rng.integers(-127, 128, size=(1, kh, kw, c * mult), dtype=np.int8)
    sx, zx, sy, zy = (
        rand_scale(rng, 0.01, 0.1),
        rand_zp(rng),
        rand_scale(rng, 0.01, 0.1),
        rand_zp(rng),
    )
    sw = [rand_scale(rng, 2e-3, 5e-2) for _ in range(c * mult if per_channel else 1)]
    bias = rng.integers(-2000, 2000, size=(c * mult,), dtype=np.int32)
    options = dict(
        padding=padding,
        stride_h=stride[0],
        stride_w=stride[1],
        depth_multiplier=mult,
        dilation_h_factor=dil[0],
        dilation_w_factor=dil[1],
        fused_activation_function=act,
    )
    ours = ops.depthwise_conv_2d(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        depth_multiplier=mult,
        stride=stride,
        dilation=dil,
        padding=padding,
        activation=act,
    )
    m = OneOp("DEPTHWISE_CONV_2D", options, per_channel=per_channel).input(x, q(sx, zx))
    m.const(wt, q(sw, 0, dim=3)).const(bias, q([sx * s for s in sw], 0))
    check(m.output(ours.shape, q(sy, zy)), ours)


FC_CASES = [
    # (x shape, units, per_channel, act, keep_num_dims, bias)
    ((1, 16), 8, False, "NONE", False, True),
    ((3, 32), 10, False, "RELU", False, True),
    ((2, 24), 6, True, "NONE", False, True),
    ((4, 64), 12, True, "RELU6", False, False),
    ((2, 3, 20), 7, False, "NONE", True, True),
    ((1, 128), 16, False, "RELU_N1_TO_1", False, True),
]


@pytest.mark.parametrize("case", FC_CASES, ids=lambda c: f"{'pc' if c[2] else 'pt'}-{c[3]}-{c[0]}")
def test_fully_connected(case):
    shape, units, per_channel, act, keep, use_bias = case
    rng = rng_for(case)
    x = rand_i8(rng, shape)
    depth = shape[-1]
    wt = rng.integers(-127, 128, size=(units, depth), dtype=np.int8)
    sx, zx, sy, zy = (
        rand_scale(rng, 0.01, 0.1),
        rand_zp(rng),
        rand_scale(rng, 0.05, 0.5),
        rand_zp(rng),
    )
    sw = [rand_scale(rng, 2e-3, 2e-2) for _ in range(units if per_channel else 1)]
    bias = rng.integers(-5000, 5000, size=(units,), dtype=np.int32) if use_bias else None
    bias_q = q([f32(f32(sx) * f32(s)) for s in sw], 0) if use_bias else None
    ours = ops.fully_connected(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        activation=act,
        keep_num_dims=keep,
        bias_scale=bias_q.scale[0] if bias_q else None,
    )
    options = dict(fused_activation_function=act, keep_num_dims=keep)
    m = OneOp("FULLY_CONNECTED", options, per_channel=per_channel).input(x, q(sx, zx))
    m.const(wt, q(sw, 0)).const(bias, bias_q)
    check(m.output(ours.shape, q(sy, zy)), ours)


# --------------------------------------------------------------------------- random sweeps


def _window(rng: np.random.Generator, size: int, padding: str) -> tuple[int, int, int]:
    """(kernel, stride, dilation) valid for an input extent ``size``."""
    stride, dilation = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    kmax = max(1, min(5, (size - 1) // dilation + 1)) if padding == "VALID" else 5
    return int(rng.integers(1, kmax + 1)), stride, dilation


@pytest.mark.parametrize("seed", range(16))
def test_conv_2d_random(seed):
    rng = np.random.default_rng(1000 + seed)
    padding, act = pick(rng, ["SAME", "VALID"]), pick(rng, ACTS)
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(3, 13)), int(rng.integers(3, 13))
    (kh, sh, dh), (kw, sw_, dw) = _window(rng, h, padding), _window(rng, w, padding)
    groups = pick(rng, [1, 1, 1, 2])
    cin, cout = groups * int(rng.integers(1, 9)), groups * int(rng.integers(1, 9))
    per_channel = bool(rng.integers(2))
    x = rand_i8(rng, (n, h, w, cin))
    wt = rng.integers(-127, 128, size=(cout, kh, kw, cin // groups), dtype=np.int8)
    sx, zx, sy, zy = (
        rand_scale(rng, 0.005, 0.2),
        rand_zp(rng),
        rand_scale(rng, 0.01, 1.0),
        rand_zp(rng),
    )
    sw = [rand_scale(rng, 1e-3, 5e-2) for _ in range(cout if per_channel else 1)]
    bias = rng.integers(-20000, 20000, size=(cout,), dtype=np.int32)
    ours = ops.conv_2d(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        stride=(sh, sw_),
        dilation=(dh, dw),
        padding=padding,
        activation=act,
    )
    options = dict(
        padding=padding,
        stride_h=sh,
        stride_w=sw_,
        dilation_h_factor=dh,
        dilation_w_factor=dw,
        fused_activation_function=act,
    )
    m = OneOp("CONV_2D", options, per_channel=per_channel).input(x, q(sx, zx))
    m.const(wt, q(sw, 0)).const(bias, q([sx * s for s in sw], 0))
    check(m.output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize("seed", range(16))
def test_depthwise_conv_2d_random(seed):
    rng = np.random.default_rng(2000 + seed)
    padding, act = pick(rng, ["SAME", "VALID"]), pick(rng, ACTS)
    n, h, w = int(rng.integers(1, 3)), int(rng.integers(3, 13)), int(rng.integers(3, 13))
    (kh, sh, dh), (kw, sw_, dw) = _window(rng, h, padding), _window(rng, w, padding)
    c, mult = int(rng.integers(1, 9)), int(rng.integers(1, 4))
    per_channel = bool(rng.integers(2))
    x = rand_i8(rng, (n, h, w, c))
    wt = rng.integers(-127, 128, size=(1, kh, kw, c * mult), dtype=np.int8)
    sx, zx, sy, zy = (
        rand_scale(rng, 0.005, 0.2),
        rand_zp(rng),
        rand_scale(rng, 0.005, 0.5),
        rand_zp(rng),
    )
    sw = [rand_scale(rng, 1e-3, 5e-2) for _ in range(c * mult if per_channel else 1)]
    bias = rng.integers(-5000, 5000, size=(c * mult,), dtype=np.int32)
    ours = ops.depthwise_conv_2d(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        depth_multiplier=mult,
        stride=(sh, sw_),
        dilation=(dh, dw),
        padding=padding,
        activation=act,
    )
    options = dict(
        padding=padding,
        stride_h=sh,
        stride_w=sw_,
        depth_multiplier=mult,
        dilation_h_factor=dh,
        dilation_w_factor=dw,
        fused_activation_function=act,
    )
    m = OneOp("DEPTHWISE_CONV_2D", options, per_channel=per_channel).input(x, q(sx, zx))
    m.const(wt, q(sw, 0, dim=3)).const(bias, q([sx * s for s in sw], 0))
    check(m.output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize("seed", range(16))
def test_fully_connected_random(seed):
    rng = np.random.default_rng(3000 + seed)
    batch, depth, units = (
        int(rng.integers(1, 9)),
        int(rng.integers(4, 300)),
        int(rng.integers(1, 80)),
    )
    per_channel, act = bool(rng.integers(2)), pick(rng, ACTS)
    x = rand_i8(rng, (batch, depth))
    wt = rng.integers(-127, 128, size=(units, depth), dtype=np.int8)
    sx, zx, zy = rand_scale(rng, 0.005, 0.2), rand_zp(rng), rand_zp(rng)
    sw = [rand_scale(rng, 1e-3, 2e-2) for _ in range(units if per_channel else 1)]
    sy = f32(sx * float(np.mean(sw)) * np.sqrt(depth) * rng.uniform(20, 80))
    bias = rng.integers(-30000, 30000, size=(units,), dtype=np.int32)
    bias_q = q([f32(f32(sx) * f32(s)) for s in sw], 0)
    ours = ops.fully_connected(
        x,
        wt,
        bias,
        x_scale=sx,
        x_zero_point=zx,
        w_scales=sw,
        y_scale=sy,
        y_zero_point=zy,
        activation=act,
    )
    m = OneOp("FULLY_CONNECTED", dict(fused_activation_function=act), per_channel=per_channel)
    m.input(x, q(sx, zx)).const(wt, q(sw, 0)).const(bias, bias_q)
    check(m.output(ours.shape, q(sy, zy)), ours)
