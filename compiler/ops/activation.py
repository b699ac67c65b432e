"""Element-wise activations and softmax: the ONNX ops, their TFLite builtins and the C
target's ``c.lut`` (a 256-entry table lookup standing in for any int8 -> int8 element-wise
op; the table is input 1, made by ``legalize-c`` from the op's own integer kernel).

Float semantics: Sigmoid ``1 / (1 + exp(-x))``; LeakyRelu ``x if x >= 0 else alpha x``;
HardSigmoid ``max(0, min(1, alpha x + beta))``; HardSwish ``x max(0, min(1, x/6 + 1/2))``;
Clip ``min(max(x, min), max)``; Softmax ``exp(x - max) / sum exp(x - max)`` along
``axis`` (TFLite: the last axis, ``exp(beta (x - max))``); RELU6 ``min(max(x, 0), 6)``;
Elu ``x if x >= 0 else alpha (exp(x) - 1)`` (TFLite's ELU: alpha 1); Gelu ``0.5 x (1 +
erf(x / sqrt 2))`` or, approximate, ``0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))``;
Erf (no TFLite builtin: ``fuse-gelu`` folds PyTorch's erf form of GELU into ``Gelu``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import Int8Rule, Kernel, Layout, Memory, ShapeError, define_op
from microlith.ir.types import DType, TensorType
from microlith.ops.common import Arrays, define_tfl, need, operand, same_type

Unary = Callable[[np.ndarray, Node], np.ndarray]


def _sigmoid(x: np.ndarray, node: Node) -> np.ndarray:
    """1 / (1 + exp(-x)); exp overflow for very negative x correctly gives 0."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _leaky_relu(x: np.ndarray, node: Node) -> np.ndarray:
    return np.where(x >= 0, x, x * np.asarray(node.attr("alpha"), dtype=x.dtype))


def _hard_sigmoid(x: np.ndarray, node: Node) -> np.ndarray:
    alpha = np.asarray(node.attr("alpha"), dtype=x.dtype)
    beta = np.asarray(node.attr("beta"), dtype=x.dtype)
    return np.clip(alpha * x + beta, 0, 1).astype(x.dtype, copy=False)


def _hard_swish(x: np.ndarray, node: Node) -> np.ndarray:
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


def _elu(x: np.ndarray, node: Node) -> np.ndarray:
    """x if x >= 0 else alpha (exp(x) - 1); TFLite's ELU is alpha = 1."""
    alpha = np.asarray(node.attr("alpha", 1.0), dtype=x.dtype)
    return np.where(x >= 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


_ERF = np.frompyfunc(math.erf, 1, 1)
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    """x Phi(x): ``0.5 x erfc(-x / sqrt 2)``, or the tanh form ``x / (1 + exp(-2 u))``,
    ``u = sqrt(2/pi) (x + 0.044715 x^3)`` when ``approximate``.

    These equal ``0.5 x (1 + erf(x / sqrt 2))`` and ``0.5 x (1 + tanh u)`` without their
    cancellation: for x below about -8, ``1 + erf`` is 0 in float64 and GELU came out 0
    instead of e.g. -7.6e-23 at x = -10 (a relative error of 1 there).
    """
    v = np.asarray(x, np.float64)
    if approximate:
        inner = math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)
        with np.errstate(over="ignore"):
            return v / (1 + np.exp(-2 * inner))
    return 0.5 * v * np.asarray(_ERFC(-v / math.sqrt(2)), np.float64)


def _gelu(x: np.ndarray, node: Node) -> np.ndarray:
    approximate = node.attr("approximate", "none") in ("tanh", True)
    return gelu(x, approximate).astype(x.dtype)


def _erf(x: np.ndarray, node: Node) -> np.ndarray:
    return np.asarray(_ERF(np.asarray(x, np.float64)), np.float64).astype(x.dtype)


def _relu(x: np.ndarray, node: Node) -> np.ndarray:
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def unary_kernel(fn: Unary) -> Kernel:
    def kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
        return [np.asarray(fn(need(inputs, 0), node))]

    return kernel


def _rsqrt(x: np.ndarray, node: Node) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.float32(1) / np.sqrt(x)).astype(x.dtype)


