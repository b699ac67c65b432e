"""Int8 AVERAGE_POOL_2D, MAX_POOL_2D and MEAN vs TFLite-Micro, byte for byte.

Hand-picked cases and seeded random sweeps; the harness is ``tflm_oneop``.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.quant import reference as ops
from tests.interpreter.tflm_oneop import (
    ACTS,
    OneOp,
    check,
    pick,
    q,
    rand_i8,
    rand_scale,
    rand_zp,
    rng_for,
)

# --------------------------------------------------------------------------- pooling / mean

POOL_CASES = [
    # (shape, filter, stride, padding, act)
    ((1, 8, 8, 3), (2, 2), (2, 2), "VALID", "NONE"),
    ((2, 7, 9, 4), (3, 3), (2, 2), "SAME", "RELU"),
    ((1, 6, 6, 2), (3, 2), (1, 1), "SAME", "RELU6"),
    ((1, 5, 5, 8), (5, 5), (1, 1), "VALID", "NONE"),
    ((1, 9, 9, 3), (3, 3), (3, 2), "SAME", "RELU_N1_TO_1"),
]


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: f"{c[1]}-{c[2]}-{c[3]}-{c[4]}")
def test_pool(op, case):
    shape, fhw, stride, padding, act = case
    rng = rng_for((op, case))
    x = rand_i8(rng, shape)
    s, z = rand_scale(rng, 0.01, 0.1), rand_zp(rng)
    fn = ops.average_pool_2d if op == "AVERAGE_POOL_2D" else ops.max_pool_2d
    ours = fn(
        x, filter_hw=fhw, stride=stride, padding=padding, y_scale=s, y_zero_point=z, activation=act
    )
    options = dict(
        padding=padding,
        stride_h=stride[0],
        stride_w=stride[1],
        filter_height=fhw[0],
        filter_width=fhw[1],
        fused_activation_function=act,
    )
    check(OneOp(op, options).input(x, q(s, z)).output(ours.shape, q(s, z)), ours)


MEAN_CASES = [
    # (shape, axes, keep_dims, same_quant)
    ((1, 7, 7, 8), [1, 2], True, False),
    ((2, 5, 6, 4), [1, 2], False, True),
    ((2, 5, 6, 4), [2, 1], True, False),
    ((3, 10), [-1], False, False),
    ((2, 3, 4, 5), [0, 2], True, False),
    ((1, 4, 4, 16), [3], True, True),
    ((2, 9, 11, 3), [1, 2, 3], False, False),
]


@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: f"{c[0]}-{c[1]}-k{int(c[2])}")
def test_mean(case):
    shape, axes, keep, same = case
    rng = rng_for(str(case))
    x = rand_i8(rng, shape)
    sx, zx = rand_scale(rng), rand_zp(rng)
    sy, zy = (sx, zx) if same else (rand_scale(rng, 1e-3, 0.05), rand_zp(rng))
    ours = ops.mean(
        x, axes, keep_dims=keep, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy
    )
    m = OneOp("MEAN", dict(keep_dims=keep)).input(x, q(sx, zx)).const(np.array(axes, np.int32))
    check(m.output(ours.shape, q(sy, zy)), ours)


# --------------------------------------------------------------------------- random sweeps


@pytest.mark.parametrize("op", ["AVERAGE_POOL_2D", "MAX_POOL_2D"])
@pytest.mark.parametrize("seed", range(10))
def test_pool_random(op, seed):
    rng = rng_for((op, seed))
    padding, act = pick(rng, ["SAME", "VALID"]), pick(rng, ACTS)
    shape = (
        int(rng.integers(1, 3)),
        int(rng.integers(2, 12)),
        int(rng.integers(2, 12)),
        int(rng.integers(1, 9)),
    )
    fhw = (int(rng.integers(1, min(shape[1], 4) + 1)), int(rng.integers(1, min(shape[2], 4) + 1)))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    x = rand_i8(rng, shape)
    s, z = rand_scale(rng), rand_zp(rng)
    fn = ops.average_pool_2d if op == "AVERAGE_POOL_2D" else ops.max_pool_2d
    ours = fn(
        x, filter_hw=fhw, stride=stride, padding=padding, y_scale=s, y_zero_point=z, activation=act
    )
    options = dict(
        padding=padding,
        stride_h=stride[0],
        stride_w=stride[1],
        filter_height=fhw[0],
        filter_width=fhw[1],
        fused_activation_function=act,
    )
    check(OneOp(op, options).input(x, q(s, z)).output(ours.shape, q(s, z)), ours)


@pytest.mark.parametrize("seed", range(12))
def test_mean_random(seed):
    rng = np.random.default_rng(4000 + seed)
    rank = int(rng.integers(2, 5))
    shape = tuple(int(rng.integers(1, 12)) for _ in range(rank))
    axes = sorted({int(a) for a in rng.integers(-rank, rank, size=int(rng.integers(1, rank + 1)))})
    keep = bool(rng.integers(2))
    x = rand_i8(rng, shape)
    sx, zx, sy, zy = rand_scale(rng), rand_zp(rng), rand_scale(rng, 1e-3, 0.2), rand_zp(rng)
    ours = ops.mean(
        x, axes, keep_dims=keep, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy
    )
    m = OneOp("MEAN", dict(keep_dims=keep)).input(x, q(sx, zx)).const(np.array(axes, np.int32))
    check(m.output(ours.shape, q(sy, zy)), ours)
