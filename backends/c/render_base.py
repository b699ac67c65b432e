"""Shared machinery of the C renderers: the call model, the registry, C-range helpers.

A renderer turns one target-op node and its parameter record (``node.params``, made by
``prepare`` from ``microlith.quant``) into a ``Plan``: a comment and kernel ``Call``s. A
call names the kernel, its parameter struct type and fields (flash tables for arrays),
and the tensors it reads and writes; ``render_node`` writes it as
``mlk_kernel(&<struct>, x, y);`` with the struct a ``static const`` definition. The
renderers only translate records into the C kernels' terms (loop structures, C-range
checks: shifts within [-31, 31], an int32 accumulator that cannot overflow, at most 4
broadcast loops); all the arithmetic parameters come from the record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microlith.backends.c import sanitize
from microlith.backends.c.render_context import RenderContext
from microlith.ir.core import Node, Value
from microlith.ir.types import DType
from microlith.quant.registry import is_16x8, is_integer_node, params_of

INT32_LIMIT = 1 << 31
CTYPE = {DType.INT8: "int8_t", DType.UINT8: "uint8_t", DType.INT16: "int16_t",
         DType.FLOAT32: "float"}


@dataclass(frozen=True)
class In:
    """A tensor the kernel reads: a flash table if constant, else ``(const T *)(ctx.tensor)``."""

    value: Value
    ctype: str = "int8_t"


@dataclass(frozen=True)
class Out:
    value: Value
    ctype: str = "int8_t"


@dataclass(frozen=True)
class Table:
    """A constant array (flash) referenced by a struct field."""

    hint: str
    array: np.ndarray


@dataclass(frozen=True)
class Float:
    value: float


FieldValue = int | Float | Table | str


@dataclass(frozen=True)
class Call:
    function: str
    struct: str | None  # the parameter struct type (None: the kernel takes none)
    fields: tuple[tuple[str, FieldValue], ...]
    tensors: tuple[In | Out | Table | str, ...]  # a Table: a constant read as a tensor


@dataclass(frozen=True)
class Plan:
    """What a node becomes: a comment and kernel calls."""

    comment: str
    calls: tuple[Call, ...]


Renderer = Callable[[Node, Any], Plan]
RENDERERS: dict[str, Renderer] = {}
WIDE_RENDERERS: dict[str, Renderer] = {}  # 16x8 nodes (``registry.is_16x8``)


def renders(*ops: str, wide: bool = False) -> Callable[[Renderer], Renderer]:
    table = WIDE_RENDERERS if wide else RENDERERS

    def wrap(fn: Renderer) -> Renderer:
        for op in ops:
            table[op] = fn
        return fn

    return wrap


def c_int(v: int) -> str:
    v = int(v)
    if not -INT32_LIMIT <= v < INT32_LIMIT:
        raise ValueError(f"integer parameter {v} does not fit int32")
    return "(-2147483647 - 1)" if v == -INT32_LIMIT else str(v)


def c_float(v: float) -> str:
    return f"{float(np.float32(v))!r}f"


def _field(ctx: RenderContext, node: Node, value: FieldValue) -> str:
    if isinstance(value, Table):
        return ctx.const_array(value.hint, value.array)
    if isinstance(value, Float):
        return c_float(value.value)
    if isinstance(value, str):
        return value
    return c_int(value)


def _tensor(ctx: RenderContext, arg: In | Out | Table | str) -> str:
    if isinstance(arg, Table):
        return ctx.const_array(arg.hint, arg.array)
    if isinstance(arg, In):
        if arg.value.is_constant:
            return ctx.const_array(arg.value.name, np.asarray(arg.value.data))
        return f"(const {arg.ctype} *)({ctx.tensor(arg.value)})"
    if isinstance(arg, Out):
        return f"({arg.ctype} *)({ctx.tensor(arg.value)})"
    return arg


def format_call(name: str, args: list[str], width: int = 96) -> str:
    lines, line = [], f"{name}("
    for i, text in enumerate(args):
        piece = text + (", " if i < len(args) - 1 else ");")
        if len(line) + len(piece.rstrip()) > width and line.strip():
            lines.append(line.rstrip())
            line = "    "
        line += piece
    lines.append(line.rstrip() if args else f"{name}();")
    return "\n".join(lines)


def comment(text: str) -> str:
    """A whole comment line; model strings in ``text`` went through ``sanitize`` already."""
    return "/* " + sanitize.comment(text, limit=None) + " */"


def render_plan(ctx: RenderContext, node: Node, plan: Plan) -> str:
    """The C statements of ``plan``: a comment naming the node, then one line per call."""
    body = []
    for call in plan.calls:
        args = [_tensor(ctx, t) for t in call.tensors]
        if call.struct is not None:
            fields = [(name, _field(ctx, node, value)) for name, value in call.fields]
            args.insert(0, "&" + ctx.struct(call.struct, node.name, fields))
        body.append(format_call(call.function, args))
    head = comment(f"{sanitize.comment(node.name)} ({node.op}): {plan.comment}")
    return "\n".join([head, *body])


def prepare_plan(node: Node) -> Plan:
    """The node's plan from its record (``node.params``, else prepared now); ValueError (or
    KeyError) says why it cannot be C."""
    if node.op not in RENDERERS:
        raise ValueError(f"no C kernel for op {node.op}")
    if is_16x8(node):
        if node.op not in WIDE_RENDERERS:
            raise ValueError(f"no 16x8 C kernel for op {node.op}")
        return WIDE_RENDERERS[node.op](node, params_of(node))
    if not is_integer_node(node):
        raise ValueError("float op: the C backend emits int8 kernels only (float is allowed "
                         "only at the QUANTIZE/DEQUANTIZE edges)")
    return RENDERERS[node.op](node, params_of(node))


def render_node(ctx: RenderContext, node: Node) -> str:
    return render_plan(ctx, node, prepare_plan(node))


# --------------------------------------------------------------------------- helpers


def shift_in_range(shift: int, what: str = "multiplier") -> int:
    """A shift ``mlk_mbqm`` accepts: within [-31, 31]."""
    if not -31 <= int(shift) <= 31:
        raise ValueError(f"{what} needs a shift of {shift} (outside [-31, 31])")
    return int(shift)


def shifts_in_range(shifts: np.ndarray) -> np.ndarray:
    for s in np.asarray(shifts).reshape(-1):
        shift_in_range(int(s))
    return np.asarray(shifts, np.int32)


def numel(value: Value) -> int:
    return int(np.prod(value.shape, dtype=np.int64))


def int8_values(*values: Value | None) -> None:
    """All int8, or (16x8 nodes, whose renderers reuse the int8 field lists) all int16."""
    kinds = {getattr(v, "dtype", None) for v in values}
    if kinds not in ({DType.INT8}, {DType.INT16}):
        bad = next(v for v in values if v is None or v.dtype != DType.INT8)
        raise ValueError(f"{getattr(bad, 'name', None)!r} must be int8")


def merge_dims(sizes: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims; merge dims i, i+1 when every operand has ``s_i = s_{i+1} n_{i+1}``."""
    keep = [i for i, n in enumerate(sizes) if n != 1]
    out_n: list[int] = []
    out_s: list[list[int]] = [[] for _ in strides]
    for i in keep:
        if out_n and all(s[i] * sizes[i] == o[-1] for s, o in zip(strides, out_s, strict=True)):
            out_n[-1] *= sizes[i]
            for s, o in zip(strides, out_s, strict=True):
                o[-1] = s[i]
            continue
        out_n.append(sizes[i])
        for s, o in zip(strides, out_s, strict=True):
            o.append(s[i])
    return out_n, out_s


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= int(n)
    return strides[::-1]


def broadcast_loops(out_shape: Sequence[int], shapes: Sequence[Sequence[int]]
                    ) -> list[tuple[str, int]]:
    """Fields n0..n3 and as0..as3, bs0..bs3: merged output dims and operand strides."""
    rank = len(out_shape)
    strides = []
    for shape in shapes:
        padded = [1] * (rank - len(shape)) + [int(d) for d in shape]
        contiguous = contiguous_strides(padded)
        strides.append([0 if d == 1 and n != 1 else s
                        for d, n, s in zip(padded, out_shape, contiguous, strict=True)])
    dims, merged = merge_dims([int(d) for d in out_shape], strides)
    if len(dims) > 4:
        raise ValueError(f"broadcasting {list(shapes)} needs {len(dims)} loops (at most 4)")
    pad = 4 - len(dims)
    fields = [(f"n{i}", n) for i, n in enumerate([1] * pad + dims)]
    for prefix, s in zip(("as", "bs"), merged, strict=True):
        fields += [(f"{prefix}{i}", v) for i, v in enumerate([0] * pad + s)]
    return fields
