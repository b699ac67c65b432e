"""Fixed-point arithmetic units (``microlith.quant.fixed_point``, ``activation_range``).

The expected values are computed by hand (no runtime involved).
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.quant import fixed_point as fp
from microlith.quant.arith import activation_range

# --------------------------------------------------------------------------- fixed point units


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.0, (0, 0)),
        (0.5, (1 << 30, 0)),
        (1.0, (1 << 30, 1)),  # multiplier >= 1: positive shift
        (3.0, (1610612736, 2)),  # 0.75 * 2**31
        (2.5, (1342177280, 2)),  # 0.625 * 2**31
        (-0.75, (-1610612736, 0)),
        (2.0**-31, (1 << 30, -30)),
        (2.0**-32, (1 << 30, -31)),  # smallest representable
        (2.0**-33, (0, 0)),  # shift < -31 flushes to zero
        (1e-10, (0, 0)),
        (1.0 - 2.0**-40, (1 << 30, 1)),  # q * 2**31 rounds up to 2**31: renormalized
        ((2**30 + 0.5) / 2**31, ((1 << 30) + 1, 0)),  # tie rounds away from zero
        (-(2**30 + 0.5) / 2**31, (-(1 << 30) - 1, 0)),
    ],
)
def test_quantize_multiplier(real, expected):
    assert fp.quantize_multiplier(real) == expected


def test_quantize_multiplier_rejects_non_finite():
    with pytest.raises(ValueError):
        fp.quantize_multiplier(float("inf"))
    with pytest.raises(ValueError):
        fp.quantize_multiplier_smaller_than_one(1.0)
    with pytest.raises(ValueError):
        fp.quantize_multiplier_greater_than_one(0.5)


@pytest.mark.parametrize(
    "x, m, shift, expected",
    [
        (3, 1 << 30, 0, 2),  # 1.5 -> 2
        (-3, 1 << 30, 0, -1),  # SRDHM rounds a negative tie up: -1.5 -> -1
        (5, 1 << 30, -1, 2),  # 1.25 -> 2: double rounding (2.5 -> 3, then 1.5 -> 2)
        (-5, 1 << 30, -1, -1),  # -1.25: SRDHM -2.5 -> -2, RDBP -1 -> -1
        (7, 1610612736, 2, 21),  # multiplier 3.0
        (-7, 1610612736, 2, -21),
        (1 << 30, 1 << 30, -30, 1),  # 2**30 * 2**-31 = 0.5 -> 1
        (-(1 << 30), 1 << 30, -30, -1),  # -0.5 -> -1 (RDBP ties away from zero)
        (123456, 0, 0, 0),  # zero multiplier
        (fp.INT32_MIN, fp.INT32_MAX, 0, -2147483647),
        (fp.INT32_MIN, fp.INT32_MIN, 0, fp.INT32_MAX),  # the only SRDHM overflow saturates
        (1 << 30, 1 << 30, 2, 0),  # x * 2**2 wraps in int32, as in C
        (100, 1 << 30, 1, 100),  # (2**30, 1) is the identity
        (-100, 1 << 30, 1, -100),
    ],
)
def test_multiply_by_quantized_multiplier(x, m, shift, expected):
    assert int(fp.multiply_by_quantized_multiplier(x, m, shift)) == expected


def test_multiply_by_quantized_multiplier_per_channel_broadcast():
    x = np.array([[5, -7, 1000], [-3, 9, -1000]], np.int32)
    m = np.array([1 << 30, 1610612736, 1342177280])
    s = np.array([-1, 2, -3])
    got = fp.multiply_by_quantized_multiplier(x, m, s)
    for i in range(2):
        for c in range(3):
            assert got[i, c] == fp.multiply_by_quantized_multiplier(int(x[i, c]), m[c], s[c])
    assert got.tolist() == [[2, -21, 78], [-1, 27, -78]]  # 1000 * 0.625 / 8 = 78.125


@pytest.mark.parametrize(
    "x, e, expected",
    [
        (5, 1, 3),
        (-5, 1, -3),
        (6, 2, 2),
        (-6, 2, -2),
        (7, 2, 2),
        (-7, 2, -2),
        (0, 5, 0),
        (-1, 31, 0),
        (fp.INT32_MAX, 31, 1),
        (fp.INT32_MIN, 31, -1),
    ],
)
def test_rounding_divide_by_pot(x, e, expected):
    assert int(fp.rounding_divide_by_pot(x, e)) == expected


def test_saturating_rounding_doubling_high_mul():
    assert int(fp.saturating_rounding_doubling_high_mul(fp.INT32_MIN, fp.INT32_MIN)) == fp.INT32_MAX
    assert int(fp.saturating_rounding_doubling_high_mul(1 << 30, 1 << 30)) == 1 << 29
    # (-3 * 2**30 + 1 - 2**30) / 2**31 = -2 + 2**-31 truncates to -1: -1.5 rounds up
    assert int(fp.saturating_rounding_doubling_high_mul(-(1 << 30), 3)) == -1
    assert int(fp.saturating_rounding_doubling_high_mul(3 << 29, 1)) == 1  # 0.75 -> 1
    assert int(fp.saturating_rounding_doubling_high_mul(1 << 29, 1)) == 0  # 0.25 -> 0


def test_gemmlowp_functions_approximate_their_reals():
    a = np.linspace(-31.9, 0, 500)
    raw = np.round(a * 2**26).astype(np.int64)
    got = fp.exp_on_negative_values(raw, 5) / 2**31
    assert np.max(np.abs(got - np.exp(raw / 2**26))) < 1e-6
    assert int(fp.exp_on_negative_values(0, 5)) == fp.INT32_MAX
    xs = np.linspace(0, 0.999, 200)
    got = fp.one_over_one_plus_x_for_x_in_0_1(np.round(xs * 2**31).astype(np.int64)) / 2**31
    assert np.max(np.abs(got - 1 / (1 + xs))) < 1e-8
    t = np.linspace(-7.9, 7.9, 300)
    q4 = np.round(t * 2**27).astype(np.int64)
    assert np.max(np.abs(fp.logistic(q4, 4) / 2**31 - 1 / (1 + np.exp(-q4 / 2**27)))) < 1e-6
    assert np.max(np.abs(fp.tanh(q4, 4) / 2**31 - np.tanh(q4 / 2**27))) < 1e-6
    assert int(fp.logistic(0, 4)) == 1 << 30 and int(fp.tanh(0, 4)) == 0


def test_activation_range_hand_computed():
    assert activation_range("NONE", 0.1, 5) == (-128, 127)
    assert activation_range("RELU", 0.1, 5) == (5, 127)
    assert activation_range("RELU6", 6 / 255, -128) == (-128, 127)
    assert activation_range("RELU6", 0.1, -100) == (-100, -40)
    assert activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)
    with pytest.raises(ValueError):
        activation_range("TANH", 0.1, 0)


def test_calculate_input_radius_and_softmax_scaling():
    assert fp.calculate_input_radius(4, 24, 31) == 120  # 15 * 2**27 / 2**24
    assert fp.calculate_input_radius(5, 20, 31) == 1984  # 31 * 2**26 / 2**20
    m, shift = fp.preprocess_softmax_scaling(1.0, 1 / 16, 5)  # 2**22 -> (2**30, 23)
    assert (m, shift) == (1 << 30, 23)
