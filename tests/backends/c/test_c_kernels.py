"""The C kernels and their renderers vs the integer interpreter (== TFLite-Micro), byte for byte.

Every op gets several one-node graphs (seeded random int8 data, realistic scales and zero
points, strides / dilations / asymmetric pads / depth multipliers / broadcast shapes /
fused activations, the table and the arithmetic path of element-wise ops, in-place
aliasing); all of them are rendered into one C program, compiled with
``-std=c99 -Wall -Wextra -Werror -pedantic`` at -O2, at -Os and with
``-fsanitize=address,undefined``, and every output must equal ``run_graph``'s bytes.
Every node of the int8 zoo models (real weights and quantization, inputs from the
interpreter) is checked the same way.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from harness import (
    Case,
    Const,
    build_and_run,
    isolate,
    make_case,
    one_node_graph,
    qparams,
    qtype,
)

from microlith.backends.c import render_ops
from microlith.backends.c.render_context import RenderContext
from microlith.diagnostics import BackendError
from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.ir.ops import all_ops
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.passes import legalize_c

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")

Generator = Callable[[np.random.Generator], list[Case]]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    def wrap(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return wrap


def _int8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


# --------------------------------------------------------------------------- convolutions


def _conv_case(rng: np.random.Generator, name: str, x_shape: tuple[int, int, int, int],
               out_c: int, kernel: tuple[int, int], *, stride=(1, 1), dilation=(1, 1),
               pads=(0, 0, 0, 0), group: int = 1, depthwise: bool = False,
               activation: str = "NONE", bias: bool = True, per_channel: bool = True) -> Case:
    in_c = x_shape[3]
    cg = 1 if depthwise else in_c // group
    group = in_c if depthwise else group
    x_scale, x_zp = float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 100))
    w = rng.integers(-127, 128, (out_c, *kernel, cg)).astype(np.int8)
    w_base = float(rng.uniform(0.002, 0.02))
    scales = tuple(float(np.float32(s)) for s in rng.uniform(0.5, 1.5, out_c) * w_base)
    w_quant = (QuantParams(scales, (0,) * out_c, 0) if per_channel
               else QuantParams((scales[0],), (0,)))
    taps = kernel[0] * kernel[1] * cg
    sigma = 74.0 * 73.0 * math.sqrt(taps)
    b = rng.normal(0, sigma / 2, out_c).astype(np.int32) if bias else None
    y_scale = {"RELU6": 6 / 230, "RELU_N1_TO_1": 2 / 230}.get(activation,
                                                              x_scale * w_base * sigma * 6 / 256)
    y_zp = -128 if activation in ("RELU", "RELU6") else int(rng.integers(-20, 20))
    operands = [qtype(x_shape, x_scale, x_zp), Const(w, w_quant),
                Const(b, QuantParams(tuple(x_scale * s for s in scales), (0,) * out_c, 0))
                if b is not None else None]
    graph = one_node_graph("Conv", operands, qparams(y_scale, y_zp), name, strides=stride,
                           dilations=dilation, pads=pads, group=group, activation=activation,
                           layout="NHWC")
    return make_case(name, graph, rng)


@generator("conv")
def conv_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _conv_case(rng, "lenet 5x5 pad 2 relu", (1, 16, 16, 1), 6, (5, 5), pads=(2, 2, 2, 2),
                   activation="RELU"),
        _conv_case(rng, "3x3 s2 pad 1", (1, 9, 10, 3), 8, (3, 3), stride=(2, 2),
                   pads=(1, 1, 1, 1)),
        _conv_case(rng, "asymmetric pads s(2,1)", (1, 7, 8, 5), 4, (3, 2), stride=(2, 1),
                   pads=(0, 1, 2, 0), activation="RELU6"),
        _conv_case(rng, "dilation 2", (1, 9, 9, 4), 6, (3, 3), dilation=(2, 2),
                   pads=(2, 2, 2, 2)),
        _conv_case(rng, "dilation (1,3) pads (1,0,0,3)", (2, 6, 11, 3), 5, (2, 3),
                   dilation=(1, 3), pads=(1, 0, 0, 3), activation="RELU_N1_TO_1"),
        _conv_case(rng, "groups 2", (1, 6, 6, 4), 6, (3, 3), group=2, pads=(1, 1, 1, 1)),
        _conv_case(rng, "groups 3 dilated", (1, 7, 7, 6), 3, (3, 3), group=3,
                   dilation=(2, 1), pads=(1, 0, 1, 2)),
        _conv_case(rng, "1x1", (1, 5, 5, 16), 12, (1, 1)),
        _conv_case(rng, "1x1 s2 no bias per-tensor", (1, 6, 6, 8), 4, (1, 1),
                   stride=(2, 2), bias=False, per_channel=False),
        _conv_case(rng, "batch 2 big pad", (2, 4, 5, 2), 3, (3, 3), pads=(3, 2, 1, 4)),
        _conv_case(rng, "kernel larger than input", (1, 3, 3, 2), 2, (5, 5),
                   pads=(2, 2, 2, 2), activation="RELU"),
    ]


@generator("depthwise")
def depthwise_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _conv_case(rng, "dw 3x3 pad 1 relu", (1, 8, 8, 6), 6, (3, 3), depthwise=True,
                   pads=(1, 1, 1, 1), activation="RELU"),
        _conv_case(rng, "dw s2 multiplier 2", (1, 9, 8, 4), 8, (3, 3), depthwise=True,
                   stride=(2, 2), pads=(1, 1, 1, 1), activation="RELU6"),
        _conv_case(rng, "dw asymmetric dilated x3", (1, 7, 9, 3), 9, (3, 2), depthwise=True,
                   dilation=(2, 1), pads=(2, 0, 1, 1)),
        _conv_case(rng, "dw 5x5 no bias batch 2", (2, 5, 6, 5), 5, (5, 5), depthwise=True,
                   pads=(2, 2, 2, 2), bias=False),
        _conv_case(rng, "dw valid s(1,2)", (1, 6, 7, 8), 8, (2, 3), depthwise=True,
                   stride=(1, 2)),
    ]


def _fc_case(rng: np.random.Generator, name: str, x_shape: tuple[int, ...], units: int,
             activation: str = "NONE", bias: bool = True, per_channel: bool = True) -> Case:
    depth = x_shape[-1]
    x_scale, x_zp = float(rng.uniform(0.005, 0.05)), int(rng.integers(-128, 100))
    w = rng.integers(-127, 128, (units, depth)).astype(np.int8)
    w_base = float(rng.uniform(0.002, 0.02))
    scales = tuple(float(np.float32(s)) for s in rng.uniform(0.5, 1.5, units) * w_base)
    w_quant = (QuantParams(scales, (0,) * units, 0) if per_channel
               else QuantParams((scales[0],), (0,)))
    sigma = 74.0 * 73.0 * math.sqrt(depth)
    b = Const(rng.normal(0, sigma / 2, units).astype(np.int32),
              QuantParams(tuple(x_scale * s for s in scales), (0,) * units, 0)) if bias else None
    y_zp = -128 if activation in ("RELU", "RELU6") else int(rng.integers(-30, 30))
    y_scale = 6 / 230 if activation == "RELU6" else x_scale * w_base * sigma * 6 / 256
    graph = one_node_graph("FullyConnected", [qtype(x_shape, x_scale, x_zp), Const(w, w_quant),
                                              b], qparams(y_scale, y_zp), name,
                           activation=activation)
    return make_case(name, graph, rng)


@generator("fully_connected")
def fully_connected_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _fc_case(rng, "64->10", (1, 64), 10),
        _fc_case(rng, "batch 3 relu", (3, 24), 7, activation="RELU"),
        _fc_case(rng, "rank 3 keep dims", (2, 3, 16), 5, activation="RELU6"),
        _fc_case(rng, "no bias per-tensor", (1, 33), 4, bias=False, per_channel=False),
        _fc_case(rng, "one unit", (2, 9), 1),
    ]


# --------------------------------------------------------------------------- pools / mean


def _pool_case(rng: np.random.Generator, op: str, name: str, x_shape: tuple[int, ...],
               kernel: tuple[int, int], stride: tuple[int, int], pads=(0, 0, 0, 0),
               activation: str = "NONE", **attrs: object) -> Case:
    scale, zp = float(rng.uniform(0.01, 0.1)), int(rng.integers(-100, 100))
    graph = one_node_graph(op, [qtype(x_shape, scale, zp)], qparams(scale, zp), name,
                           kernel_shape=kernel, strides=stride, pads=pads,
                           activation=activation, layout="NHWC", **attrs)
    return make_case(name, graph, rng)


@generator("max_pool")
def max_pool_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _pool_case(rng, "MaxPool", "2x2 s2", (1, 8, 8, 6), (2, 2), (2, 2)),
        _pool_case(rng, "MaxPool", "3x3 s2 same", (1, 8, 8, 3), (3, 3), (2, 2),
                   (0, 0, 1, 1), activation="RELU"),
        _pool_case(rng, "MaxPool", "3x3 s1 pad 1 (same)", (2, 5, 6, 4), (3, 3), (1, 1),
                   (1, 1, 1, 1)),
        _pool_case(rng, "MaxPool", "explicit border", (1, 7, 6, 5), (3, 2), (2, 2),
                   (1, 0, 2, 1), activation="RELU6"),
        _pool_case(rng, "MaxPool", "window past the image", (1, 3, 3, 2), (3, 3), (3, 3),
                   (2, 2, 2, 2)),
    ]


@generator("average_pool")
def average_pool_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _pool_case(rng, "AveragePool", "2x2 s2 valid", (1, 4, 4, 16), (2, 2), (2, 2)),
        _pool_case(rng, "AveragePool", "3x3 s1 same, pads not counted", (1, 6, 5, 4),
                   (3, 3), (1, 1), (1, 1, 1, 1), count_include_pad=0),
        _pool_case(rng, "AveragePool", "3x3 s2 pads counted", (2, 7, 7, 3), (3, 3),
                   (2, 2), (1, 1, 1, 1), count_include_pad=1, activation="RELU"),
        _pool_case(rng, "AveragePool", "asymmetric explicit border", (1, 6, 7, 5), (2, 3),
                   (2, 1), (0, 2, 1, 0), activation="RELU6"),
        _pool_case(rng, "AveragePool", "global 4x4", (1, 4, 4, 32), (4, 4), (4, 4),
                   count_include_pad=1),
    ]


def _mean_case(rng: np.random.Generator, name: str, x_shape: tuple[int, ...],
               op: str = "ReduceMean", **attrs: object) -> Case:
    x_scale = float(rng.uniform(0.01, 0.1))
    graph = one_node_graph(op, [qtype(x_shape, x_scale, int(rng.integers(-10, 10)))],
                           qparams(x_scale * float(rng.uniform(0.05, 0.3)),
                                   int(rng.integers(-20, 20))), name, **attrs)
    return make_case(name, graph, rng)


@generator("mean")
def mean_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _mean_case(rng, "global average pool", (1, 5, 5, 8), "GlobalAveragePool",
                   layout="NHWC"),
        _mean_case(rng, "axes (1,2) keep", (2, 4, 3, 6), axes=(1, 2), keepdims=1),
        _mean_case(rng, "last axis drop", (3, 4, 7), axes=(-1,), keepdims=0),
        _mean_case(rng, "axes (0,2)", (2, 3, 4, 5), axes=(0, 2), keepdims=1),
        _mean_case(rng, "all axes", (3, 5, 7), keepdims=0),
        _mean_case(rng, "axes (1,3) of 4-D", (2, 3, 4, 5), axes=(1, 3), keepdims=0),
        _mean_case(rng, "large count 37x29", (1, 37, 29, 2), axes=(1, 2), keepdims=1),
    ]


# --------------------------------------------------------------------------- element-wise


def _binary_case(rng: np.random.Generator, op: str, name: str, a_shape: tuple[int, ...],
                 b_shape: tuple[int, ...], activation: str | None = None,
                 const_b: bool = False, alias: bool = False, shared: bool = False) -> Case:
    a_q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    b_q = a_q if shared else (float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    y_scale = a_q[0] * b_q[0] * 200 if op == "Mul" else max(a_q[0], b_q[0]) * 1.5
    y_q = a_q if shared else (y_scale, int(rng.integers(-60, 60)))
    b = (Const(_int8(rng, b_shape), qparams(*b_q)) if const_b else qtype(b_shape, *b_q))
    attrs = {} if activation is None else {"activation": activation}
    graph = one_node_graph(op, [qtype(a_shape, *a_q), b], qparams(*y_q), name, **attrs)
    return make_case(name, graph, rng, alias=alias)


def _broadcast_family(rng: np.random.Generator, op: str, shared: bool = False) -> list[Case]:
    act = None if shared else "NONE"
    return [
        _binary_case(rng, op, f"{op} same shape", (1, 5, 5, 8), (1, 5, 5, 8), act,
                     shared=shared),
        _binary_case(rng, op, f"{op} per-channel vector", (1, 4, 4, 8), (8,), act,
                     shared=shared),
        _binary_case(rng, op, f"{op} [N,H,W,1]", (1, 4, 3, 6), (1, 4, 3, 1), act,
                     shared=shared),
        _binary_case(rng, op, f"{op} both broadcast", (2, 1, 3, 1), (1, 4, 1, 5), act,
                     shared=shared),
        _binary_case(rng, op, f"{op} const scalar", (3, 7), (1,), act, const_b=True,
                     shared=shared),
        _binary_case(rng, op, f"{op} in place", (2, 3, 10), (10,), act, alias=True,
                     shared=shared),
        _binary_case(rng, op, f"{op} rank 5", (2, 1, 3, 2, 4), (3, 1, 4), act,
                     shared=shared),
    ]


@generator("add")
def add_cases(rng: np.random.Generator) -> list[Case]:
    return [*_broadcast_family(rng, "Add"),
            _binary_case(rng, "Add", "Add relu", (1, 6, 6, 4), (1, 6, 6, 4), "RELU"),
            _binary_case(rng, "Add", "Add relu6", (1, 6, 6, 4), (4,), "RELU6")]


@generator("sub")
def sub_cases(rng: np.random.Generator) -> list[Case]:
    return [*_broadcast_family(rng, "Sub"),
            _binary_case(rng, "Sub", "Sub relu_n1_to_1", (2, 9), (2, 9), "RELU_N1_TO_1")]


@generator("mul")
def mul_cases(rng: np.random.Generator) -> list[Case]:
    return [*_broadcast_family(rng, "Mul"),
            _binary_case(rng, "Mul", "Mul relu", (1, 6, 6, 4), (1, 1, 1, 4), "RELU")]


@generator("max_min")
def max_min_cases(rng: np.random.Generator) -> list[Case]:
    return [*_broadcast_family(rng, "Max", shared=True), *_broadcast_family(rng, "Min",
                                                                            shared=True)]


ALL_VALUES = np.arange(-128, 128, dtype=np.int8)


def _unary_cases(rng: np.random.Generator, op: str, y_q: Callable[[float, int], tuple],
                 scales: tuple[float, ...], **attrs: object) -> list[Case]:
    """Per scale: all 256 values by arithmetic, a table-sized tensor, an in-place one."""
    cases = []
    for i, scale in enumerate(scales):
        x_zp = int(rng.integers(-100, 100))
        yq = y_q(scale, x_zp)
        small = one_node_graph(op, [qtype((2, 128), scale, x_zp)], qparams(*yq),
                               f"{op} all values s={scale}", **attrs)
        cases.append(make_case(small.name, small, inputs={"x0": ALL_VALUES.reshape(2, 128)},
                               lut_min=1 << 30))
        big = one_node_graph(op, [qtype((1, 6, 6, 8), scale, x_zp)], qparams(*yq),
                             f"{op} table s={scale}", **attrs)
        cases.append(make_case(big.name, big, rng, alias=i == 0))
    small_alias = one_node_graph(op, [qtype((3, 11), scales[0], 3)], qparams(*y_q(scales[0], 3)),
                                 f"{op} in place arithmetic", **attrs)
    cases.append(make_case(small_alias.name, small_alias, rng, alias=True, lut_min=1 << 30))
    return cases


@generator("relu")
def relu_cases(rng: np.random.Generator) -> list[Case]:
    return _unary_cases(rng, "Relu", lambda s, z: (s * 0.7, -128), (0.02, 0.1, 0.5))


@generator("leaky_relu")
def leaky_relu_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for alpha in (0.1, 0.01, -0.5, 2.5):
        cases += _unary_cases(rng, "LeakyRelu", lambda s, z: (s * 0.8, z // 2), (0.03,),
                              alpha=alpha)
    return cases


@generator("hard_swish")
def hard_swish_cases(rng: np.random.Generator) -> list[Case]:
    return _unary_cases(rng, "HardSwish", lambda s, z: (s * 0.6, -100), (0.01, 0.05, 0.2))


@generator("logistic")
def logistic_cases(rng: np.random.Generator) -> list[Case]:
    return _unary_cases(rng, "Sigmoid", lambda s, z: (1 / 256, -128), (0.01, 0.06, 0.3, 2.0))


@generator("tanh")
def tanh_cases(rng: np.random.Generator) -> list[Case]:
    return _unary_cases(rng, "Tanh", lambda s, z: (1 / 128, 0), (0.01, 0.06, 0.3, 2.0))


@generator("softmax")
def softmax_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, scale, spread, alias in [((1, 10), 0.1, 20, False), ((3, 7), 0.02, 128, False),
                                        ((2, 2, 33), 0.5, 4, True), ((4, 300), 0.05, 30, False),
                                        ((2, 16), 3.0, 128, False), ((5, 40), 0.01, 128, False)]:
        graph = one_node_graph("Softmax", [qtype(shape, scale, int(rng.integers(-20, 20)))],
                               qparams(1 / 256, -128), f"softmax {shape} s={scale}", axis=-1)
        x = np.clip(rng.normal(0, spread, shape), -128, 127).astype(np.int8)
        cases.append(make_case(graph.name, graph, inputs={"x0": x}, alias=alias))
    return cases


# --------------------------------------------------------------------------- quantize


def _float_edges(rng: np.random.Generator, scale: float, n: int) -> np.ndarray:
    """Random floats plus exact .5 ties, huge values, infinities and NaN."""
    s = np.float32(scale)
    ties = (np.arange(-20, 20, dtype=np.float32) + np.float32(0.5)) * s
    special = np.array([0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 3e9, -3e9,
                        np.float32(0.49999997) * s, -np.float32(0.49999997) * s], np.float32)
    body = rng.normal(0, 1.5, n - ties.size - special.size).astype(np.float32)
    return np.concatenate([ties, special, body]).astype(np.float32)


@generator("quantize")
def quantize_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, scale, zp, dtype in [("f32->i8", 0.02, -3, DType.INT8),
                                   ("f32->i8 zp -128", 0.0078125, -128, DType.INT8),
                                   ("f32->i8 zp 127", 0.05, 127, DType.INT8),
                                   ("f32->u8", 0.03, 128, DType.UINT8)]:
        x = TensorType(DType.FLOAT32, (1, 128))
        graph = one_node_graph("QuantizeLinear", [x], qtype((1, 128), scale, zp, dtype), name,
                               to=dtype.value)
        cases.append(make_case(name, graph, inputs={"x0": _float_edges(rng, scale, 128)[None]}))
    for name, xq, yq, xd, yd, lut in [
            ("i8->i8", (0.03, 5), (0.05, -7), DType.INT8, DType.INT8, 1 << 30),
            ("i8->i8 table", (0.03, 5), (0.02, 9), DType.INT8, DType.INT8, None),
            ("i8->u8", (0.03, -2), (0.03, 126), DType.INT8, DType.UINT8, None),
            ("u8->i8", (0.04, 131), (0.04, 3), DType.UINT8, DType.INT8, None),
            ("i8->i8 up", (0.1, 0), (0.01, 0), DType.INT8, DType.INT8, 1 << 30)]:
        shape = (2, 200) if lut is None else (2, 128)
        graph = one_node_graph("QuantizeLinear", [qtype(shape, *xq, xd)], qtype(shape, *yq, yd),
                               name, to=yd.value)
        inputs = None if lut is None else {"x0": (ALL_VALUES.astype(np.int16) + (
            128 if xd == DType.UINT8 else 0)).astype(xd.numpy).reshape(2, 128)}
        cases.append(make_case(name, graph, rng, inputs=inputs, lut_min=lut))
    return cases


@generator("dequantize")
def dequantize_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, scale, zp, dtype in [("i8->f32", 0.0213, -9, DType.INT8),
                                   ("i8->f32 tiny scale", 1.37e-6, 100, DType.INT8),
                                   ("u8->f32", 0.1, 128, DType.UINT8)]:
        graph = one_node_graph("DequantizeLinear", [qtype((4, 64), scale, zp, dtype)],
                               TensorType(DType.FLOAT32, (4, 64)), name)
        cases.append(make_case(name, graph, rng))
    return cases


# --------------------------------------------------------------------------- data movement


@generator("pad")
def pad_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, shape, pads, value in [
            ("spatial NHWC", (1, 4, 5, 3), (0, 1, 2, 0, 0, 2, 1, 0), 0.0),
            ("value 1.5", (1, 3, 3, 2), (0, 1, 1, 0, 0, 1, 1, 0), 1.5),
            ("rank 2 all sides", (3, 5), (1, 2, 3, 4), 0.0),
            ("channels", (2, 2, 2, 3), (0, 0, 0, 1, 0, 0, 0, 2), -0.25),
            ("rank 5 merged", (2, 3, 2, 2, 4), (0, 1, 0, 0, 0, 0, 2, 0, 0, 0), 0.0)]:
        q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
        graph = one_node_graph("Pad", [qtype(shape, *q)], qparams(*q), f"pad {name}",
                               pads=pads, value=value)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("concat")
def concat_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for name, shapes, axis, act, const in [
            ("channels", [(1, 4, 4, 3), (1, 4, 4, 5)], 3, "NONE", False),
            ("axis 1 three inputs", [(2, 1, 3), (2, 4, 3), (2, 2, 3)], 1, "NONE", False),
            ("axis 0 relu", [(1, 6), (2, 6)], 0, "RELU", False),
            ("negative axis relu6 const", [(1, 3, 2, 2), (1, 3, 2, 4)], -1, "RELU6", True)]:
        q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
        operands = [qtype(s, *q) for s in shapes]
        if const:
            operands[-1] = Const(_int8(rng, shapes[-1]), qparams(*q))
        graph = one_node_graph("Concat", operands, qparams(*q), f"concat {name}", axis=axis,
                               activation=act)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("transpose")
def transpose_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, perm in [((1, 4, 5, 3), (0, 3, 1, 2)), ((3, 4, 5), (2, 0, 1)),
                        ((2, 3, 1, 4, 2), (4, 1, 3, 0, 2)), ((6, 7), (1, 0)),
                        ((2, 3, 4, 5), (0, 1, 3, 2))]:
        graph = one_node_graph("Transpose", [qtype(shape, 0.05, 3)], qparams(0.05, 3),
                               f"transpose {shape} {perm}", perm=perm)
        cases.append(make_case(graph.name, graph, rng))
    return cases


@generator("reshape")
def reshape_cases(rng: np.random.Generator) -> list[Case]:
    q = (0.04, -5)
    shape_c = Const(np.array([1, -1], np.int64))
    graphs = [
        (one_node_graph("Reshape", [qtype((1, 2, 2, 16), *q), shape_c], qparams(*q),
                        "reshape flatten"), False),
        (one_node_graph("Reshape", [qtype((1, 2, 2, 16), *q), shape_c], qparams(*q),
                        "reshape aliased"), True),
        (one_node_graph("Flatten", [qtype((2, 3, 4), *q)], qparams(*q), "flatten", axis=1),
         False),
        (one_node_graph("Squeeze", [qtype((1, 1, 1, 7), *q)], qparams(*q), "squeeze",
                        axes=(1, 2)), False),
        (one_node_graph("Unsqueeze", [qtype((3, 7), *q)], qparams(*q), "unsqueeze", axes=(0,)),
         True),
        (one_node_graph("Identity", [qtype((5,), *q)], qparams(*q), "identity"), False),
    ]
    return [make_case(g.name, g, rng, alias=alias) for g, alias in graphs]


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def op_results(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(20240611)
    groups = {name: gen(rng) for name, gen in GENERATORS.items()}
    cases = [c for group in groups.values() for c in group]
    results = build_and_run(cases, tmp_path_factory.mktemp("c_kernels"))
    by_case = {id(c): {build: outs[i] for build, outs in results.items()}
               for i, c in enumerate(cases)}
    return groups, by_case


def _assert_identical(case: Case, outputs: dict[str, np.ndarray]) -> None:
    expected = case.expected[0].reshape(-1)
    for build, got in outputs.items():
        got = got.reshape(-1)
        assert got.dtype == expected.dtype and got.size == expected.size, case.name
        if expected.dtype.kind == "f":
            same = np.array_equal(got.view(np.uint32), expected.view(np.uint32))
        else:
            same = np.array_equal(got, expected)
        if not same:
            diff = np.flatnonzero(got.reshape(-1) != expected.reshape(-1))
            raise AssertionError(
                f"{case.name} ({build}): {diff.size} of {expected.size} elements differ, "
                f"first at {diff[:5].tolist()}: C {got[diff[:5]].tolist()} vs "
                f"interpreter {expected[diff[:5]].tolist()}")


@pytest.mark.parametrize("group", sorted(GENERATORS))
def test_kernel_matches_interpreter(op_results, group: str) -> None:
    groups, by_case = op_results
    assert groups[group]
    for case in groups[group]:
        _assert_identical(case, by_case[id(case)])


def test_table_and_arithmetic_paths_both_covered(op_results) -> None:
    groups, _ = op_results
    for group, kernel in [("logistic", "mlk_logistic_i8("), ("tanh", "mlk_tanh_i8("),
                          ("hard_swish", "mlk_hard_swish_i8("), ("relu", "mlk_relu_i8("),
                          ("leaky_relu", "mlk_leaky_relu_i8(")]:
        texts = []
        for case in groups[group][:2]:
            ctx = RenderContext(tensor_expr=lambda v: v.name)
            texts.append(render_ops.render_node(ctx, case.node))
        assert kernel in texts[0] and "mlk_lut_i8(" in texts[1], group


def test_every_int8_op_has_a_renderer() -> None:
    """Every ONNX-level op with an int8 rule lowers for C, into ops the C backend renders."""
    needed = {name for name, opdef in all_ops().items()
              if opdef.has_int8_kernel and opdef.dialect == "onnx"}
    needed |= {"QuantizeLinear", "DequantizeLinear"}
    assert not sorted(needed - set(legalize_c.RULES))
    from microlith.quant.registry import integer_ops

    # the C kernels are the integer kernels: every integer target op renders (SPLIT, which
    # only a grouped TFLite convolution uses, aside)
    assert sorted(set(integer_ops()) - set(render_ops.RENDERERS)) == [
        "DequantizeLinear", "QuantizeLinear", "tfl.split"]


def test_rendering_is_deterministic() -> None:
    case = conv_cases(np.random.default_rng(1))[2]
    texts = []
    for _ in range(2):
        ctx = RenderContext(tensor_expr=lambda v: f"(arena + {len(v.name)})")
        texts.append(render_ops.render_node(ctx, case.node) + "\n".join(ctx.declarations))
    assert texts[0] == texts[1]
    assert "(const int8_t *)((arena + 2))" in texts[0]


def _c_problems(graph: Graph) -> str:
    from microlith.pipeline import PassContext

    try:
        legalize_c.LegalizeC().run(graph, PassContext())
    except BackendError as exc:
        return str(exc)
    return ""


def test_check_c_supported_reasons() -> None:
    rng = np.random.default_rng(2)
    ok = conv_cases(rng)[0].node
    assert render_ops.check_c_supported(ok) is None
    float_graph = Graph("f")
    x = float_graph.add_input("x", TensorType(DType.FLOAT32, (1, 4)))
    float_graph.add_node("Relu", [x])
    assert "float" in _c_problems(float_graph)
    softmax = one_node_graph("Softmax", [qtype((2, 3), 0.1, 0)], qparams(1 / 256, -128),
                             axis=0)
    assert "last axis" in _c_problems(softmax)
    bad_softmax = one_node_graph("Softmax", [qtype((2, 3), 0.1, 0)], qparams(0.01, 0))
    bad_softmax.rewrite_node(bad_softmax.nodes[0], "tfl.softmax", bad_softmax.nodes[0].inputs,
                             {"beta": 1.0})
    assert "1/256" in render_ops.check_c_supported(bad_softmax.nodes[0])
    exp = Graph("e")
    xq = exp.add_input("x", qtype((1, 4), 0.1, 0))
    exp.add_node("Exp", [xq], output_types=[qtype((1, 4), 0.1, 0)])
    assert "no C kernel" in _c_problems(exp)
    assert getattr(ok.params, "scratch_bytes", 0) == 0


# --------------------------------------------------------------------------- zoo models

ZOO_DIR = Path(__file__).resolve().parents[2] / "zoo"
ZOO = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")


@pytest.fixture(scope="module")
def zoo_cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    digits = pytest.importorskip("tools.digits")
    from microlith.app.driver import CompileOptions, compile_onnx

    tmp = tmp_path_factory.mktemp("zoo_calib")
    images = digits.load_digits_split(16, "NCHW")
    flat = digits.load_digits_split(8, "flat")
    np.savez(tmp / "conv.npz", input=images[0][:300])
    np.savez(tmp / "flat.npz", input=flat[0][:300])
    cases = []
    for model in ZOO:
        calib = tmp / ("flat.npz" if model == "mlp_sigmoid" else "conv.npz")
        graph = compile_onnx(str(ZOO_DIR / f"{model}.onnx"),
                             CompileOptions(quantize="int8", calibration_data=str(calib),
                                            quiet=True)).graph
        test = (images if model != "mlp_sigmoid" else flat)[2][:3]
        for k, sample in enumerate(test):
            x = sample[None]
            if x.ndim == 4:
                x = x.transpose(0, 2, 3, 1)  # the compiled graph's input is NHWC
            q = graph.inputs[0].quant
            xq = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
            values = run_graph(graph, {graph.inputs[0].name: xq}, keep_all=True)
            for node in graph.nodes:
                cases.append(isolate(node, values, f"{model} #{k} {node.name} ({node.op})"))
    return cases


def test_zoo_nodes_match_interpreter(zoo_cases: list[Case], tmp_path_factory) -> None:
    for case in zoo_cases:
        assert render_ops.check_c_supported(case.node) is None, case.name
    results = build_and_run(zoo_cases, tmp_path_factory.mktemp("c_zoo"), ("O2", "sanitize"))
    for i, case in enumerate(zoo_cases):
        _assert_identical(case, {build: outs[i] for build, outs in results.items()})
