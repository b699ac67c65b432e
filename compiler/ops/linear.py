"""Matrix products: ONNX ``Gemm`` / ``MatMul``, our ``FullyConnected`` (``y = x @ W.T + b``,
``W`` of shape [N, K]; ``lower-fc`` makes it from Gemm / MatMul with constant weights) and
TFLite's ``tfl.fully_connected`` (the same maths; ``keep_num_dims`` keeps the leading
dimensions of ``x``, else the result is ``[-1, N]``).
"""

from __future__ import annotations

import math

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, ShapeError, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import Arrays, broadcast_shapes, define_tfl, need, operand, optional


def fc_macs(node: Node) -> int:
    """Every output element reads one weight row of ``depth`` values."""
    return node.output.type.numel * node.arg(1).shape[1]


def matmul_macs(node: Node) -> int:
    """Every output element is a dot product over the reduced axis of input 0."""
    a = node.arg(0).shape
    k = a[0] if node.op == "Gemm" and node.attr("transA", 0) else a[-1]
    return node.output.type.numel * k


def _fully_connected_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    if w.rank != 2 or x.shape[-1] != w.shape[1]:
        raise ShapeError(f"input {x.shape} does not match weights {w.shape}")
    return [TensorType(x.dtype, (*x.shape[:-1], w.shape[0]))]


def _fully_connected_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """y = x @ W.T + b with W of shape [N, K]; x may have any leading dimensions."""
    x, w, b = need(inputs, 0), need(inputs, 1), optional(inputs, 2)
    if w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input {x.shape} does not match weights {w.shape}")
    y = x @ w.T
    return [y if b is None else y + b]


define_op("FullyConnected", "y = x @ W.T + b, W of shape [N, K]", infer=_fully_connected_infer,
          kernel=_fully_connected_kernel, inputs=(2, 3), int8=Int8Rule.WEIGHTED, int16=True,
          activation_attr="activation", macs=fc_macs)


def _gemm_infer(node: Node) -> list[TensorType]:
    a, b = operand(node, 0).type, operand(node, 1).type
    m = a.shape[1] if node.attr("transA", 0) else a.shape[0]
    ka = a.shape[0] if node.attr("transA", 0) else a.shape[1]
    kb, n = (b.shape[1], b.shape[0]) if node.attr("transB", 0) else b.shape
    if ka != kb:
        raise ShapeError(f"inner dimensions differ: {a.shape} and {b.shape}")
    return [TensorType(a.dtype, (m, n))]


def _gemm_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
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


define_op("Gemm", "alpha * A' @ B' + beta * C", infer=_gemm_infer, kernel=_gemm_kernel,
          inputs=(2, 3), attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
          macs=matmul_macs)


def _matmul_infer(node: Node) -> list[TensorType]:
    a, b = operand(node, 0).type, operand(node, 1).type
    left = (1, *a.shape) if a.rank == 1 else a.shape
    right = (*b.shape, 1) if b.rank == 1 else b.shape
    if left[-1] != right[-2]:
        raise ShapeError(f"cannot multiply {a.shape} by {b.shape}")
    shape = [*broadcast_shapes(left[:-2], right[:-2]), left[-2], right[-1]]
    if b.rank == 1:
        shape.pop(-1)
    if a.rank == 1:
        shape.pop(-2 if b.rank != 1 else -1)
    return [TensorType(a.dtype, tuple(shape))]


def _matmul_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """numpy matmul (batched, with 1-D operands promoted as ONNX does)."""
    return [np.asarray(np.matmul(need(inputs, 0), need(inputs, 1)))]


define_op("MatMul", "numpy matmul", infer=_matmul_infer, kernel=_matmul_kernel, inputs=(2, 2),
          macs=matmul_macs)


def _tfl_fc_infer(node: Node) -> list[TensorType]:
    x, w = operand(node, 0).type, operand(node, 1).type
    if w.rank != 2 or x.numel % w.shape[1]:
        raise ShapeError(f"input {x.shape} does not fit weights {w.shape}")
    if node.attr("keep_num_dims"):
        if x.shape[-1] != w.shape[1]:
            raise ShapeError(f"input {x.shape} does not match weights {w.shape}")
        return [TensorType(x.dtype, (*x.shape[:-1], w.shape[0]))]
    return [TensorType(x.dtype, (math.prod(x.shape) // w.shape[1], w.shape[0]))]


def _tfl_fc_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x, w, b = need(inputs, 0), need(inputs, 1), optional(inputs, 2)
    y = x.reshape(-1, w.shape[1]) @ w.T
    if b is not None:
        y = y + b
    if node.attr("keep_num_dims"):
        y = y.reshape(*x.shape[:-1], w.shape[0])
    return [y]


define_tfl("FULLY_CONNECTED", "y = x @ W.T + b, x read as [-1, K]", infer=_tfl_fc_infer,
           kernel=_tfl_fc_kernel, inputs=(2, 3), macs=fc_macs)
