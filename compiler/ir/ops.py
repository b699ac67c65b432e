"""The op registry: one ``OpDef`` per op, holding every fact passes and backends query.

Three dialects share the registry, told apart by the name:

* ONNX-level ops (``Conv``, ``Relu``, ...), as imported. They keep ONNX semantics with a
  few canonicalizations done at import: spatial ops carry ``layout`` ("NCHW" as
  imported, "NHWC" after ``to-nhwc``; convolution weights OIHW in NCHW, OHWI in NHWC);
  ``pads`` of 2-D ops are ``(top, left, bottom, right)`` with ``auto_pad`` resolved;
  ops that can absorb an activation carry ``activation`` in ``ACTIVATIONS``;
  ``FullyConnected`` is ours: ``y = x @ W.T + b`` with ``W`` of shape [N, K].
* ``tfl.*``: TFLite builtin operators (``tfl.conv_2d`` is ``CONV_2D``), produced by
  ``legalize-tflite``; their attributes are exactly the builtin's option fields.
* ``c.*``: the C target's own ops where it differs from TFLite (``legalize-c``).

An ``OpDef`` carries the shape function, the float reference kernel and the *traits*:

* ``layout`` (``Layout``), ``axis_attr``, ``nhwc_weights``: how ``to-nhwc`` treats the op;
* ``int8`` (``Int8Rule``) and ``fixed_output``: how ``insert-qdq`` quantizes it;
* ``memory`` (``Memory``): whether ``plan-memory`` may alias or overwrite its input;
* ``activation_attr``: the attribute holding a fused activation (``fusable_activation``
  is true for the ONNX-level ``activation`` attribute, which ``fuse-activation`` sets);
* ``macs``: the multiply-accumulates of one run, from the shapes (for reports).

Passes and backends ask these traits instead of keeping their own lists of op names.
Op families register themselves with ``define_op`` (the built-in ones are ``microlith.ops``,
one module per family); the registry loads them, like any plugin's ops, from the
``microlith.ops`` entry points the first time an op is looked up.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from microlith.ir.types import TensorType

if TYPE_CHECKING:
    from microlith.ir.core import Node

InferFn = Callable[["Node"], list[TensorType]]
Kernel = Callable[["Node", list[np.ndarray | None]], list[np.ndarray]]

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


class ShapeError(ValueError):
    """An op's inputs do not fit its attributes (raised by inference functions)."""


class NeedsConstant(ShapeError):
    """Inference needs an operand that is not constant yet (``fold-constants`` will fold it).

    The value keeps the type it was imported with until then.
    """


class Layout(enum.Enum):
    """How ``to-nhwc`` converts an op (see ``passes/to_nhwc.py``)."""

    LOGICAL = "logical"  # reads its operands in the model's own (ONNX) layout
    SPATIAL = "spatial"  # 4-D spatial op: NHWC data, weights re-laid out
    ELEMENTWISE = "elementwise"  # unary: the output keeps the input's permutation
    BROADCAST = "broadcast"  # broadcasting binary op: operands brought to one permutation
    CONCAT = "concat"  # joins operands of one permutation; ``axis`` remapped
    AXIS = "axis"  # keeps the input's permutation; ``axis_attr`` remapped
    TRANSPOSE = "transpose"  # composes with the permutation (may disappear)
    RESHAPE = "reshape"  # a reshape on the physical data when the memory order allows


class Int8Rule(enum.Enum):
    """How ``insert-qdq`` quantizes an op (the TFLite int8 spec's cases)."""

    NONE = "none"  # no int8 kernel: refused, or kept in float with --fallback float
    SAME = "same"  # operands and result share one scale and zero point (no rescaling)
    FIXED = "fixed"  # the result's parameters are fixed by the op (``fixed_output``)
    WEIGHTED = "weighted"  # per-channel symmetric weights (input 1), int32 bias (input 2)
    RESCALE = "rescale"  # the result gets its own calibrated parameters
    INDEX = "index"  # int8 input, integer (index) result with no quantization (ArgMax)


class Memory(enum.Enum):
    """What ``plan-memory`` may do with an op's output buffer."""

    NONE = "none"  # a buffer of its own
    ALIAS = "alias"  # the same bytes as input 0 (reshape-like: no code at all)
    INPLACE = "inplace"  # may overwrite input 0 when that input dies here (same size)


