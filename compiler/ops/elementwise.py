"""Broadcasting binary ops: ONNX ``Add`` / ``Sub`` / ``Mul`` / ``Div`` / ``Max`` / ``Min`` /
``PRelu`` and TFLite's ``tfl.add`` / ``tfl.sub`` / ``tfl.mul`` / ``tfl.div`` / ``tfl.maximum``
/ ``tfl.minimum`` / ``tfl.prelu``. Float arithmetic stays in the input dtype; integer Div
truncates toward zero (C semantics, as ONNX runtimes do). PRelu:
``y = x if x >= 0 else slope * x``, the slope broadcast to ``x`` (the output has ``x``'s
shape).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Kernel, Layout, Memory, define_op
from microlith.ir.types import TensorType
from microlith.ops.common import Arrays, broadcast_shapes, define_tfl, need, operand


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b``; integers divide truncating toward zero."""
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        q = np.floor_divide(a, b)
        return q + ((q < 0) & (q * b != a))
    return np.true_divide(a, b)


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """x if x >= 0 else slope * x."""
    return np.where(x >= 0, x, x * slope.astype(x.dtype, copy=False))


def binary_infer(node: Node) -> list[TensorType]:
    a, b = operand(node, 0).type, operand(node, 1).type
    return [TensorType(a.dtype, broadcast_shapes(a.shape, b.shape))]


def binary_kernel(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Kernel:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        return [np.asarray(fn(need(inputs, 0), need(inputs, 1)))]

    return kernel


#: name, doc, numpy function, int8 rule, TFLite builtin, fused activation, in place (TFLite)
_BINARY: list[tuple[str, str, Callable[[np.ndarray, np.ndarray], np.ndarray], Int8Rule, str,
                    bool, bool]] = [
    ("Add", "a + b", np.add, Int8Rule.RESCALE, "ADD", True, True),
    ("Sub", "a - b", np.subtract, Int8Rule.RESCALE, "SUB", True, True),
    ("Mul", "a * b", np.multiply, Int8Rule.RESCALE, "MUL", True, True),
    ("Div", "a / b", _divide, Int8Rule.NONE, "DIV", True, False),
    ("Max", "elementwise maximum", np.maximum, Int8Rule.SAME, "MAXIMUM", False, False),
    ("Min", "elementwise minimum", np.minimum, Int8Rule.SAME, "MINIMUM", False, False),
    ("PRelu", "x if x >= 0 else slope * x", _prelu, Int8Rule.RESCALE, "PRELU", False, False),
]

for _name, _doc, _fn, _rule, _builtin, _fused, _inplace in _BINARY:
    define_op(_name, f"elementwise {_doc}, broadcasting", infer=binary_infer,
              kernel=binary_kernel(_fn), inputs=(2, 2), layout=Layout.BROADCAST, int8=_rule,
              activation_attr="activation" if _fused else None,
              int16=_name in ("Add", "Sub", "Mul"))
    define_tfl(_builtin, f"elementwise {_doc}, broadcasting", infer=binary_infer,
               kernel=binary_kernel(_fn), inputs=(2, 2),
               memory=Memory.INPLACE if _inplace else Memory.NONE)
