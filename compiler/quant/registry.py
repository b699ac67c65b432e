"""Integer target ops: op name -> (prepare, kernel), and running one integer node.

``prepare(node) -> record`` reads the quantization parameters from the node's value types
(as TFLite-Micro's Prepare reads them from the flatbuffer) and its attributes; the record
is a frozen dataclass. ``kernel(record, arrays) -> arrays`` is the integer-exact kernel.
The ``prepare`` pass stores each record in ``node.params``; ``run_integer`` uses it when
present and prepares on the fly otherwise (the result is the same: records are pure
functions of the node).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from microlith.ir.core import Node

Prepare = Callable[[Node], Any]
IntegerKernel = Callable[[Any, list[np.ndarray | None]], list[np.ndarray]]


@dataclass(frozen=True)
class IntegerOp:
    prepare: Prepare
    kernel: IntegerKernel


INTEGER_OPS: dict[str, IntegerOp] = {}
_LOADED = False
QUANTIZE_OPS = ("QuantizeLinear", "DequantizeLinear", "tfl.quantize", "tfl.dequantize")


def integer_op(*names: str, prepare: Prepare) -> Callable[[IntegerKernel], IntegerKernel]:
    """Register ``kernel`` (decorated) with ``prepare`` for each op in ``names``."""

    def wrap(kernel: IntegerKernel) -> IntegerKernel:
        for name in names:
            if name in INTEGER_OPS:
                raise ValueError(f"integer kernel for {name} registered twice")
            INTEGER_OPS[name] = IntegerOp(prepare, kernel)
        return kernel

    return wrap


def _ensure_loaded() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        import microlith.quant.activation  # noqa: F401  (each family registers its ops)
        import microlith.quant.conv  # noqa: F401
        import microlith.quant.data  # noqa: F401
        import microlith.quant.elementwise  # noqa: F401
        import microlith.quant.pool  # noqa: F401
        import microlith.quant.resize  # noqa: F401
        import microlith.quant.select  # noqa: F401
        import microlith.quant.transpose_conv  # noqa: F401


def integer_ops() -> dict[str, IntegerOp]:
    _ensure_loaded()
    return INTEGER_OPS


def is_integer_node(node: Node) -> bool:
    """True when the node computes on quantized integers (or converts to / from them)."""
    if node.op in QUANTIZE_OPS:
        return True
    return any(out.quant is not None and not out.dtype.is_float for out in node.outputs)


def params_of(node: Node) -> Any:
    """The node's parameter record: the one ``prepare`` stored, else prepared now."""
    if node.params is not None:
        return node.params
    return lookup(node).prepare(node)


def lookup(node: Node) -> IntegerOp:
    spec = integer_ops().get(node.op)
    if spec is None:
        hint = " (legalize it for a target first)" if "." not in node.op else ""
        raise ValueError(f"no integer kernel for op {node.op}{hint}")
    return spec


def run_integer(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one integer node on ``args`` (one array per input, None when absent)."""
    return lookup(node).kernel(params_of(node), args)
