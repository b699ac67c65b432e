"""The kernel table: op name -> numpy kernel.

A kernel is ``kernel(node, inputs) -> outputs``: it reads the node's attributes
(``node.attr`` falls back to the op's registered default), receives one array per
node input (None for an absent optional input) and returns one array per node
output. Kernels work on the arrays they are given, not on the IR types, so a
leading batch dimension larger than the typed one flows through.

Registering an op whose definition has ``fusable_activation`` wraps its kernel so
the fused ``activation`` attribute is applied to the result:

* ``RELU``: ``max(y, 0)``
* ``RELU6``: ``min(max(y, 0), 6)``
* ``RELU_N1_TO_1``: ``min(max(y, -1), 1)``
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.ir.core import Node
from microlith.ir.ops import get_op

Kernel = Callable[[Node, list[np.ndarray | None]], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {}

_ACTIVATION_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "RELU": (0.0, None),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def apply_activation(y: np.ndarray, activation: str) -> np.ndarray:
    """Apply a fused activation (see the module docstring) to ``y``; returns a new array."""
    if activation in (None, "NONE"):
        return y
    try:
        lo, hi = _ACTIVATION_BOUNDS[activation]
    except KeyError:
        raise ValueError(f"unknown fused activation {activation!r}") from None
    if hi is None:
        return np.maximum(y, np.asarray(lo, dtype=y.dtype))
    return np.clip(y, np.asarray(lo, dtype=y.dtype), np.asarray(hi, dtype=y.dtype))


def _with_activation(fn: Kernel) -> Kernel:
    def kernel(node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        activation = node.attr("activation", "NONE")
        return [apply_activation(y, activation) for y in fn(node, inputs)]

    kernel.__name__ = fn.__name__
    kernel.__doc__ = fn.__doc__
    return kernel


def register(*ops: str) -> Callable[[Kernel], Kernel]:
    """Decorator putting ``fn`` in ``KERNELS`` under each op name in ``ops``.

    The op must exist in the IR registry; ops with a fusable activation get it applied.
    """

    def wrap(fn: Kernel) -> Kernel:
        for op in ops:
            if op in KERNELS:
                raise ValueError(f"kernel for {op} registered twice")
            opdef = get_op(op)
            KERNELS[op] = _with_activation(fn) if opdef.fusable_activation else fn
        return fn

    return wrap


def need(inputs: list[np.ndarray | None], index: int) -> np.ndarray:
    """Input ``index`` of a kernel, which must be present."""
    if index >= len(inputs) or inputs[index] is None:
        raise ValueError(f"input {index} is required")
    return inputs[index]  # type: ignore[return-value]


def optional(inputs: list[np.ndarray | None], index: int) -> np.ndarray | None:
    """Input ``index`` of a kernel, or None when absent."""
    return inputs[index] if index < len(inputs) else None
