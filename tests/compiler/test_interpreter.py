"""The numpy reference interpreter against onnxruntime, op by op.

Each case builds the op twice: as an IR graph with the Graph API (run by
``run_graph``) and as a one-node ONNX model (run by onnxruntime). NHWC cases
transpose inputs, weights and outputs around the NCHW ONNX reference. Results must
agree to 1e-5 (absolute and relative).
"""

from __future__ import annotations

import gc
import warnings
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper

from microlith.interpreter import KERNELS, InterpreterError, run_graph
from microlith.ir.core import Graph
from microlith.ir.ops import OPS, get_op
from microlith.ir.types import DType, TensorType
from microlith.ir.verifier import verify

TOL = {"rtol": 1e-5, "atol": 1e-5}


def rand(*shape: int, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919 * len(shape) + sum(shape))
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def act(y: np.ndarray, activation: str) -> np.ndarray:
    bounds = {"NONE": (None, None), "RELU": (0, None), "RELU6": (0, 6),
              "RELU_N1_TO_1": (-1, 1)}[activation]
    return y if bounds == (None, None) else np.clip(y, *bounds)


# ---- the two runners ----------------------------------------------------------------------
def ort_op(op_type: str, args: Sequence[np.ndarray | None], *, feeds: int = 1, opset: int = 13,
           out_dtype: Any = np.float32, **attrs: Any) -> np.ndarray:
    """Run one ONNX node; the first ``feeds`` args are graph inputs, the rest initializers."""
    args = list(args)
    while args and args[-1] is None:  # trailing optional inputs are left out
        args.pop()
    names, inputs, inits, feed = [], [], [], {}
    for i, arr in enumerate(args):
        if arr is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        if i < feeds:
            inputs.append(helper.make_tensor_value_info(name, elem, arr.shape))
            feed[name] = arr
        else:
            inits.append(helper.make_tensor(name, elem, arr.shape, arr.flatten().tolist()))
    out_elem = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtype))
    node = helper.make_node(op_type, names, ["out"], **attrs)
    graph = helper.make_graph([node], "g", inputs,
                              [helper.make_tensor_value_info("out", out_elem, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feed)[0]


def ir_op(op: str, args: Sequence[np.ndarray | None], *, feeds: int = 1,
          typed_batch: int | None = None, **attrs: Any) -> np.ndarray:
    """Run one IR node through ``run_graph``; the first ``feeds`` args are graph inputs.

    ``typed_batch`` types the inputs with that leading dimension while feeding the
    arrays as given (a batched run of a batch-1 graph).
    """
    graph = Graph()
    values, feed = [], {}
    for i, arr in enumerate(args):
        if arr is None:
            values.append(None)
        elif i < feeds:
            shape = arr.shape if typed_batch is None else (typed_batch, *arr.shape[1:])
            value = graph.add_input(f"in{i}", TensorType(DType.from_numpy(arr.dtype), shape))
            values.append(value)
            feed[value.name] = arr
        else:
            values.append(graph.add_constant(arr, f"c{i}"))
    node = graph.add_node(op, values, attrs)
    graph.outputs = list(node.outputs)
    verify(graph)
    result = run_graph(graph, feed)[node.output.name]
    assert result.dtype == node.output.dtype.numpy
    return result


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, **TOL)


def test_every_op_has_a_kernel() -> None:
    """A float reference kernel for every op; quantize / dequantize run integer-exact."""
    from microlith.quant.registry import QUANTIZE_OPS, integer_ops

    get_op("Conv")  # loads the registry
    assert set(KERNELS) | set(QUANTIZE_OPS) == set(OPS)
    assert set(QUANTIZE_OPS) <= set(integer_ops())


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


# ---- tensor ops ----------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4, -4, -2])
def test_flatten(axis: int) -> None:
    x = rand(2, 3, 4, 5)
    close(ir_op("Flatten", [x], axis=axis), ort_op("Flatten", [x], axis=axis))


@pytest.mark.parametrize("spec", [[0, -1], [2, 3, 4], [-1], [0, 4, -1], [4, 0, 2]])
def test_reshape(spec: list[int]) -> None:
    x, target = rand(2, 3, 4), np.array(spec, dtype=np.int64)
    close(ir_op("Reshape", [x, target]), ort_op("Reshape", [x, target]))


def test_reshape_keeps_the_batch_of_a_batched_run() -> None:
    x = rand(5, 3, 4)
    actual = ir_op("Reshape", [x, np.array([1, 12], dtype=np.int64)], typed_batch=1)
    close(actual, x.reshape(5, 12))


@pytest.mark.parametrize("axes", [(0,), (-1,), (0, 2), None])
def test_squeeze(axes: tuple[int, ...] | None) -> None:
    x = rand(1, 3, 1, 1)
    onnx_axes = None if axes is None else np.array(axes, dtype=np.int64)
    attrs = {} if axes is None else {"axes": axes}
    close(ir_op("Squeeze", [x], **attrs), ort_op("Squeeze", [x, onnx_axes]))


@pytest.mark.parametrize("axes", [(0,), (-1,), (1, 3), (0, -1), (3, 0)])
def test_unsqueeze(axes: tuple[int, ...]) -> None:
    x = rand(2, 3)
    close(ir_op("Unsqueeze", [x], axes=axes),
          ort_op("Unsqueeze", [x, np.array(axes, dtype=np.int64)]))


@pytest.mark.parametrize("perm", [None, (0, 2, 3, 1), (0, 3, 1, 2), (3, 1, 0, 2)])
def test_transpose(perm: tuple[int, ...] | None) -> None:
    x = rand(2, 3, 4, 5)
    attrs = {} if perm is None else {"perm": perm}
    close(ir_op("Transpose", [x], **attrs), ort_op("Transpose", [x], **attrs))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis: int) -> None:
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, size in enumerate((1, 2, 3)):
        shapes[i][axis] = size
    args = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    close(ir_op("Concat", args, feeds=3, axis=axis), ort_op("Concat", args, feeds=3, axis=axis))


