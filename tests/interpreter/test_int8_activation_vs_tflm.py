"""Int8 activations vs TFLite-Micro, byte for byte: SOFTMAX, LOGISTIC, TANH, HARD_SWISH,
LEAKY_RELU, RELU, RELU6 (and QUANTIZE in the random unary sweep).

Every int8 input value at chosen scales, and seeded random sweeps; the harness is
``tflm_oneop``.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.quant import reference as ops
from tests.interpreter.tflm_oneop import (
    ALL_INT8,
    OneOp,
    check,
    f32,
    q,
    rand_i8,
    rand_scale,
    rand_zp,
    rng_for,
)

# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize(
    "beta, sx, shape",
    [
        (1.0, 0.1, (1, 10)),
        (1.0, 0.02, (3, 4, 7)),
        (0.5, 0.25, (2, 16)),
        (2.0, 0.05, (5, 3)),
        (1.0, 1.5, (2, 8)),
        (1.0, 0.004, (1, 250)),
    ],
)
def test_softmax(beta, sx, shape):
    rng = np.random.default_rng(int(beta * 100 + sx * 1e4))
    x = rand_i8(rng, shape)
    zx = rand_zp(rng)
    ours = ops.softmax(x, beta=beta, x_scale=sx)
    m = OneOp("SOFTMAX", dict(beta=beta)).input(x, q(sx, zx))
    check(m.output(ours.shape, q(1 / 256, -128)), ours)


def test_softmax_refuses_sum_beyond_256():
    """A sum of exps >= 256 overflows the int8 output exponent: TFLite aborts (TFLITE_CHECK)."""
    with pytest.raises(ValueError):
        ops.softmax(np.zeros((1, 600), np.int8), beta=1.0, x_scale=0.01)


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH"])
@pytest.mark.parametrize(
    "sx, zx",
    [(0.01, 0), (0.03125, -20), (0.0625, 17), (0.1, -128), (0.2, 100), (0.0023, 5), (0.5, 0)],
)
def test_logistic_tanh(op, sx, zx):
    x = ALL_INT8.reshape(2, 128)
    fn = ops.logistic if op == "LOGISTIC" else ops.tanh
    ours = fn(x, x_scale=sx, x_zero_point=zx)
    out_q = q(1 / 256, -128) if op == "LOGISTIC" else q(1 / 128, 0)
    check(OneOp(op).input(x, q(sx, zx)).output(ours.shape, out_q), ours)


@pytest.mark.parametrize(
    "sx, zx, sy, zy",
    [
        (0.05, 10, 0.03, -100),
        (0.02, -50, 0.02, -60),
        (0.1, 0, 0.08, -120),
        (0.5, 30, 0.3, -128),
        (0.004, -128, 0.01, 0),
        (0.2, 127, 0.25, 20),
    ],
)
def test_hard_swish(sx, zx, sy, zy):
    x = ALL_INT8.reshape(1, 16, 16)
    ours = ops.hard_swish(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    check(OneOp("HARD_SWISH").input(x, q(sx, zx)).output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize(
    "alpha, sx, zx, sy, zy",
    [
        (0.1, 0.05, 10, 0.05, 10),
        (0.2, 0.02, -50, 0.03, -20),
        (0.01, 0.1, 0, 0.08, -100),
        (1.5, 0.05, 30, 0.1, 0),
        (-0.3, 0.04, 5, 0.05, 0),
    ],
)
def test_leaky_relu(alpha, sx, zx, sy, zy):
    x = ALL_INT8.reshape(256)
    ours = ops.leaky_relu(x, alpha=alpha, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    m = OneOp("LEAKY_RELU", dict(alpha=alpha)).input(x, q(sx, zx))
    check(m.output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize(
    "sx, zx, sy, zy",
    [
        (0.05, 10, 0.05, 10),
        (0.05, -30, 0.02, -128),
        (0.1, 100, 0.3, -50),
        (0.024, -128, 0.024, -128),
    ],
)
def test_relu(sx, zx, sy, zy):
    x = ALL_INT8.reshape(4, 64)
    ours = ops.relu(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    check(OneOp("RELU").input(x, q(sx, zx)).output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize("sx, zx", [(6 / 255, -128), (0.05, 10), (0.01, -60), (0.1, 0)])
def test_relu6(sx, zx):
    x = ALL_INT8.reshape(256)
    ours = ops.relu6(x, x_scale=sx, x_zero_point=zx)
    check(OneOp("RELU6").input(x, q(sx, zx)).output(ours.shape, q(sx, zx)), ours)


# --------------------------------------------------------------------------- random sweeps


@pytest.mark.parametrize("seed", range(12))
def test_softmax_random(seed):
    rng = np.random.default_rng(5000 + seed)
    shape = (int(rng.integers(1, 6)), int(rng.integers(2, 200)))
    beta, sx = f32(rng.uniform(0.2, 3.0)), rand_scale(rng, 1e-3, 2.0)
    x = rand_i8(rng, shape)
    ours = ops.softmax(x, beta=beta, x_scale=sx)
    m = OneOp("SOFTMAX", dict(beta=beta)).input(x, q(sx, rand_zp(rng)))
    check(m.output(ours.shape, q(1 / 256, -128)), ours)


@pytest.mark.parametrize(
    "op", ["LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6", "QUANTIZE"]
)
@pytest.mark.parametrize("seed", range(10))
def test_unary_random(op, seed):
    rng = rng_for((op, seed))
    x = ALL_INT8.reshape(4, 64)
    sx, zx = rand_scale(rng, 1e-3, 1.0), int(rng.integers(-128, 128))
    sy, zy = rand_scale(rng, 1e-3, 1.0), int(rng.integers(-128, 128))
    m = OneOp(op).input(x, q(sx, zx))
    if op == "LOGISTIC":
        ours, out_q = ops.logistic(x, x_scale=sx, x_zero_point=zx), q(1 / 256, -128)
    elif op == "TANH":
        ours, out_q = ops.tanh(x, x_scale=sx, x_zero_point=zx), q(1 / 128, 0)
    elif op == "HARD_SWISH":
        sy = f32(sx * rng.uniform(0.3, 3.0))
        ours, out_q = (
            ops.hard_swish(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy),
            q(sy, zy),
        )
    elif op == "LEAKY_RELU":
        alpha = f32(rng.uniform(-0.5, 2.0))
        m.options = dict(alpha=alpha)
        ours, out_q = (
            ops.leaky_relu(
                x, alpha=alpha, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy
            ),
            q(sy, zy),
        )
    elif op == "RELU":
        ours, out_q = (
            ops.relu(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy),
            q(sy, zy),
        )
    elif op == "RELU6":
        ours, out_q = ops.relu6(x, x_scale=sx, x_zero_point=zx), q(sx, zx)
    else:
        ours = ops.quantize(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
        out_q = q(sy, zy)
    check(m.output(ours.shape, out_q), ours)