#: ONNX name, doc, function, attributes, int8 rule (+ fixed output), TFLite builtin
_UNARY: list[tuple[str, str, Unary, dict, Int8Rule, tuple[float, int] | None, str | None]] = [
    ("Relu", "max(x, 0)", _relu, {}, Int8Rule.RESCALE, None, "RELU"),
    ("Sigmoid", "1 / (1 + exp(-x))", _sigmoid, {}, Int8Rule.FIXED, (1 / 256, -128), "LOGISTIC"),
    ("Tanh", "tanh(x)", lambda x, node: np.tanh(x), {}, Int8Rule.FIXED, (1 / 128, 0), "TANH"),
    ("LeakyRelu", "x if x >= 0 else alpha * x", _leaky_relu, {"alpha": 0.01}, Int8Rule.RESCALE,
     None, "LEAKY_RELU"),
    ("HardSigmoid", "max(0, min(1, alpha * x + beta))", _hard_sigmoid,
     {"alpha": 0.2, "beta": 0.5}, Int8Rule.NONE, None, None),
    ("HardSwish", "x * max(0, min(1, x / 6 + 1 / 2))", _hard_swish, {}, Int8Rule.RESCALE, None,
     "HARD_SWISH"),
    ("Clip", "min(max(x, min), max)", _clip, {"min": -math.inf, "max": math.inf},
     Int8Rule.NONE, None, None),
    ("Exp", "exp(x)", lambda x, node: np.exp(x), {}, Int8Rule.RESCALE, None, "EXP"),
    ("Sqrt", "sqrt(x)", lambda x, node: np.sqrt(x), {}, Int8Rule.NONE, None, "SQRT"),
    ("Rsqrt", "1 / sqrt(x) (LayerNormalization's decomposition)", _rsqrt, {},
     Int8Rule.RESCALE, None, "RSQRT"),
    ("Neg", "-x", lambda x, node: np.negative(x), {}, Int8Rule.RESCALE, None, "NEG"),
    ("Elu", "x if x >= 0 else alpha (exp(x) - 1)", _elu, {"alpha": 1.0}, Int8Rule.RESCALE, None,
     "ELU"),
    ("Gelu", "x Phi(x) (approximate: the tanh form)", _gelu, {"approximate": "none"},
     Int8Rule.RESCALE, None, "GELU"),
    ("Erf", "erf(x)", _erf, {}, Int8Rule.NONE, None, None),
    ("Abs", "|x|", lambda x, node: np.abs(x), {}, Int8Rule.NONE, None, "ABS"),
]
#: with a 16x8 kernel (TFLite-Micro has no int16 HARD_SWISH)
_INT16 = ("LeakyRelu", "Sigmoid", "Tanh")
#: TFLite kernels that may write over their input (plan-memory).
_INPLACE = ("RELU", "LOGISTIC", "TANH", "LEAKY_RELU", "HARD_SWISH")

for _name, _doc, _fn, _attrs, _rule, _fixed, _builtin in _UNARY:
    define_op(_name, _doc, infer=same_type, kernel=unary_kernel(_fn), attrs=_attrs,
              layout=Layout.ELEMENTWISE, int8=_rule, fixed_output=_fixed,
              int16=_name in _INT16)
    if _builtin is not None:
        define_tfl(_builtin, _doc, infer=same_type, kernel=unary_kernel(_fn),
                   memory=Memory.INPLACE if _builtin in _INPLACE else Memory.NONE)

define_tfl("RELU6", "min(max(x, 0), 6)",
           infer=same_type, kernel=unary_kernel(lambda x, node: np.clip(x, 0, 6).astype(x.dtype)))


def _softmax_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """Opset-13 softmax along one ``axis``: exp(x - max) / sum(exp(x - max))."""
    x = need(inputs, 0)
    axis = int(node.attr("axis"))
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return [e / np.sum(e, axis=axis, keepdims=True)]


define_op("Softmax", "exp(x) / sum(exp(x)) along axis", infer=same_type, kernel=_softmax_kernel,
          attrs={"axis": -1}, layout=Layout.AXIS, axis_attr="axis", int8=Int8Rule.FIXED,
          fixed_output=(1 / 256, -128), int16=True)


def _tfl_softmax_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    x = need(inputs, 0) * np.asarray(node.attr("beta"), dtype=np.float32)
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return [e / np.sum(e, axis=-1, keepdims=True)]


define_tfl("SOFTMAX", "exp(beta (x - max)) / sum along the last axis", infer=same_type,
           kernel=_tfl_softmax_kernel)


def _lut_infer(node: Node) -> list[TensorType]:
    x, table = operand(node, 0).type, operand(node, 1).type
    if x.dtype != DType.INT8 or table.shape != (256,):
        raise ShapeError(f"a table lookup reads int8 through a [256] table, got {x} and {table}")
    return [TensorType(table.dtype, x.shape)]


def _lut_kernel(node: Node, inputs: Arrays) -> list[np.ndarray]:
    """``y = table[x + 128]``."""
    x, table = need(inputs, 0), need(inputs, 1)
    return [np.asarray(table)[x.astype(np.int64) + 128]]


define_op("c.lut", "y = table[x + 128]: any int8 -> int8 element-wise op as a lookup",
          infer=_lut_infer, kernel=_lut_kernel, inputs=(2, 2), memory=Memory.INPLACE)
