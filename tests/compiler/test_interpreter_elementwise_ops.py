"""The reference interpreter vs onnxruntime: binary and unary element-wise ops (with
broadcasting and fused activations), softmax and reduce-mean.

Each case runs the op through ``run_graph`` and through onnxruntime (``op_runners``);
the results must agree to 1e-5.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

from tests.compiler.op_runners import act, close, ir_op, ort_op, rand

# ---- elementwise ------------------------------------------------------------------------------
BROADCAST = [((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((1,), (2, 3)),
             ((), (2, 3)), ((3, 1, 5), (1, 4, 1))]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
def test_binary(op: str, shapes: tuple) -> None:
    a, b = rand(*shapes[0]), rand(*shapes[1], seed=1)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    close(ir_op(op, [a, b], feeds=2), ort_op(op, [a, b], feeds=2))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("activation", ["RELU", "RELU6", "RELU_N1_TO_1"])
def test_binary_fused_activation(op: str, activation: str) -> None:
    a, b = rand(2, 8, scale=5.0), rand(8, seed=1) + 3.0
    expected = act(ort_op(op, [a, b]), activation)
    close(ir_op(op, [a, b], activation=activation), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_div_truncates(dtype: type) -> None:
    a = np.array([7, -7, 7, -7, 0, 6], dtype=dtype)
    b = np.array([2, 2, -2, -2, 3, -3], dtype=dtype)
    expected = ort_op("Div", [a, b], feeds=2, out_dtype=dtype)
    np.testing.assert_array_equal(ir_op("Div", [a, b], feeds=2), expected)


UNARY = [
    ("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}),
    ("HardSigmoid", {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Identity", {}),
    ("Exp", {}), ("Sqrt", {}), ("Neg", {}), ("Abs", {}),
]


@pytest.mark.parametrize("op,attrs", UNARY, ids=[f"{o}{a}" for o, a in UNARY])
def test_unary(op: str, attrs: dict[str, Any]) -> None:
    x = rand(2, 3, 8, scale=4.0)
    if op == "Sqrt":
        x = np.abs(x)
    close(ir_op(op, [x], **attrs), ort_op(op, [x], **attrs))


def test_sigmoid_saturates_without_overflow() -> None:
    x = np.array([-200.0, -80.0, -10.0, 0.0, 10.0, 80.0, 200.0], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actual = ir_op("Sigmoid", [x])
    close(actual, ort_op("Sigmoid", [x]))


def test_hard_swish() -> None:
    x = rand(4, 16, scale=5.0)
    close(ir_op("HardSwish", [x]), ort_op("HardSwish", [x], opset=14))


@pytest.mark.parametrize("lo,hi", [(0.0, 6.0), (-1.0, None), (None, 0.5), (None, None)])
def test_clip(lo: float | None, hi: float | None) -> None:
    x = rand(3, 10, scale=4.0)
    bound = [None if v is None else np.array(v, dtype=np.float32) for v in (lo, hi)]
    attrs = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    close(ir_op("Clip", [x], **attrs), ort_op("Clip", [x, *bound]))


@pytest.mark.parametrize("axis", [-1, 0, 1, -2, 2])
def test_softmax(axis: int) -> None:
    x = rand(2, 3, 5, scale=10.0)
    close(ir_op("Softmax", [x], axis=axis), ort_op("Softmax", [x], axis=axis))


def test_softmax_default_axis_is_last() -> None:
    x = rand(2, 3, 5)
    close(ir_op("Softmax", [x]), ort_op("Softmax", [x]))


@pytest.mark.parametrize("axes", [None, (1,), (-1,), (0, 2), (-3, -1)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean(axes: tuple[int, ...] | None, keepdims: int) -> None:
    x = rand(2, 3, 4)
    attrs: dict[str, Any] = {"keepdims": keepdims}
    if axes is not None:
        attrs["axes"] = axes
    close(ir_op("ReduceMean", [x], **attrs), ort_op("ReduceMean", [x], **attrs))
