"""Int8 data movement and (de)quantization vs TFLite-Micro, byte for byte: PAD,
CONCATENATION, RESHAPE, TRANSPOSE, QUANTIZE (float and int8 inputs), DEQUANTIZE.

The harness is ``tflm_oneop``.
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
)

# --------------------------------------------------------------------------- data movement


@pytest.mark.parametrize(
    "shape, pads",
    [
        ((1, 4, 4, 3), [[0, 0], [1, 1], [2, 0], [0, 0]]),
        ((2, 5), [[1, 0], [0, 3]]),
        ((1, 3, 3, 2), [[0, 0], [0, 2], [1, 1], [0, 1]]),
    ],
)
def test_pad(shape, pads):
    rng = np.random.default_rng(len(shape) * 7 + sum(map(sum, pads)))
    x = rand_i8(rng, shape)
    s, z = rand_scale(rng), rand_zp(rng)
    ours = ops.pad(x, pads, y_zero_point=z)
    m = OneOp("PAD").input(x, q(s, z)).const(np.array(pads, np.int32))
    check(m.output(ours.shape, q(s, z)), ours)


@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(1, 4, 4, 3), (1, 4, 4, 5)], 3),
        ([(2, 3), (1, 3), (4, 3)], 0),
        ([(1, 2, 5, 2), (1, 2, 1, 2)], -2),
    ],
)
def test_concatenation(shapes, axis):
    rng = np.random.default_rng(len(shapes) + axis + 10)
    xs = [rand_i8(rng, s) for s in shapes]
    s, z = rand_scale(rng), rand_zp(rng)
    ours = ops.concatenation(xs, axis)
    m = OneOp("CONCATENATION", dict(axis=axis))
    for x in xs:
        m.input(x, q(s, z))
    check(m.output(ours.shape, q(s, z)), ours)


def test_reshape_and_transpose():
    rng = np.random.default_rng(5)
    x = rand_i8(rng, (2, 3, 4, 5))
    s, z = rand_scale(rng), rand_zp(rng)
    ours = ops.reshape(x, (6, 20))
    m = OneOp("RESHAPE", dict(new_shape=[6, 20])).input(x, q(s, z))
    check(m.const(np.array([6, 20], np.int32)).output(ours.shape, q(s, z)), ours)
    for perm in ([0, 3, 1, 2], [3, 2, 1, 0], [1, 0, 2, 3]):
        ours = ops.transpose(x, perm)
        m = OneOp("TRANSPOSE").input(x, q(s, z)).const(np.array(perm, np.int32))
        check(m.output(ours.shape, q(s, z)), ours)


@pytest.mark.parametrize("sy, zy", [(0.05, 0), (0.0123, -17), (0.3, 100), (1e-3, -128)])
def test_quantize_float(sy, zy):
    rng = np.random.default_rng(int(sy * 1e4))
    sy32 = np.float32(sy)
    ties = (np.arange(-20, 20, dtype=np.float32) + np.float32(0.5)) * sy32
    x = np.concatenate(
        [
            rng.normal(0, 3, 200).astype(np.float32),
            ties,
            np.array([0, -0.0, 1e10, -1e10, 3e38, -3e38], np.float32),
        ]
    )
    ours = ops.quantize(x, y_scale=sy, y_zero_point=zy)
    check(OneOp("QUANTIZE").input(x, None).output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize(
    "sx, zx, sy, zy",
    [
        (0.05, 3, 0.02, -10),
        (0.02, -100, 0.05, 60),
        (0.1, 0, 0.1, 0),
        (0.01, 20, 0.01, -20),
        (0.5, -7, 0.0039, 1),
    ],
)
def test_quantize_requantize(sx, zx, sy, zy):
    x = ALL_INT8.reshape(16, 16)
    ours = ops.quantize(x, x_scale=sx, x_zero_point=zx, y_scale=sy, y_zero_point=zy)
    check(OneOp("QUANTIZE").input(x, q(sx, zx)).output(ours.shape, q(sy, zy)), ours)


@pytest.mark.parametrize("sx, zx", [(0.05, 3), (0.0123, -128), (1.7, 50), (3e-5, 0)])
def test_dequantize(sx, zx):
    x = ALL_INT8.reshape(2, 128)
    ours = ops.dequantize(x, x_scale=sx, x_zero_point=zx)
    m = OneOp("DEQUANTIZE").input(x, q(sx, zx)).output(ours.shape, None, "float32")
    check(m, ours, lsb=f32(sx))
