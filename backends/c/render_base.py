"""Shared machinery of the C renderers: the call model, the registry, parameter helpers.

See ``microlith.backends.c.render_ops`` for the maths of every op and the emitter contract.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from microlith.backends.c import sanitize
from microlith.backends.c.render_context import RenderContext, Renderer
from microlith.interpreter import fixed_point as fp
from microlith.interpreter.int8_common import (
    activation_range,
    f32,
)
from microlith.interpreter.int8_graph_kernels import is_integer_node
from microlith.ir.core import Node, Value
from microlith.ir.types import DType, QuantParams

# Element-wise int8 -> int8 nodes with at least this many output elements read a 256-byte
# table instead of computing: always for the fixed-point transcendental ones (a load instead
# of ~100 instructions per element), from the table's own size for the cheap ones.
LUT_MIN_ELEMENTS: dict[str, int] = {"Sigmoid": 1, "Tanh": 1, "HardSwish": 1, "Relu": 256,
                                    "LeakyRelu": 256, "QuantizeLinear": 256}
INT32_LIMIT = 1 << 31
RESHAPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity")
CTYPE = {DType.INT8: "int8_t", DType.UINT8: "uint8_t", DType.FLOAT32: "float"}


# --------------------------------------------------------------------------- call model


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
    hint: str
    array: np.ndarray


@dataclass(frozen=True)
class Float:
    value: float


Arg = In | Out | Table | Float | int | str


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Plan:
    """What a node becomes: a comment and kernel calls (prepared without a context)."""

    comment: str
    calls: tuple[Call, ...]


Prepare = Callable[[Node], Plan]
RENDERERS: dict[str, Renderer] = {}
_PREPARE: dict[str, Prepare] = {}


def c_int(v: int) -> str:
    v = int(v)
    if not -INT32_LIMIT <= v < INT32_LIMIT:
        raise ValueError(f"integer parameter {v} does not fit int32")
    return "(-2147483647 - 1)" if v == -INT32_LIMIT else str(v)


def c_float(v: float) -> str:
    return f"{float(np.float32(v))!r}f"


def _arg(ctx: RenderContext, arg: Arg) -> str:
    if isinstance(arg, In):
        if arg.value.is_constant:
            return ctx.const_array(arg.value.name, np.asarray(arg.value.data))
        return f"(const {arg.ctype} *)({ctx.tensor(arg.value)})"
    if isinstance(arg, Out):
        return f"({arg.ctype} *)({ctx.tensor(arg.value)})"
    if isinstance(arg, Table):
        return ctx.const_array(arg.hint, arg.array)
    if isinstance(arg, Float):
        return c_float(arg.value)
    if isinstance(arg, str):
        return arg
    return c_int(arg)


def _format_call(name: str, args: list[str], width: int = 96) -> str:
    lines, line = [], f"{name}("
    for i, text in enumerate(args):
        piece = text + (", " if i < len(args) - 1 else ");")
        if len(line) + len(piece.rstrip()) > width and line.strip():
            lines.append(line.rstrip())
            line = "    "
        line += piece
    lines.append(line.rstrip() if args else f"{name}();")
    return "\n".join(lines)


def _comment(text: str) -> str:
    """A whole comment line; model strings in ``text`` went through ``sanitize`` already."""
    return "/* " + sanitize.comment(text, limit=None) + " */"


def _register(*ops: str) -> Callable[[Prepare], Prepare]:
    def wrap(prepare: Prepare) -> Prepare:
        def render(ctx: RenderContext, node: Node) -> str:
            plan = prepare(node)
            body = [_format_call(c.function, [_arg(ctx, a) for a in c.args]) for c in plan.calls]
            head = _comment(f"{sanitize.comment(node.name)} ({node.op}): {plan.comment}")
            return "\n".join([head, *body])

        for op in ops:
            RENDERERS[op] = render
            _PREPARE[op] = prepare
        return prepare

    return wrap


def check_c_supported(node: Node) -> str | None:
    """Why ``node`` cannot be emitted as C (None if it can)."""
    if node.op not in RENDERERS:
        return f"no C kernel for op {node.op}"
    if node.op not in ("QuantizeLinear", "DequantizeLinear") and not is_integer_node(node):
        return ("float op: the C backend emits int8 kernels only (float is allowed only at "
                "the QuantizeLinear/DequantizeLinear edges)")
    try:
        _PREPARE[node.op](node)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        return str(exc)
    return None


def scratch_bytes(node: Node) -> int:
    """Scratch memory a node's kernel needs: none of them needs any."""
    return 0


