"""C kernel test cases: convolutions (incl. depthwise and grouped), fully connected,
max / average pools and mean, as one-node int8 graphs (see ``test_c_kernels.py``)."""

from __future__ import annotations

import math

import numpy as np
from harness import Case, Const, make_case, one_node_graph, qparams, qtype
from kernel_cases import Generator, registrar

from microlith.ir.types import QuantParams

GENERATORS: dict[str, Generator] = {}
generator = registrar(GENERATORS)


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
