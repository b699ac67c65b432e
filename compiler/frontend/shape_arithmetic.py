"""Static values of small integer tensors computed from shapes, for importers that need them.

The TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) writes ``torch.chunk``
as Slices whose ``ends`` are ``Shape -> Gather -> Add -> Div -> Mul`` arithmetic. ONNX's
data propagation stops at Div and ``fold-constants`` folds the chain only after import,
so an importer that needs the operand as a constant (Slice bounds, Pad amounts) asks here
first: a value is static when its producer is ``Shape`` of a statically shaped tensor, or
an op with a float kernel (which also computes integers) whose inputs are all static, and
it is an integer tensor of at most ``STATIC_ELEMENTS`` elements. The graph is not changed:
the chain stays until ``fold-constants`` / ``eliminate-dead`` run.
"""

from __future__ import annotations

import numpy as np

from microlith.ir.core import Value
from microlith.ir.ops import get_op, is_registered
from microlith.ops.tensor import shape_value

#: shape arithmetic, not data: larger or float results are left to fold-constants
STATIC_ELEMENTS = 64
MAX_DEPTH = 32


def static_value(value: Value, depth: int = 0) -> np.ndarray | None:
    """The value of ``value`` if it is a small static integer tensor (see the module)."""
    if value.is_constant:
        return value.data
    node = value.producer
    if node is None or depth > MAX_DEPTH or value.type.dtype.is_float or \
            value.type.numel > STATIC_ELEMENTS or len(node.outputs) != 1:
        return None
    if node.op == "Shape":
        return shape_value(node)
    if not is_registered(node.op):
        return None
    kernel = get_op(node.op).float_kernel()
    if kernel is None:
        return None
    arrays: list[np.ndarray | None] = []
    for v in node.inputs:
        array = None if v is None else static_value(v, depth + 1)
        if v is not None and array is None:
            return None
        arrays.append(array)
    with np.errstate(all="ignore"):
        result = np.asarray(kernel(node, arrays)[0])
    return result.astype(value.type.dtype.numpy, copy=False).reshape(value.type.shape)