# --------------------------------------------------------------------------- helpers


def _quant(value: Value | None) -> QuantParams:
    if value is None or value.quant is None:
        raise ValueError(f"value {getattr(value, 'name', None)!r} is not quantized")
    return value.quant


def _tensor_q(value: Value | None) -> tuple[float, int]:
    q = _quant(value)
    if q.axis is not None and len(q.scale) != 1:
        raise ValueError(f"{value.name!r} is quantized per axis; the kernel needs per tensor")
    return float(f32(q.scale[0])), int(q.zero_point[0])


def _int8(*values: Value | None) -> None:
    for v in values:
        if v is None or v.dtype != DType.INT8:
            raise ValueError(f"{getattr(v, 'name', None)!r} must be int8")


def _qm(real: float) -> tuple[int, int]:
    """``quantize_multiplier`` with the shift range the C ``mlk_mbqm`` accepts."""
    m, s = fp.quantize_multiplier(real)
    if not -31 <= s <= 31:
        raise ValueError(f"multiplier {real!r} needs a shift of {s} (outside [-31, 31])")
    return m, s


def _numel(value: Value) -> int:
    return int(math.prod(value.shape))


def _act(node: Node, y_scale: float, y_zp: int) -> tuple[int, int]:
    return activation_range(node.attr("activation", "NONE"), y_scale, y_zp)


def _per_channel(q: QuantParams, n: int) -> list[float]:
    scales = list(q.scale)
    if len(scales) == 1:
        return scales * n
    if len(scales) != n:
        raise ValueError(f"{len(scales)} weight scales for {n} output channels")
    return scales


def _multiplier_tables(name: str, x_scale: float, w_scales: Sequence[float],
                       y_scale: float) -> tuple[Table, Table]:
    pairs = [_qm(x_scale * float(f32(s)) / y_scale) for s in w_scales]
    return (Table(f"{name}_mult", np.array([p[0] for p in pairs], np.int32)),
            Table(f"{name}_shift", np.array([p[1] for p in pairs], np.int32)))


def _biases(node: Node, w2d: np.ndarray, x_zp: int) -> tuple[np.ndarray, np.ndarray]:
    """(bias, bias - x_zp * sum(w)) as int32, after checking the accumulator cannot overflow."""
    b = node.input(2)
    units = w2d.shape[0]
    if b is not None and (not b.is_constant or b.dtype != DType.INT32):
        raise ValueError("the bias must be a constant int32 tensor")
    bias = np.zeros(units, np.int64) if b is None else np.asarray(b.data, np.int64).reshape(units)
    w = w2d.astype(np.int64)
    bound = np.abs(bias) + 256 * np.abs(w).sum(axis=1)
    if bound.size and int(bound.max()) >= INT32_LIMIT:
        raise ValueError("the int32 accumulator could overflow (|bias| + 256 sum|w| >= 2**31)")
    return bias.astype(np.int32), (bias - x_zp * w.sum(axis=1)).astype(np.int32)


def _merge(sizes: list[int], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
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


def _contiguous(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= int(n)
    return strides[::-1]


def _broadcast(out_shape: Sequence[int], shapes: Sequence[Sequence[int]]) -> list[int]:
    """Output dims then each operand's strides, merged and left-padded to 4 dims."""
    rank = len(out_shape)
    strides = []
    for shape in shapes:
        padded = [1] * (rank - len(shape)) + [int(d) for d in shape]
        contiguous = _contiguous(padded)
        strides.append([0 if d == 1 and n != 1 else s
                        for d, n, s in zip(padded, out_shape, contiguous, strict=True)])
    dims, merged = _merge([int(d) for d in out_shape], strides)
    if len(dims) > 4:
        raise ValueError(f"broadcasting {list(shapes)} needs {len(dims)} loops (at most 4)")
    pad = 4 - len(dims)
    return [*([1] * pad + dims), *(v for s in merged for v in [0] * pad + s)]
