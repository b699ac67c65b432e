"""C kernel test cases: binary and unary element-wise ops, softmax, quantize and
dequantize, as one-node graphs (see ``test_c_kernels.py``).

Unary ops are covered on both C paths: all 256 int8 values by arithmetic and a
table-sized tensor (``c.lut``), plus in-place (aliased) variants.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from harness import Case, Const, make_case, one_node_graph, qparams, qtype
from kernel_cases import Generator, int8, registrar

from microlith.ir.types import DType, TensorType

GENERATORS: dict[str, Generator] = {}
generator = registrar(GENERATORS)


# --------------------------------------------------------------------------- element-wise


def _binary_case(rng: np.random.Generator, op: str, name: str, a_shape: tuple[int, ...],
                 b_shape: tuple[int, ...], activation: str | None = None,
                 const_b: bool = False, alias: bool = False, shared: bool = False) -> Case:
    a_q = (float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    b_q = a_q if shared else (float(rng.uniform(0.01, 0.1)), int(rng.integers(-128, 128)))
    y_scale = a_q[0] * b_q[0] * 200 if op == "Mul" else max(a_q[0], b_q[0]) * 1.5
    y_q = a_q if shared else (y_scale, int(rng.integers(-60, 60)))
    b = (Const(int8(rng, b_shape), qparams(*b_q)) if const_b else qtype(b_shape, *b_q))
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
