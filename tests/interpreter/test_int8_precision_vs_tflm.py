"""Prepare-time precision: the scales at which float32 vs double changes int8 bytes.

Each case pins a scale where evaluating a Prepare-time expression in the other
precision gives different output bytes, and checks that TFLite-Micro agrees with
ours (the harness is ``tflm_oneop``).
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.quant import fixed_point as fp
from microlith.quant import reference as ops
from microlith.quant.arith import activation_range
from tests.interpreter.tflm_oneop import (
    ALL_INT8,
    OneOp,
    check,
    f32,
    q,
)

# --------------------------------------------------------------------------- prepare precision
# Scales (found by search) at which evaluating a Prepare-time expression in the other
# precision -- float32 instead of double or vice versa -- changes output bytes.  Each test
# asserts that the alternative differs from ours and that TFLM agrees with ours.  The
# TFLM source snapshot of August 2026 evaluates the ADD/SUB, FULLY_CONNECTED (per-tensor),
# RELU, LEAKY_RELU and HARD_SWISH multipliers in float32; the runtime we test against
# (tflite-micro 0.dev20261023) behaves as double.  Activation ranges, RELU6 and QUANTIZE
# divide in float32.


def _mbqm(d: np.ndarray, real: float) -> np.ndarray:
    return fp.multiply_by_quantized_multiplier(d, *fp.quantize_multiplier(real))


F = np.float32


def test_precision_add_sub():
    from microlith.quant.elementwise import add_sub_params, run_add_sub

    def _add_sub(a, b, sign, multipliers, za, zb, sy, zy, activation):
        p = add_sub_params(sign, a_scale=1.0, a_zp=za, b_scale=1.0, b_zp=zb, y_scale=sy,
                           y_zp=zy, activation=activation, multipliers=multipliers)
        return run_add_sub(p, [a, b])[0]

    a, b = ALL_INT8.reshape(256, 1), ALL_INT8.reshape(1, 256)
    sa, sb, sy, za, zb, zy = 0.029278486967086792, 0.8499374389648438, 0.2123604118824005, 3, -5, 7
    tm = F(2.0) * max(F(sa), F(sb))
    in_float = (float(F(sa) / tm), float(F(sb) / tm), float(tm / (F(1 << 20) * F(sy))))
    for op, fn, sign in (("ADD", ops.add, 1), ("SUB", ops.sub, -1)):
        ours = fn(
            a,
            b,
            a_scale=sa,
            a_zero_point=za,
            b_scale=sb,
            b_zero_point=zb,
            y_scale=sy,
            y_zero_point=zy,
        )
        assert not np.array_equal(ours, _add_sub(a, b, sign, in_float, za, zb, sy, zy, "NONE"))
        m = OneOp(op).input(a, q(sa, za)).input(b, q(sb, zb))
        check(m.output(ours.shape, q(sy, zy)), ours)


def test_precision_fully_connected():
    sx, sw, sy, zx, zy = 0.010590525344014168, 0.0021942066960036755, 0.31675928831100464, 4, -3
    accs = np.array([-1274517, -1206361, -879212, 879212, 1206361], np.int32)
    x = np.full((1, 1), zx, np.int8)  # x - z_x = 0: each accumulator is its bias
    wt = np.ones((accs.size, 1), np.int8)
    ours = ops.fully_connected(
        x, wt, accs, x_scale=sx, x_zero_point=zx, w_scales=[sw], y_scale=sy, y_zero_point=zy
    )
    alt = np.clip(zy + _mbqm(accs.astype(np.int64), float(F(sx) * F(sw)) / sy), -128, 127)
    assert not np.array_equal(ours.reshape(-1), alt)
    m = OneOp("FULLY_CONNECTED").input(x, q(sx, zx)).const(wt, q(sw, 0))
    check(m.const(accs, q(f32(F(sx) * F(sw)), 0)).output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize(
    "sx, sy, zx, zy, alpha",
    [
        (0.0010348055511713028, 0.002497216686606407, -84, -54, 0.44954022765159607),  # identity
        (0.811121940612793, 0.2109566479921341, 22, 50, 0.1370064616203308),  # alpha branch
    ],
)
def test_precision_leaky_relu(sx, sy, zx, zy, alpha):
    x = ALL_INT8
    ours = ops.leaky_relu(x, alpha=alpha, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    d = x.astype(np.int64) - zx
    alt = np.where(
        d >= 0, _mbqm(d, float(F(sx) / F(sy))), _mbqm(d, float(F(sx) * F(alpha) / F(sy)))
    )
    assert not np.array_equal(ours, np.clip(zy + alt, -128, 127))
    m = OneOp("LEAKY_RELU", dict(alpha=alpha)).input(x, q(sx, zx))
    check(m.output((256,), q(sy, zy)), ours)


def test_precision_relu():
    x = ALL_INT8
    sx, sy, zx, zy = 0.06875734776258469, 0.008089100010693073, 22, 73
    ours = ops.relu(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    alt = np.clip(zy + _mbqm(x.astype(np.int64) - zx, float(F(sx) / F(sy))), zy, 127)
    assert not np.array_equal(ours, alt)
    check(OneOp("RELU").input(x, q(sx, zx)).output((256,), q(sy, zy)), ours)


def test_precision_hard_swish():
    from microlith.quant.activation import hard_swish_params_from_reals, run_hard_swish

    def _hard_swish_core(x, zx, zy, out_real, relu_real):
        return run_hard_swish(hard_swish_params_from_reals(zx, zy, out_real, relu_real), [x])[0]

    x = ALL_INT8
    sx, zx, sy, zy = 0.41844385862350464, 79, 1.0753960609436035, -36
    ours = ops.hard_swish(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    hires = F(1 / 128) * F(sx)
    alt = _hard_swish_core(x, zx, zy, float(hires / F(sy)), float(hires / (F(3) / F(32768))))
    assert not np.array_equal(ours, alt)
    check(OneOp("HARD_SWISH").input(x, q(sx, zx)).output((256,), q(sy, zy)), ours)


def test_precision_float32_divisions():
    """RELU6's six, a fused RELU6 range and QUANTIZE round a float32 quotient."""
    sx = 0.1846153885126114  # 6.0f / s == 32.5 exactly in float32, 32.4999993 in double
    ours = ops.relu6(ALL_INT8, x_scale=sx, x_zero_point=-128)
    assert int(ours.max()) == -128 + 33
    check(OneOp("RELU6").input(ALL_INT8, q(sx, -128)).output((256,), q(sx, -128)), ours)
    s = 0.03692307695746422  # 6.0f / s == 162.5 in float32
    assert activation_range("RELU6", s, -128) == (-128, 35)
    x = ALL_INT8.reshape(1, 1, 256, 1)
    ours = ops.max_pool_2d(
        x, filter_hw=(1, 1), stride=(1, 1), y_scale=s, y_zero_point=-128, activation="RELU6"
    )
    options = dict(
        padding="VALID",
        stride_h=1,
        stride_w=1,
        filter_height=1,
        filter_width=1,
        fused_activation_function="RELU6",
    )
    check(OneOp("MAX_POOL_2D", options).input(x, q(s, -128)).output(x.shape, q(s, -128)), ours)
    s, v = 0.012139945290982723, np.array([1.0865250825881958], np.float32)  # 89.5 in float32
    ours = ops.quantize(v, y_scale=s, y_zero_point=0)
    assert int(ours[0]) == 90
    check(OneOp("QUANTIZE").input(v, None).output((1,), q(s, 0)), ours)


def test_hard_swish_tiny_output_multiplier_quirk():
    """Output exponent <= -16: TFLite's int16 RoundingDivideByPOT returns ±1 (reproduced)."""
    x = ALL_INT8
    sx, zx, sy, zy = 0.001, 0, 1.0, 0
    ours = ops.hard_swish(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    assert set(np.unique(ours)) == {-1, 1}
    check(OneOp("HARD_SWISH").input(x, q(sx, zx)).output((256,), q(sy, zy)), ours)
