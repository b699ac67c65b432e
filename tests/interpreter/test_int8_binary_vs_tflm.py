"""Int8 ADD, SUB, MUL, MAXIMUM and MINIMUM vs TFLite-Micro, byte for byte.

Broadcast shapes times fused activations, and a seeded random sweep; the harness is
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

# --------------------------------------------------------------------------- binary


BINARY_SHAPES = [
    ((1, 4, 4, 3), (1, 4, 4, 3)),
    ((1, 4, 4, 3), (1, 1, 1, 3)),
    ((2, 3, 4), (4,)),
    ((1, 4, 1, 3), (1, 1, 5, 1)),
    ((1,), (2, 3, 5)),
]


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("act", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary(op, act, shapes):
    rng = rng_for((op, act, str(shapes)))
    a, b = rand_i8(rng, shapes[0]), rand_i8(rng, shapes[1])
    sa, sb = rand_scale(rng, 0.005, 0.5), rand_scale(rng, 0.005, 0.5)
    sy = rand_scale(rng, 0.01, 0.5) if op != "MUL" else f32(sa * sb * rng.uniform(20, 200))
    za, zb, zy = rand_zp(rng), rand_zp(rng), rand_zp(rng)
    fn = {"ADD": ops.add, "SUB": ops.sub, "MUL": ops.mul}[op]
    ours = fn(
        a,
        b,
        a_scale=sa,
        a_zero_point=za,
        b_scale=sb,
        b_zero_point=zb,
        y_scale=sy,
        y_zero_point=zy,
        activation=act,
    )
    m = OneOp(op, dict(fused_activation_function=act)).input(a, q(sa, za)).input(b, q(sb, zb))
    check(m.output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
@pytest.mark.parametrize("shapes", BINARY_SHAPES[:4], ids=str)
def test_maximum_minimum(op, shapes):
    rng = rng_for((op, str(shapes)))
    a, b = rand_i8(rng, shapes[0]), rand_i8(rng, shapes[1])
    s, z = rand_scale(rng), rand_zp(rng)
    ours = (ops.maximum if op == "MAXIMUM" else ops.minimum)(a, b)
    m = OneOp(op).input(a, q(s, z)).input(b, q(s, z))
    check(m.output(ours.shape, q(s, z)), ours)


# --------------------------------------------------------------------------- random sweeps


def _broadcast_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    full = [int(rng.integers(1, 6)) for _ in range(rank)]
    a = tuple(d if rng.random() < 0.7 else 1 for d in full)
    b = tuple(d if rng.random() < 0.7 else 1 for d in full)
    return a, b[int(rng.integers(0, rank)) :] or (1,)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("seed", range(20))
def test_binary_random(op, seed):
    rng = rng_for((op, seed))
    sa_shape, sb_shape = _broadcast_pair(rng)
    a, b = rand_i8(rng, sa_shape), rand_i8(rng, sb_shape)
    sa, sb = rand_scale(rng, 1e-3, 1.0), rand_scale(rng, 1e-3, 1.0)
    sy = rand_scale(rng, 0.005, 1.0) if op != "MUL" else f32(sa * sb * rng.uniform(5, 300))
    za, zb, zy, act = rand_zp(rng), rand_zp(rng), rand_zp(rng), pick(rng, ACTS)
    fn = {"ADD": ops.add, "SUB": ops.sub, "MUL": ops.mul}[op]
    ours = fn(
        a,
        b,
        a_scale=sa,
        a_zero_point=za,
        b_scale=sb,
        b_zero_point=zb,
        y_scale=sy,
        y_zero_point=zy,
        activation=act,
    )
    m = OneOp(op, dict(fused_activation_function=act)).input(a, q(sa, za)).input(b, q(sb, zb))
    check(m.output(ours.shape, q(sy, zy)), ours)
