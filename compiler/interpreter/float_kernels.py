"""Float reference kernels with ONNX semantics: the complete ``KERNELS`` table.

This module holds the elementwise, activation and reduction kernels and imports
``nn_kernels`` (convolution, pooling, batch norm), ``matmul_kernels``
(FullyConnected, Gemm, MatMul) and ``tensor_kernels`` (reshape-like and indexing
ops) so that, once it is imported, ``KERNELS`` maps every op of
``microlith.ir.opdefs`` to a kernel.

Binary ops broadcast multidirectionally (numpy rules). Float arithmetic stays in
the input dtype (float32 for float32 graphs).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.interpreter import (  # noqa: F401  (importing registers their kernels)
    matmul_kernels,
    nn_kernels,
    quant_kernels,
    tensor_kernels,
)
from microlith.interpreter.registry import KERNELS, Kernel, need, register
from microlith.ir.core import Node

__all__ = ["KERNELS", "Kernel"]

Arrays = list[np.ndarray | None]


# ---- binary -------------------------------------------------------------------------
def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``; integers divide truncating toward zero (C semantics, as ONNX runtimes do)."""
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        q = np.floor_divide(a, b)
        return q + ((q < 0) & (q * b != a))
    return np.true_divide(a, b)


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": _divide,
    "Max": np.maximum,
    "Min": np.minimum,
}


def _binary_kernel(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Kernel:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        return [np.asarray(fn(need(inputs, 0), need(inputs, 1)))]

    return kernel


for _op, _fn in _BINARY.items():
    register(_op)(_binary_kernel(_fn))


# ---- unary --------------------------------------------------------------------------
def _sigmoid(x: np.ndarray, node: Node) -> np.ndarray:
    """1 / (1 + exp(-x)); exp overflow for very negative x correctly gives 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _leaky_relu(x: np.ndarray, node: Node) -> np.ndarray:
    """x if x >= 0 else alpha * x."""
    return np.where(x >= 0, x, x * np.asarray(node.attr("alpha"), dtype=x.dtype))


def _hard_sigmoid(x: np.ndarray, node: Node) -> np.ndarray:
    """max(0, min(1, alpha * x + beta))."""
    alpha = np.asarray(node.attr("alpha"), dtype=x.dtype)
    beta = np.asarray(node.attr("beta"), dtype=x.dtype)
    return np.clip(alpha * x + beta, 0, 1).astype(x.dtype, copy=False)


def _hard_swish(x: np.ndarray, node: Node) -> np.ndarray:
    """x * max(0, min(1, x / 6 + 1 / 2)) (ONNX: alpha = 1/6, beta = 0.5)."""
    gate = np.clip(x * np.asarray(1 / 6, dtype=x.dtype) + np.asarray(0.5, dtype=x.dtype), 0, 1)
    return x * gate.astype(x.dtype, copy=False)


def _clip(x: np.ndarray, node: Node) -> np.ndarray:
    """min(max(x, min), max); bounds are attributes (constant-folded at import)."""
    lo, hi = node.attr("min"), node.attr("max")
    if np.issubdtype(x.dtype, np.floating):
        lo, hi = np.asarray(lo, dtype=x.dtype), np.asarray(hi, dtype=x.dtype)
    elif np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        lo = np.asarray(max(lo, info.min), dtype=x.dtype)
        hi = np.asarray(min(hi, info.max), dtype=x.dtype)
    return np.minimum(np.maximum(x, lo), hi)


_UNARY: dict[str, Callable[[np.ndarray, Node], np.ndarray]] = {
    "Relu": lambda x, node: np.maximum(x, np.zeros((), dtype=x.dtype)),
    "Sigmoid": _sigmoid,
    "Tanh": lambda x, node: np.tanh(x),
    "LeakyRelu": _leaky_relu,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Clip": _clip,
    "Identity": lambda x, node: x,
    "Exp": lambda x, node: np.exp(x),
    "Sqrt": lambda x, node: np.sqrt(x),
    "Neg": lambda x, node: np.negative(x),
    "Abs": lambda x, node: np.abs(x),
}


def _unary_kernel(fn: Callable[[np.ndarray, Node], np.ndarray]) -> Kernel:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        return [np.asarray(fn(need(inputs, 0), node))]

    return kernel


for _op, _ufn in _UNARY.items():
    register(_op)(_unary_kernel(_ufn))


# ---- softmax and reductions ------------------------------------------------------------
@register("Softmax")
def softmax(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Opset-13 softmax along one ``axis``: exp(x - max) / sum(exp(x - max))."""
    x = need(inputs, 0)
    axis = int(node.attr("axis"))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return [e / np.sum(e, axis=axis, keepdims=True)]


@register("ReduceMean")
def reduce_mean(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Mean over ``axes`` (all axes when None), keeping them as size 1 if ``keepdims``."""
    x = need(inputs, 0)
    axes = node.attr("axes")
    axis = None if axes is None else tuple(int(a) % x.ndim for a in axes)
    keep = bool(node.attr("keepdims", 1))
    return [np.asarray(np.mean(x, axis=axis, keepdims=keep, dtype=_mean_dtype(x)))]


def _mean_dtype(x: np.ndarray) -> np.dtype | None:
    return x.dtype if np.issubdtype(x.dtype, np.floating) else None
