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
from microlith.ir.types import DType

Prepare = Callable[[Node], Any]
IntegerKernel = Callable[[Any, list[np.ndarray | None]], list[np.ndarray]]


@dataclass(frozen=True)
class IntegerOp:
    prepare: Prepare
    kernel: IntegerKernel


INTEGER_OPS: dict[str, IntegerOp] = {}
#: the 16x8 kernels (int16 activations, int8 weights): used for a node whose value types
#: are int16 (``is_16x8``); data-movement ops in ``DTYPE_GENERIC`` share the int8 kernel
INTEGER_OPS_16X8: dict[str, IntegerOp] = {}
DTYPE_GENERIC = ("tfl.reshape", "tfl.pad", "tfl.padv2", "tfl.concatenation", "tfl.transpose",
                 "tfl.squeeze", "tfl.split", "tfl.split_v", "c.pad", "c.concatenation",
                 "c.transpose")
_LOADED = False
QUANTIZE_OPS = ("QuantizeLinear", "DequantizeLinear", "tfl.quantize", "tfl.dequantize")


def integer_op(*names: str, prepare: Prepare, wide: bool = False
               ) -> Callable[[IntegerKernel], IntegerKernel]:
    """Register ``kernel`` (decorated) with ``prepare`` for each op in ``names`` (``wide``:
    the 16x8 kernel of the op)."""
    table = INTEGER_OPS_16X8 if wide else INTEGER_OPS

    def wrap(kernel: IntegerKernel) -> IntegerKernel:
        for name in names:
            if name in table:
                raise ValueError(f"integer kernel for {name} registered twice")
            table[name] = IntegerOp(prepare, kernel)
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
        import microlith.quant.rsqrt  # noqa: F401
        import microlith.quant.select  # noqa: F401
        import microlith.quant.transpose_conv  # noqa: F401
        import microlith.quant.wide  # noqa: F401
        import microlith.quant.wide_activation  # noqa: F401


def integer_ops() -> dict[str, IntegerOp]:
    _ensure_loaded()
    return INTEGER_OPS


def is_integer_node(node: Node) -> bool:
    """True when the node computes on quantized integers (or converts to / from them)."""
    if node.op in QUANTIZE_OPS:  # float16 -> float32 (the float16 weight form) is float
        source = node.input(0)
        return source is None or source.dtype != DType.FLOAT16
    if any(out.quant is not None and not out.dtype.is_float for out in node.outputs):
        return True
    # an integer result of integer operands (ARG_MAX's index of int8 values, its RESHAPE)
    if not node.outputs or any(v is not None and v.dtype.is_float
                               for v in [*node.inputs, *node.outputs]):
        return False
    return any(v is not None and not v.is_constant and (
        v.quant is not None or (v.producer is not None and is_integer_node(v.producer)))
        for v in node.inputs)


def params_of(node: Node) -> Any:
    """The node's parameter record: the one ``prepare`` stored, else prepared now."""
    if node.params is not None:
        return node.params
    return lookup(node).prepare(node)


def is_16x8(node: Node) -> bool:
    """A node computing on int16 activations (QUANTIZE / DEQUANTIZE excluded: their kernel
    serves every dtype)."""
    if node.op in QUANTIZE_OPS:
        return False
    return any(v is not None and v.quant is not None and v.dtype.value == "i16"
               for v in [*node.inputs, *node.outputs])


def lookup(node: Node) -> IntegerOp:
    if is_16x8(node) and node.op not in DTYPE_GENERIC:
        integer_ops()
        wide = INTEGER_OPS_16X8.get(node.op)
        if wide is None:
            raise ValueError(f"no 16x8 (int16 activation) kernel for op {node.op}")
        return wide
    spec = integer_ops().get(node.op)
    if spec is None:
        hint = " (legalize it for a target first)" if "." not in node.op else ""
        raise ValueError(f"no integer kernel for op {node.op}{hint}")
    return spec


def run_integer(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Run one integer node on ``args`` (one array per input, None when absent)."""
    return lookup(node).kernel(params_of(node), args)