@dataclass(frozen=True)
class OpDef:
    """Static facts about one op."""

    name: str
    infer: InferFn
    doc: str
    inputs: tuple[int, int] = (1, 1)  # (min, max) number of inputs
    attrs: dict[str, Any] = field(default_factory=dict)  # known attributes and defaults
    outputs: int = 1  # 0: any number (e.g. tfl.split)
    kernel: Kernel | None = None  # float reference kernel (activation applied by ``float_kernel``)
    layout: Layout = Layout.LOGICAL
    axis_attr: str | None = None  # Layout.AXIS: "axis", "axes", "pads", "axes_input" (Slice)
    nhwc_weights: tuple[int, ...] | None = None  # SPATIAL: permutation of input 1 for NHWC
    int8: Int8Rule = Int8Rule.NONE
    fixed_output: tuple[float, int] | None = None  # (scale, zero point) with Int8Rule.FIXED
    int16: bool = False  # has a 16x8 kernel (int16 activations, int8 weights)
    memory: Memory = Memory.NONE
    activation_attr: str | None = None  # "activation" (ONNX level) / "fused_activation_function"
    builtin: str | None = None  # tfl.*: the TFLite builtin operator
    macs: Callable[[Node], int] | None = None  # multiply-accumulates of one run (from shapes)

    @property
    def dialect(self) -> str:
        return self.name.split(".", 1)[0] if "." in self.name else "onnx"

    @property
    def fusable_activation(self) -> bool:
        """``fuse-activation`` may fold a following Relu/Clip into this op."""
        return self.activation_attr == "activation"

    @property
    def has_int8_kernel(self) -> bool:
        return self.int8 is not Int8Rule.NONE

    def float_kernel(self) -> Kernel | None:
        """The float kernel with the fused activation (if any) applied to its results."""
        if self.kernel is None or self.activation_attr is None:
            return self.kernel
        return _with_activation(self.kernel, self.activation_attr)


OPS: dict[str, OpDef] = {}


def define_op(name: str, doc: str, *, infer: InferFn, **facts: Any) -> OpDef:
    """Register an op; ``facts`` are ``OpDef`` fields (attribute defaults are completed).

    An op with ``layout=Layout.SPATIAL`` gets a ``layout`` attribute (default "NCHW"); one
    with ``activation_attr`` gets that attribute with default "NONE".
    """
    if name in OPS:
        raise ValueError(f"op {name} registered twice")
    attrs = dict(facts.pop("attrs", None) or {})
    if facts.get("layout") is Layout.SPATIAL:
        attrs.setdefault("layout", "NCHW")
    if facts.get("activation_attr"):
        attrs.setdefault(facts["activation_attr"], "NONE")
    opdef = OpDef(name, infer, doc, attrs=attrs, **facts)
    OPS[name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    _ensure_loaded()
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None


def is_registered(name: str) -> bool:
    _ensure_loaded()
    return name in OPS


def all_ops() -> dict[str, OpDef]:
    _ensure_loaded()
    return dict(OPS)


def node_macs(node: Node) -> int:
    """Multiply-accumulates of ``node`` (0 for ops without a ``macs`` function)."""
    fn = get_op(node.op).macs
    return 0 if fn is None else int(fn(node))


def infer_types(node: Node) -> list[TensorType]:
    """Output types of ``node`` from its inputs and attributes."""
    return get_op(node.op).infer(node)


_ACTIVATION_BOUNDS: dict[str, tuple[float, float | None]] = {
    "RELU": (0.0, None),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def apply_activation(y: np.ndarray, activation: str | None) -> np.ndarray:
    """A fused activation on float ``y``: RELU ``max(y, 0)``, RELU6 ``min(max(y, 0), 6)``,
    RELU_N1_TO_1 ``min(max(y, -1), 1)``; NONE returns ``y``."""
    if activation in (None, "NONE"):
        return y
    try:
        lo, hi = _ACTIVATION_BOUNDS[activation]
    except KeyError:
        raise ValueError(f"unknown fused activation {activation!r}") from None
    if hi is None:
        return np.maximum(y, np.asarray(lo, dtype=y.dtype))
    return np.clip(y, np.asarray(lo, dtype=y.dtype), np.asarray(hi, dtype=y.dtype))


def _with_activation(fn: Kernel, attr: str) -> Kernel:
    def kernel(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        return [apply_activation(y, node.attr(attr, "NONE")) for y in fn(node, inputs)]

    kernel.__name__ = getattr(fn, "__name__", "kernel")
    kernel.__doc__ = fn.__doc__
    return kernel


_LOADED = False
ENTRY_POINT_GROUP = "microlith.ops"


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib.metadata

    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                        key=lambda e: (e.value != "microlith.ops", e.name)):
        entry.load()
    if not OPS:
        raise RuntimeError("no ops are registered: is microlith installed (pip install -e .)?")