def test_concat_takes_no_fused_activation() -> None:
    """Concat is not activation-fusable (TFLite's CONCATENATION refuses one): the
    attribute is unknown to the op, so nothing has to split a fusion apart again."""
    from microlith.ir.ops import get_op

    assert not get_op("Concat").fusable_activation
    assert "activation" not in get_op("Concat").attrs


@pytest.mark.parametrize("pads,mode,value", [
    ((0, 0, 1, 2, 0, 0, 2, 1), "constant", 0.0),
    ((0, 1, 1, 0, 1, 0, 0, 3), "constant", 1.5),
    ((0, 0, -1, 1, 0, 0, 1, -2), "constant", -2.0),
    ((0, 0, 1, 2, 0, 0, 2, 1), "reflect", 0.0),
    ((0, 0, 1, 2, 0, 0, 2, 1), "edge", 0.0),
])
def test_pad(pads: tuple[int, ...], mode: str, value: float) -> None:
    x = rand(2, 3, 4, 5)
    expected = ort_op("Pad", [x, np.array(pads, dtype=np.int64), np.array(value, np.float32)],
                      mode=mode)
    close(ir_op("Pad", [x], pads=pads, mode=mode, value=value), expected)


@pytest.mark.parametrize("start,end", [(0, None), (1, None), (-2, None), (1, -1), (0, 10)])
def test_shape(start: int, end: int | None) -> None:
    x = rand(2, 3, 4, 5)
    attrs: dict[str, Any] = {"start": start}
    if end is not None:
        attrs["end"] = end
    expected = ort_op("Shape", [x], opset=15, out_dtype=np.int64, **attrs)
    actual = ir_op("Shape", [x], **attrs)
    assert actual.dtype == np.int64
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("indices", [np.array(1), np.array([2, -1, 0]),
                                     np.array([[0, 1], [-2, 2]], dtype=np.int32)], ids=str)
def test_gather(axis: int, indices: np.ndarray) -> None:
    x = rand(3, 4, 5)
    indices = indices.astype(indices.dtype if indices.dtype == np.int32 else np.int64)
    close(ir_op("Gather", [x, indices], axis=axis), ort_op("Gather", [x, indices], axis=axis))


@pytest.mark.parametrize("src,dst", [(np.float32, DType.INT32), (np.float32, DType.BOOL),
                                     (np.int64, DType.FLOAT32), (np.float32, DType.INT8),
                                     (np.float32, DType.FLOAT32)])
def test_cast(src: type, dst: DType) -> None:
    x = (rand(3, 7, scale=20.0)).astype(src)
    x[0, :3] = 0
    onnx_to = helper.np_dtype_to_tensor_dtype(dst.numpy)
    expected = ort_op("Cast", [x], to=onnx_to, out_dtype=dst.numpy)
    actual = ir_op("Cast", [x], to=dst.value)
    assert actual.dtype == dst.numpy
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([0], [2], None, None),
    ([1, 0], [100, -1], [1, 2], None),
    ([-1], [-1000], [1], [-1]),
    ([3, 4], [0, 0], [-2, -1], [-1, -2]),
    ([0, 1, 0], [2, 4, 5], [0, 1, 2], [1, 2, 3]),
    ([-3], [-1], [-1], [1]),
    ([10], [20], [2], [1]),
    ([2**62], [-(2**62)], [1], [-2]),
])
def test_slice(starts: list[int], ends: list[int], axes: list[int] | None,
               steps: list[int] | None) -> None:
    x = rand(2, 4, 5)
    args = [x, np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64),
            None if axes is None else np.array(axes, dtype=np.int64),
            None if steps is None else np.array(steps, dtype=np.int64)]
    close(ir_op("Slice", args), ort_op("Slice", args))


# ---- run_graph behaviour -----------------------------------------------------------------------
F32 = DType.FLOAT32


