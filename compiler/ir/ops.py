"""The op registry: what each op takes, which attributes it has, how its shape is inferred.

Ops keep ONNX semantics (names, attribute meanings, broadcasting) with a few
canonicalizations done at import so passes need not re-derive them:

* spatial ops carry ``layout`` ("NCHW" as imported, "NHWC" after ``to-nhwc``);
  convolution weights are OIHW in NCHW and OHWI in NHWC;
* ``pads`` of 2-D spatial ops are ``(top, left, bottom, right)`` (ONNX order),
  ``auto_pad`` is resolved to explicit pads at import;
* producers that can fuse an activation carry ``activation`` in
  {"NONE", "RELU", "RELU6", "RELU_N1_TO_1"};
* ``FullyConnected`` is ours: ``y = x @ W.T + b`` with ``W`` of shape [N, K].

Each op's inference function returns the output types from the input types and
attributes; it raises ``ShapeError`` with a reason when the inputs do not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from microlith.ir.types import TensorType

if TYPE_CHECKING:
    from microlith.ir.core import Node

InferFn = Callable[["Node"], list[TensorType]]

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


class ShapeError(ValueError):
    """An op's inputs do not fit its attributes (raised by inference functions)."""


class NeedsConstant(ShapeError):
    """Inference needs an operand that is not constant yet (``fold-constants`` will fold it).

    The value keeps the type it was imported with until then.
    """


@dataclass(frozen=True)
class OpDef:
    """Static facts about one op."""

    name: str
    infer: InferFn
    doc: str
    inputs: tuple[int, int] = (1, 1)           # (min, max) number of inputs
    attrs: dict[str, Any] = field(default_factory=dict)  # known attributes and defaults
    layout_sensitive: bool = False
    fusable_activation: bool = False
    outputs: int = 1


OPS: dict[str, OpDef] = {}


def register_op(name: str, doc: str, *, inputs: tuple[int, int] = (1, 1),
                attrs: dict[str, Any] | None = None, layout_sensitive: bool = False,
                fusable_activation: bool = False,
                outputs: int = 1) -> Callable[[InferFn], InferFn]:
    """Decorator registering an op with its shape-inference function."""

    def wrap(fn: InferFn) -> InferFn:
        if name in OPS:
            raise ValueError(f"op {name} registered twice")
        all_attrs = dict(attrs or {})
        if layout_sensitive:
            all_attrs.setdefault("layout", "NCHW")
        if fusable_activation:
            all_attrs.setdefault("activation", "NONE")
        OPS[name] = OpDef(name, fn, doc, inputs, all_attrs, layout_sensitive,
                          fusable_activation, outputs)
        return fn

    return wrap


def get_op(name: str) -> OpDef:
    _ensure_loaded()
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}") from None


def is_registered(name: str) -> bool:
    _ensure_loaded()
    return name in OPS


def infer_types(node: Node) -> list[TensorType]:
    """Output types of ``node`` from its inputs and attributes."""
    return get_op(node.op).infer(node)


def _ensure_loaded() -> None:
    if not OPS:
        import microlith.ir.opdefs  # noqa: F401  (registers the ops)
        import microlith.ir.opdefs_quant  # noqa: F401
