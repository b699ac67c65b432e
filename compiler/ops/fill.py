"""Tensors made from a shape: ONNX ``ConstantOfShape`` and ``Expand``.

``ConstantOfShape(shape)`` is a tensor of ``shape`` filled with the one element of its
``value`` attribute (float32 0 by default); ``Expand(x, shape)`` broadcasts ``x``
against ``shape`` (numpy's multidirectional rule: the output shape is
``broadcast(x.shape, shape)``, so a 1 in ``shape`` keeps ``x``'s dim). Both need a
constant shape operand (after shape pinning and ``fold-constants`` every static Shape
chain is one) and fold to constants when their data is constant. Deliberately not
handled: an ``Expand`` of an activation that really broadcasts has no target lowering.
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Layout, NeedsConstant, ShapeError, define_op
from microlith.ir.types import DType, TensorType
from microlith.ops.common import Arrays, broadcast_shapes, need, operand


def _dims(node: Node, index: int) -> tuple[int, ...]:
    spec = node.const_input(index)
    if spec is None:
        raise NeedsConstant("the shape operand is not a constant (fold-constants first)")
    dims = tuple(int(d) for d in np.asarray(spec).reshape(-1))
    if any(d < 0 for d in dims):
        raise ShapeError(f"shape {list(dims)} has a negative dimension")
    return dims


def _fill_value(node: Node) -> np.ndarray:
    dtype = DType(node.attr("dtype")).numpy
    return np.asarray(node.attr("value"), dtype=dtype).reshape(1)


def _constant_of_shape_infer(node: Node) -> list[TensorType]:
    return [TensorType(DType(node.attr("dtype")), _dims(node, 0))]


def _constant_of_shape_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    dims = tuple(int(d) for d in np.asarray(need(inputs, 0)).reshape(-1))
    value = _fill_value(node)
    return [np.full(dims, value[0], dtype=value.dtype)]


def _expand_infer(node: Node) -> list[TensorType]:
    x = operand(node, 0).type
    return [TensorType(x.dtype, broadcast_shapes(x.shape, _dims(node, 1)))]


def _expand_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0)
    dims = tuple(int(d) for d in np.asarray(need(inputs, 1)).reshape(-1))
    return [np.ascontiguousarray(np.broadcast_to(x, broadcast_shapes(x.shape, dims)))]


define_op("ConstantOfShape", "a tensor of the constant shape input filled with value",
          infer=_constant_of_shape_infer, kernel=_constant_of_shape_kernel, inputs=(1, 1),
          attrs={"value": 0.0, "dtype": DType.FLOAT32.value})
define_op("Expand", "broadcast x to the constant shape input", infer=_expand_infer,
          kernel=_expand_kernel, inputs=(2, 2), layout=Layout.LOGICAL)