def chain_graph() -> Graph:
    """x -> Relu -> Sigmoid -> Tanh -> Neg (output), with a side output of Tanh."""
    graph = Graph()
    value = graph.add_input("x", TensorType(F32, (1, 4)))
    for op in ("Relu", "Sigmoid", "Tanh", "Neg"):
        value = graph.add_node(op, [value], name=op.lower()).output
    graph.outputs = [value]
    return graph


def test_missing_and_extra_inputs_are_named() -> None:
    graph = chain_graph()
    with pytest.raises(InterpreterError, match="missing graph input.*'x'"):
        run_graph(graph, {})
    with pytest.raises(InterpreterError, match="unknown graph input.*'y'"):
        run_graph(graph, {"x": rand(1, 4), "y": rand(1, 4)})


def test_wrong_shape_is_named_but_batch_may_differ() -> None:
    graph = chain_graph()
    with pytest.raises(InterpreterError, match=r"input 'x' has shape \(1, 5\)"):
        run_graph(graph, {"x": rand(1, 5)})
    with pytest.raises(InterpreterError, match="input 'x'"):
        run_graph(graph, {"x": rand(4)})
    x = rand(6, 4)
    out = run_graph(graph, {"x": x})["neg"]
    close(out, -np.tanh(1 / (1 + np.exp(-np.maximum(x, 0)))))


def test_inputs_are_cast_to_the_typed_dtype() -> None:
    out = run_graph(chain_graph(), {"x": np.zeros((1, 4), dtype=np.float64)})["neg"]
    assert out.dtype == np.float32


def test_kernel_failure_names_the_node() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (3, 4)))
    idx = graph.add_constant(np.array([7], dtype=np.int64), "idx")
    graph.outputs = [graph.add_node("Gather", [x, idx], name="pick").output]
    with pytest.raises(InterpreterError, match=r"^while executing %pick \(Gather\): .*7"):
        run_graph(graph, {"x": rand(3, 4)})


def test_missing_kernel_names_op_and_node() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2,)))
    node = graph.add_node("Bogus", [x], name="weird", output_types=[TensorType(F32, (2,))])
    graph.outputs = [node.output]
    with pytest.raises(InterpreterError, match=r"%weird \(Bogus\): no kernel for op 'Bogus'"):
        run_graph(graph, {"x": rand(2)})


def test_output_shape_disagreeing_with_ir_type_is_reported() -> None:
    graph = chain_graph()
    graph.node("tanh").output.set_type(TensorType(F32, (1, 5)))
    with pytest.raises(InterpreterError, match=r"%tanh \(Tanh\): kernel produced shape"):
        run_graph(graph, {"x": rand(1, 4)})


def test_fused_activation_attribute_is_validated() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2,)))
    graph.outputs = [graph.add_node("Add", [x, x], {"activation": "GELU"}, name="add").output]
    with pytest.raises(InterpreterError, match=r"%add \(Add\): .*GELU"):
        run_graph(graph, {"x": rand(2)})


def test_intermediates_are_freed_after_their_last_use() -> None:
    graph = chain_graph()
    refs: dict[str, weakref.ref] = {}
    alive_during_run: dict[str, list[str]] = {}

    def observer(node, outputs):
        gc.collect()
        alive_during_run[node.name] = [name for name, ref in refs.items() if ref() is not None]
        refs[node.name] = weakref.ref(outputs[0])

    result = run_graph(graph, {"x": rand(1, 4)}, observer=observer)
    assert list(result) == ["neg"]
    # When Tanh runs, Relu's output (last read by Sigmoid) is gone; Sigmoid's is its input.
    assert alive_during_run["tanh"] == ["sigmoid"]
    assert alive_during_run["neg"] == ["tanh"]
    gc.collect()
    assert [name for name, ref in refs.items() if ref() is not None] == ["neg"]


def test_keep_all_returns_every_value() -> None:
    graph = chain_graph()
    seen: list[str] = []
    x = rand(1, 4)
    values = run_graph(graph, {"x": x}, keep_all=True,
                       observer=lambda node, outs: seen.append(node.name))
    assert seen == ["relu", "sigmoid", "tanh", "neg"]
    assert set(values) == {"x", "relu", "sigmoid", "tanh", "neg"}
    close(values["sigmoid"], 1 / (1 + np.exp(-np.maximum(x, 0))))


def test_value_used_twice_survives_until_its_last_use() -> None:
    graph = Graph()
    x = graph.add_input("x", TensorType(F32, (2, 3)))
    w = graph.add_constant(rand(4, 3), "w")
    h = graph.add_node("FullyConnected", [x, w], name="fc").output
    r = graph.add_node("Relu", [h], name="r").output
    s = graph.add_node("Add", [h, r], name="s").output  # reads h after Relu ran
    graph.outputs = [s, h]
    x_val = rand(2, 3)
    out = run_graph(graph, {"x": x_val})
    hv = x_val @ graph.values["w"].data.T
    close(out["s"], hv + np.maximum(hv, 0))
    close(out["fc"], hv)
