"""Matrix-product kernels: FullyConnected, Gemm and MatMul."""

from __future__ import annotations

import numpy as np

from microlith.interpreter.registry import need, optional, register
from microlith.ir.core import Node

Arrays = list[np.ndarray | None]


@register("FullyConnected")
def fully_connected(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """y = x @ W.T + b with W of shape [N, K]; x may have any leading dimensions."""
    x, w, b = need(inputs, 0), need(inputs, 1), optional(inputs, 2)
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {x.shape} does not match weights {w.shape}")
    y = x @ w.T
    return [y if b is None else y + b]


@register("Gemm")
def gemm(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """alpha * A' @ B' + beta * C, A' = A.T if transA, B' = B.T if transB; C broadcasts."""
    a, b, c = need(inputs, 0), need(inputs, 1), optional(inputs, 2)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"Gemm takes 2-D operands, got {a.shape} and {b.shape}")
    if node.attr("transA", 0):
        a = a.T
    if node.attr("transB", 0):
        b = b.T
    dtype = np.result_type(a, b)
    alpha = np.asarray(node.attr("alpha", 1.0), dtype=dtype)
    y = a @ b
    if alpha != 1:
        y = alpha * y
    if c is not None:
        beta = np.asarray(node.attr("beta", 1.0), dtype=dtype)
        y = y + (c if beta == 1 else beta * c)
    return [y]


@register("MatMul")
def matmul(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """numpy matmul (batched, with 1-D operands promoted as ONNX does)."""
    return [np.asarray(np.matmul(need(inputs, 0), need(inputs, 1)))]
