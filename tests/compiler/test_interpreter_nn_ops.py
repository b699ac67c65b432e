"""The reference interpreter vs onnxruntime: convolutions, pools, batch normalization
and matrix products, in NCHW and NHWC.

Each case runs the op through ``run_graph`` and through onnxruntime (``op_runners``);
the results must agree to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.compiler.op_runners import act, close, ir_op, nchw_to_nhwc, ort_op, rand

# ---- convolution --------------------------------------------------------------------------
# (in channels, out channels, kernel, strides, dilations, pads, group, bias, input HxW)
CONV_CASES = [
    (3, 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1, True, (7, 6)),
    (4, 6, (3, 2), (2, 1), (1, 1), (0, 1, 2, 0), 2, True, (8, 7)),
    (4, 4, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 4, True, (6, 6)),       # depthwise, dilated
    (3, 6, (3, 3), (2, 2), (1, 1), (1, 0, 0, 1), 3, False, (7, 8)),      # depthwise, x2
    (5, 3, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1, True, (4, 5)),       # pointwise
    (6, 4, (2, 3), (1, 2), (2, 1), (1, 2, 0, 1), 2, False, (7, 9)),
    (1, 3, (3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 1, True, (6, 6)),       # one input channel
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"conv{i}" for i in range(len(CONV_CASES))])
def test_conv(case: tuple, batch: int, layout: str) -> None:
    cin, cout, kernel, strides, dilations, pads, group, has_bias, hw = case
    x = rand(batch, cin, *hw)
    w = rand(cout, cin // group, *kernel, scale=0.5)
    b = rand(cout) if has_bias else None
    attrs = dict(strides=strides, dilations=dilations, pads=pads, group=group)
    expected = ort_op("Conv", [x, w, b], kernel_shape=list(kernel), **attrs)
    if layout == "NHWC":
        x, w, expected = nchw_to_nhwc(x), nchw_to_nhwc(w), nchw_to_nhwc(expected)
    actual = ir_op("Conv", [x, w, b], typed_batch=1, layout=layout, **attrs)
    close(actual, expected)


@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_conv_fused_activation(activation: str) -> None:
    x, w, b = rand(1, 2, 5, 5, scale=3.0), rand(3, 2, 3, 3), rand(3)
    expected = act(ort_op("Conv", [x, w, b], pads=[1, 1, 1, 1]), activation)
    close(ir_op("Conv", [x, w, b], pads=(1, 1, 1, 1), activation=activation), expected)


def test_conv_large_batch_is_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    from microlith.ops import spatial

    monkeypatch.setattr(spatial, "IM2COL_BUDGET", 4096)  # forces several chunks
    x, w = rand(7, 3, 6, 6), rand(4, 3, 3, 3)
    close(ir_op("Conv", [x, w], typed_batch=1), ort_op("Conv", [x, w]))


# (in channels, out channels, kernel, strides, dilations, pads, output_padding, group)
CONV_T_CASES = [
    (3, 2, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (4, 6, (2, 3), (1, 2), (1, 1), (0, 1, 1, 0), (0, 1), 2),
    (2, 3, (3, 3), (1, 1), (2, 2), (0, 0, 0, 0), (0, 0), 1),
    (4, 4, (3, 3), (2, 2), (1, 1), (1, 0, 0, 1), (0, 0), 4),
    (3, 2, (3, 2), (3, 2), (2, 1), (2, 0, 1, 1), (1, 0), 1),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", CONV_T_CASES, ids=[f"convT{i}" for i in range(len(CONV_T_CASES))])
def test_conv_transpose(case: tuple, layout: str) -> None:
    cin, cout, kernel, strides, dilations, pads, output_padding, group = case
    x = rand(2, cin, 4, 5)
    w = rand(cin, cout // group, *kernel, scale=0.5)
    b = rand(cout)
    attrs = dict(strides=strides, dilations=dilations, pads=pads, group=group,
                 output_padding=output_padding)
    expected = ort_op("ConvTranspose", [x, w, b], kernel_shape=list(kernel), **attrs)
    if layout == "NHWC":  # weights [O, KH, KW, I/G]
        cg, og = cin // group, cout // group
        w = w.reshape(group, cg, og, *kernel).transpose(0, 2, 3, 4, 1).reshape(
            cout, *kernel, cg)
        x, expected = nchw_to_nhwc(x), nchw_to_nhwc(expected)
    actual = ir_op("ConvTranspose", [x, w, b], typed_batch=1, layout=layout,
                   activation="RELU", **attrs)
    close(actual, act(expected, "RELU"))


# ---- pooling --------------------------------------------------------------------------------
# (kernel, strides, pads)
POOL_CASES = [
    ((2, 2), (2, 2), (0, 0, 0, 0)),
    ((3, 3), (1, 1), (1, 1, 1, 1)),
    ((3, 2), (2, 1), (1, 0, 1, 1)),
    ((3, 3), (2, 2), (0, 1, 1, 0)),
    ((1, 3), (1, 3), (0, 0, 0, 0)),
]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_max_pool(case: tuple, layout: str) -> None:
    kernel, strides, pads = case
    x = rand(2, 3, 7, 6) - 2.0  # mostly negative: padding must not win
    expected = ort_op("MaxPool", [x], kernel_shape=kernel, strides=strides, pads=pads)
    if layout == "NHWC":
        x, expected = nchw_to_nhwc(x), nchw_to_nhwc(expected)
    actual = ir_op("MaxPool", [x], typed_batch=1, layout=layout, kernel_shape=kernel,
                   strides=strides, pads=pads)
    close(actual, expected)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("case", POOL_CASES, ids=[f"pool{i}" for i in range(len(POOL_CASES))])
def test_average_pool(case: tuple, layout: str, count_include_pad: int) -> None:
    kernel, strides, pads = case
    x = rand(2, 3, 7, 6)
    expected = ort_op("AveragePool", [x], kernel_shape=kernel, strides=strides, pads=pads,
                      count_include_pad=count_include_pad)
    if layout == "NHWC":
        x, expected = nchw_to_nhwc(x), nchw_to_nhwc(expected)
    actual = ir_op("AveragePool", [x], typed_batch=1, layout=layout, kernel_shape=kernel,
                   strides=strides, pads=pads, count_include_pad=count_include_pad)
    close(actual, expected)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_fused_activation(op: str) -> None:
    x = rand(1, 2, 4, 4)
    expected = act(ort_op(op, [x], kernel_shape=[2, 2], strides=[2, 2]), "RELU_N1_TO_1")
    actual = ir_op(op, [x], kernel_shape=(2, 2), strides=(2, 2), activation="RELU_N1_TO_1")
    close(actual, expected)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_global_average_pool(layout: str) -> None:
    x = rand(3, 4, 5, 6)
    expected = ort_op("GlobalAveragePool", [x])
    if layout == "NHWC":
        x, expected = nchw_to_nhwc(x), nchw_to_nhwc(expected)
    close(ir_op("GlobalAveragePool", [x], typed_batch=1, layout=layout), expected)


@pytest.mark.parametrize("layout,shape", [("NCHW", (2, 3, 4, 5)), ("NHWC", (2, 3, 4, 5)),
                                          ("NCHW", (4, 3))])
def test_batch_normalization(layout: str, shape: tuple[int, ...]) -> None:
    x = rand(*shape)
    c = shape[1]
    scale, bias, mean = rand(c, seed=1), rand(c, seed=2), rand(c, seed=3)
    var = np.abs(rand(c, seed=4)) + 0.1
    params = [scale, bias, mean, var]
    expected = ort_op("BatchNormalization", [x, *params], epsilon=1e-3)
    if layout == "NHWC":
        x, expected = nchw_to_nhwc(x), nchw_to_nhwc(expected)
    actual = ir_op("BatchNormalization", [x, *params], typed_batch=1, layout=layout,
                   epsilon=1e-3)
    close(actual, expected)


# ---- matrix products --------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape", [(2, 5), (1, 5), (2, 4, 5)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", ["NONE", "RELU"])
def test_fully_connected(x_shape: tuple[int, ...], bias: bool, activation: str) -> None:
    x, w = rand(*x_shape), rand(3, 5, seed=1)
    b = rand(3, seed=2) if bias else None
    expected = ort_op("MatMul", [x, w.T.copy()])
    if b is not None:
        expected = expected + b
    actual = ir_op("FullyConnected", [x, w, b], activation=activation)
    close(actual, act(expected, activation))


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (4,), (1, 4), (3, 1), (3, 4)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -2.0)])
def test_gemm(trans_a: int, trans_b: int, c_shape: tuple[int, ...] | None, alpha: float,
              beta: float) -> None:
    a = rand(*((5, 3) if trans_a else (3, 5)))
    b = rand(*((4, 5) if trans_b else (5, 4)), seed=1)
    c = None if c_shape is None else rand(*c_shape, seed=2)
    attrs = dict(transA=trans_a, transB=trans_b, alpha=alpha, beta=beta)
    close(ir_op("Gemm", [a, b, c], **attrs), ort_op("Gemm", [a, b, c], **attrs))


@pytest.mark.parametrize("a_shape,b_shape", [
    ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)),
    ((1, 2, 3), (4, 3, 5)), ((2, 1, 2, 3), (3, 3, 2)),
])
def test_matmul(a_shape: tuple[int, ...], b_shape: tuple[int, ...]) -> None:
    a, b = rand(*a_shape), rand(*b_shape, seed=1)
    close(ir_op("MatMul", [a, b], feeds=2), ort_op("MatMul", [a, b], feeds=2))
