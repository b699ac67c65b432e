"""Per-op C renderers of the C backend: one IR node -> calls of ``microlith_kernels.h``.

Every parameter is computed here, at compile time, exactly as the integer interpreter
(``compiler.interpreter.int8_graph_kernels`` -> ``int8_ops``) computes it, so the C is
byte-identical to it and to TFLite-Micro. Scales are float32 values (``f32``); ``QM`` is
``fixed_point.quantize_multiplier`` (``real ~= m 2**(s-31)``); ``MBQM`` is TFLite's
``MultiplyByQuantizedMultiplier`` (double rounding); ``act`` is ``activation_range``.

* Conv (OHWI, groups) / depthwise (``group == C_in``, weights re-laid out as TFLite's
  ``[KH][KW][C*M]``) / FullyConnected (also 1x1 stride-1 convolutions, over the pixels):
  ``y = clamp(z_y + MBQM(b + sum (x - z_x) w, QM(s_x s_w[c] / s_y)), act)``; out-of-image
  taps are skipped (= an explicit ``z_x`` border); interior windows use the folded bias
  ``b - z_x sum w`` (exact: refused when ``|b| + 256 sum|w|`` can reach 2**31).
* MaxPool / AveragePool: SAME/VALID as ``tflite_padding`` decides (taps outside skipped,
  average over the in-image taps) else an explicit border: -128 (= skipped) for max, ``z_x``
  for average over all ``KH KW`` taps; ``(acc +- n/2) / n``; clamp to ``act``.
* GlobalAveragePool / ReduceMean: ``z_y + MBQM(sum x - z_x n, m', s')`` with ``1/n`` folded
  into ``QM(s_x / s_y)``: ``k = min(floor(log2 n), 32, 31 + s)``, ``m' = (m << k) // n``.
* Add / Sub: ``x' = MBQM((x - z) 2**20, QM(s / 2 max(s_a, s_b)))``,
  ``y = z_y + MBQM(a' +- b', QM(2 max / (2**20 s_y)))``; Mul: ``MBQM((a-z_a)(b-z_b),
  QM(s_a s_b / s_y))``; Max / Min: no rescaling; numpy broadcasting up to 4 merged dims.
* Relu: ``clamp(z_y + MBQM(x - z_x, QM(s_x/s_y)), max(-128, z_y), 127)``; LeakyRelu: the
  identity / alpha multipliers by the sign of ``x - z_x``; HardSwish: TFLite's int16 fixed
  point; Sigmoid / Tanh: gemmlowp ``logistic`` / ``tanh`` of ``MBQM(x - z_x, frexp(s_x
  2**27))`` saturating outside the input radius. Element-wise int8 -> int8 ops with at least
  ``LUT_MIN_ELEMENTS[op]`` elements become a 256-entry table made by the interpreter itself.
* Softmax (last axis, output 1/256, -128): ``exp_on_negative_values`` of ``SRDHM((x - max)
  2**L, m)`` with ``(m, L) = PreprocessSoftmaxScaling(1, s_x, 5)``, sum, ``GetReciprocal``.
* QuantizeLinear float -> int: ``clamp(round(x / s) + z)`` in float32; int -> int:
  ``clamp(z_y + MBQM(x - z_x, QM(s_x / s_y)))``; DequantizeLinear: ``s (x - z)`` in float32.
* Pad (fill: ``z_y`` or the quantized ``value``), Concat (+ a RELU / RELU6 applied on the
  output parameters), Transpose, Reshape (nothing when aliased, else ``memmove``): bytes.

Contract with the emitter: a renderer returns a comment line and kernel calls (no
declarations, no braces) for a function body. It calls ``ctx.tensor`` only for non-constant
values and casts the expression (``(const int8_t *)(expr)``, ``(float *)(expr)``, ...);
Reshape compares ``ctx.tensor(x)`` and ``ctx.tensor(y)`` as strings to see an alias. Every
constant read (weights, folded biases, multiplier tables, constant operands) is declared
through ``ctx.const_array``, so constant values need no storage of their own. No renderer
needs scratch. Element-wise kernels accept an output aliasing input 0 exactly; the others
need disjoint buffers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from backends.c.render_context import RenderContext, Renderer
from backends.tflite.padding import tflite_padding
from compiler.interpreter import fixed_point as fp
from compiler.interpreter import int8_ops as q8
from compiler.interpreter.int8_common import (
    activation_range,
    f32,
    round_half_away_f,
    spatial_geometry,
)
from compiler.interpreter.int8_graph_kernels import INT8_GRAPH_KERNELS, is_integer_node
from compiler.ir.core import Node, Value
from compiler.ir.types import DType, QuantParams

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
    return "/* " + text.replace("*/", "* /") + " */"


def _register(*ops: str) -> Callable[[Prepare], Prepare]:
    def wrap(prepare: Prepare) -> Prepare:
        def render(ctx: RenderContext, node: Node) -> str:
            plan = prepare(node)
            body = [_format_call(c.function, [_arg(ctx, a) for a in c.args]) for c in plan.calls]
            return "\n".join([_comment(f"{node.name} ({node.op}): {plan.comment}"), *body])

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


# --------------------------------------------------------------------------- convolutions


@_register("Conv")
def _conv(node: Node) -> Plan:
    x, w, y = node.inputs[0], node.inputs[1], node.output
    _int8(x, w, y)
    if node.attr("layout", "NCHW") != "NHWC" or x.type.rank != 4:
        raise ValueError("the C convolution expects a 4-D NHWC input (run to-nhwc)")
    if not w.is_constant:
        raise ValueError("convolution weights must be constant")
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    out_c, kh, kw, cg = w.shape
    batches, in_h, in_w, in_c = x.shape
    _, out_h, out_w, _ = y.shape
    group = int(node.attr("group", 1))
    sh, sw = node.attr("strides", (1, 1))
    dh, dw = node.attr("dilations", (1, 1))
    top, left, _, _ = node.attr("pads", (0, 0, 0, 0))
    if min(top, left) < 0 or in_c != cg * group or out_c % group:
        raise ValueError(f"unsupported convolution geometry (pads, groups {group})")
    lo, hi = _act(node, sy, zy)
    mult, shift = _multiplier_tables(node.name, sx, _per_channel(_quant(w), out_c), sy)
    data = np.asarray(w.data)
    bias, folded = _biases(node, data.reshape(out_c, -1), zx)
    tables = (Table(w.name, data), Table(f"{node.name}_bias", bias),
              Table(f"{node.name}_bias_folded", folded), mult, shift)
    geometry = (sh, sw, dh, dw, top, left)
    text = f"{kh}x{kw} stride {sh}x{sw} dilation {dh}x{dw} pad {top},{left}, "
    if group > 1 and group == in_c and cg == 1:  # weights as [KH][KW][C*M] (TFLite's)
        tables = (Table(w.name, np.ascontiguousarray(data.reshape(out_c, kh * kw).T)),
                  *tables[1:])
        call = Call("mlk_depthwise_conv2d_i8", (In(x), *tables, Out(y), batches, in_h, in_w,
                                                in_c, out_h, out_w, out_c // in_c, kh, kw,
                                                *geometry, zx, zy, lo, hi))
        return Plan(f"depthwise {text}x{out_c // in_c}", (call,))
    if (kh, kw, sh, sw, group) == (1, 1, 1, 1, 1) and (in_h, in_w) == (out_h, out_w):
        # pointwise: a fully-connected layer over the pixels (no pads: same size)
        call = Call("mlk_fully_connected_i8", (In(x), tables[0], tables[2], mult, shift, Out(y),
                                               batches * in_h * in_w, in_c, out_c, zy, lo, hi))
        return Plan(f"pointwise {in_c}->{out_c}", (call,))
    call = Call("mlk_conv2d_i8", (In(x), *tables, Out(y), batches, in_h, in_w, in_c, out_h,
                                  out_w, out_c, kh, kw, *geometry, group, zx, zy, lo, hi))
    return Plan(f"{text}{in_c}->{out_c} groups {group}", (call,))


@_register("FullyConnected")
def _fully_connected(node: Node) -> Plan:
    x, w, y = node.inputs[0], node.inputs[1], node.output
    _int8(x, w, y)
    if not w.is_constant or w.type.rank != 2:
        raise ValueError("fully-connected weights must be a constant [units, depth] tensor")
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    units, depth = w.shape
    data = np.asarray(w.data)
    _, folded = _biases(node, data, zx)
    mult, shift = _multiplier_tables(node.name, sx, _per_channel(_quant(w), units), sy)
    lo, hi = _act(node, sy, zy)
    call = Call("mlk_fully_connected_i8", (In(x), Table(w.name, data),
                                           Table(f"{node.name}_bias_folded", folded), mult,
                                           shift, Out(y), _numel(x) // depth, depth, units, zy,
                                           lo, hi))
    return Plan(f"{depth}->{units}", (call,))


# --------------------------------------------------------------------------- pooling / mean


@_register("MaxPool", "AveragePool")
def _pool(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    if node.attr("layout", "NCHW") != "NHWC" or x.type.rank != 4:
        raise ValueError("the C pooling expects a 4-D NHWC input (run to-nhwc)")
    (_, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    kh, kw = node.attr("kernel_shape")
    sh, sw = node.attr("strides", (1, 1))
    pads = tuple(node.attr("pads", (0, 0, 0, 0)))
    batches, in_h, in_w, ch = x.shape
    _, out_h, out_w, _ = y.shape
    padding = tflite_padding((in_h, in_w), (kh, kw), (sh, sw), (1, 1), pads)
    if node.op == "AveragePool" and node.attr("count_include_pad", 0) and any(pads):
        padding = None
    if padding is None:  # an explicit border (-128 for max: the same as skipping it)
        (top, left), count_border = pads[:2], int(node.op == "AveragePool")
    else:
        (_, (top, left)), count_border = spatial_geometry(padding, (in_h, in_w), (kh, kw),
                                                          (sh, sw)), 0
    if kh * kw >= 1 << 22:
        raise ValueError("pooling window too large for an int32 sum")
    lo, hi = _act(node, sy, zy)
    common = (Out(y), batches, in_h, in_w, ch, out_h, out_w, kh, kw, sh, sw, top, left)
    mode = padding or f"border {pads}"
    if node.op == "MaxPool":
        return Plan(f"{kh}x{kw} stride {sh}x{sw} {mode}",
                    (Call("mlk_max_pool2d_i8", (In(x), *common, lo, hi)),))
    return Plan(f"{kh}x{kw} stride {sh}x{sw} {mode}",
                (Call("mlk_avg_pool2d_i8", (In(x), *common, count_border, zx, lo, hi)),))


@_register("GlobalAveragePool", "ReduceMean")
def _mean(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    rank = x.type.rank
    if node.op == "GlobalAveragePool":
        if node.attr("layout", "NCHW") != "NHWC" or rank != 4:
            raise ValueError("the C global pooling expects a 4-D NHWC input (run to-nhwc)")
        axes = [1, 2]
    else:
        axes = node.attr("axes")
        axes = list(range(rank)) if axes is None else sorted({a % rank for a in axes})
    count = math.prod(x.shape[a] for a in axes)
    if count == 0:
        raise ValueError("mean over an empty axis")
    mult, shift = fp.quantize_multiplier(sx / sy)
    k = min(count.bit_length() - 1, 32, 31 + shift)
    mult, shift = int(fp.wrap_int32((mult << k) // count)), shift - k
    if not -31 <= shift <= 31:
        raise ValueError(f"mean multiplier shift {shift} outside [-31, 31]")
    strides = _contiguous(x.shape)
    groups: list[list[int]] = [[], []]  # (size, stride) of kept / reduced runs
    previous = None
    for axis, (n, s) in enumerate(zip(x.shape, strides, strict=True)):
        reduced = int(axis in axes)
        if n == 1:
            continue
        if previous == reduced:
            groups[reduced][-2] *= n
            groups[reduced][-1] = s
        else:
            groups[reduced] += [n, s]
        previous = reduced
    if len(groups[0]) > 4 or len(groups[1]) > 4:
        raise ValueError(f"mean over axes {axes} of {x.shape} needs more than 2+2 loops")
    kept = [1, 0] * (2 - len(groups[0]) // 2) + groups[0]
    red = groups[1] + [1, 0] * (2 - len(groups[1]) // 2)
    zp_count = int(fp.wrap_int32(zx * count))
    call = Call("mlk_mean_i8", (In(x), Out(y), *kept, *red, zp_count, mult, shift, zy))
    return Plan(f"axes {axes}, {count} elements", (call,))


# --------------------------------------------------------------------------- element-wise


def _binary_operands(node: Node) -> tuple[Value, Value, Value, list[int]]:
    a, b, y = node.inputs[0], node.inputs[1], node.output
    _int8(a, b, y)
    return a, b, y, _broadcast(y.shape, [a.shape, b.shape])


@_register("Add", "Sub")
def _add_sub(node: Node) -> Plan:
    a, b, y, loops = _binary_operands(node)
    (sa, za), (sb, zb), (sy, zy) = _tensor_q(a), _tensor_q(b), _tensor_q(y)
    twice_max = 2.0 * max(sa, sb)
    (ma, sha), (mb, shb), (my, shy) = (
        fp.quantize_multiplier_smaller_than_one(r)
        for r in (sa / twice_max, sb / twice_max, twice_max / ((1 << 20) * sy)))
    lo, hi = _act(node, sy, zy)
    sign = 1 if node.op == "Add" else -1
    call = Call("mlk_add_sub_i8", (In(a), In(b), Out(y), sign, *loops, za, ma, sha, zb, mb, shb,
                                   my, shy, zy, lo, hi))
    return Plan(f"{a.shape} {'+' if sign > 0 else '-'} {b.shape}", (call,))


@_register("Mul")
def _mul(node: Node) -> Plan:
    a, b, y, loops = _binary_operands(node)
    (sa, za), (sb, zb), (sy, zy) = _tensor_q(a), _tensor_q(b), _tensor_q(y)
    m, s = _qm(sa * sb / sy)
    lo, hi = _act(node, sy, zy)
    call = Call("mlk_mul_i8", (In(a), In(b), Out(y), *loops, za, zb, m, s, zy, lo, hi))
    return Plan(f"{a.shape} * {b.shape}", (call,))


@_register("Max", "Min")
def _extremum(node: Node) -> Plan:
    a, b, y, loops = _binary_operands(node)
    call = Call("mlk_extremum_i8", (In(a), In(b), Out(y), int(node.op == "Max"), *loops))
    return Plan(f"{a.shape}, {b.shape}", (call,))


def _lut(node: Node) -> Call | None:
    """A 256-entry table of the interpreter's own kernel, for int8 -> int8 nodes big enough."""
    x, y = node.inputs[0], node.output
    if (_numel(y) < LUT_MIN_ELEMENTS.get(node.op, 256) or x.dtype != DType.INT8
            or y.dtype != DType.INT8):
        return None
    table = INT8_GRAPH_KERNELS[node.op](node, [np.arange(-128, 128, dtype=np.int8)])[0]
    return Call("mlk_lut_i8", (In(x), Out(y), _numel(y),
                               Table(f"{node.name}_lut", np.asarray(table, np.int8))))


def _unary(node: Node) -> tuple[Value, Value, float, int, float, int]:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    (sx, zx), (sy, zy) = _tensor_q(x), _tensor_q(y)
    return x, y, sx, zx, sy, zy


def _with_lut(node: Node, comment: str, call: Call) -> Plan:
    table = _lut(node)
    return Plan(f"{comment} (table)", (table,)) if table else Plan(comment, (call,))


@_register("Relu")
def _relu(node: Node) -> Plan:
    x, y, sx, zx, sy, zy = _unary(node)
    m, s = _qm(sx / sy)
    return _with_lut(node, "relu", Call("mlk_relu_i8", (In(x), Out(y), _numel(y), zx, m, s,
                                                        zy, max(-128, zy), 127)))


@_register("LeakyRelu")
def _leaky_relu(node: Node) -> Plan:
    x, y, sx, zx, sy, zy = _unary(node)
    alpha = float(f32(float(node.attr("alpha"))))
    m_alpha, s_alpha = _qm(sx * alpha / sy)
    m_id, s_id = _qm(sx / sy)
    if abs(m_alpha) >= INT32_LIMIT:
        raise ValueError(f"leaky-relu alpha {alpha} gives an unrepresentable multiplier")
    call = Call("mlk_leaky_relu_i8", (In(x), Out(y), _numel(y), zx, m_id, s_id, abs(m_alpha),
                                      s_alpha, int(m_alpha < 0), zy))
    return _with_lut(node, f"alpha {alpha}", call)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """``QuantizeMultiplier`` then ``DownScaleInt32ToInt16Multiplier`` (as ``hard_swish``)."""
    m32, exponent = fp.quantize_multiplier(real)
    return (32767 if m32 >= fp.INT32_MAX - (1 << 15) else (m32 + (1 << 15)) >> 16), exponent


@_register("HardSwish")
def _hard_swish(node: Node) -> Plan:
    x, y, sx, zx, sy, zy = _unary(node)
    hires = float(f32(1.0 / 128.0) * f32(sx))
    relu_scale = float(f32(3.0) / f32(32768.0))
    out_m, out_exp = _int16_multiplier(hires / sy)
    relu_m, relu_exp = _int16_multiplier(hires / relu_scale)
    if out_exp > 0 or relu_exp > 16:
        raise ValueError("hard-swish multipliers out of the supported range (TFLM refuses)")
    call = Call("mlk_hard_swish_i8", (In(x), Out(y), _numel(y), zx, zy, out_m, out_exp, relu_m,
                                      relu_exp))
    return _with_lut(node, "hard-swish", call)


@_register("Sigmoid", "Tanh")
def _sigmoid_tanh(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    sx, zx = _tensor_q(x)
    mult, shift = fp.frexp_multiplier(sx * float(1 << 27))
    radius = fp.calculate_input_radius(4, shift, 31)
    if radius > 0 and not -31 <= shift <= 30:
        raise ValueError(f"input scale {sx} out of the supported range")
    fn = "mlk_logistic_i8" if node.op == "Sigmoid" else "mlk_tanh_i8"
    call = Call(fn, (In(x), Out(y), _numel(y), zx, mult, shift, radius))
    return _with_lut(node, f"input radius {radius}", call)


@_register("Softmax")
def _softmax(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    rank = x.type.rank
    if node.attr("axis", -1) % rank != rank - 1:
        raise ValueError(f"softmax over axis {node.attr('axis')} is not the last axis")
    sx, _ = _tensor_q(x)
    sy, zy = _tensor_q(y)
    if zy != -128 or f32(sy) != f32(1.0 / 256.0):
        raise ValueError("int8 softmax needs output scale 1/256 and zero point -128")
    mult, left_shift = fp.preprocess_softmax_scaling(1.0, sx, 5)
    diff_min = -fp.calculate_input_radius(5, left_shift, 31)
    depth = x.shape[-1]
    call = Call("mlk_softmax_i8", (In(x), Out(y), _numel(x) // depth, depth, mult, left_shift,
                                   diff_min))
    return Plan(f"rows of {depth}", (call,))


# --------------------------------------------------------------------------- quantize


@_register("QuantizeLinear")
def _quantize(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    sy, zy = _tensor_q(y)
    if y.dtype not in (DType.INT8, DType.UINT8):
        raise ValueError(f"quantize to {y.dtype} is not supported (int8 / uint8)")
    out = Out(y, CTYPE[y.dtype])
    if x.dtype == DType.FLOAT32:
        fn = f"mlk_quantize_f32_{'i8' if y.dtype == DType.INT8 else 'u8'}"
        return Plan("float -> int", (Call(fn, (In(x, "float"), out, _numel(y), Float(sy), zy)),))
    pair = (x.dtype, y.dtype)
    names = {(DType.INT8, DType.INT8): "i8_i8", (DType.INT8, DType.UINT8): "i8_u8",
             (DType.UINT8, DType.INT8): "u8_i8"}
    if pair not in names:
        raise ValueError(f"requantize {x.dtype} -> {y.dtype} is not supported")
    sx, zx = _tensor_q(x)
    m, s = _qm(sx / sy)
    call = Call(f"mlk_requantize_{names[pair]}", (In(x, CTYPE[x.dtype]), out, _numel(y), zx, m,
                                                  s, zy))
    if pair == (DType.INT8, DType.INT8):
        return _with_lut(node, "requantize", call)
    return Plan("requantize", (call,))


@_register("DequantizeLinear")
def _dequantize(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    if x.dtype not in (DType.INT8, DType.UINT8) or y.dtype != DType.FLOAT32:
        raise ValueError(f"dequantize {x.dtype} -> {y.dtype} is not supported")
    sx, zx = _tensor_q(x)
    fn = f"mlk_dequantize_{'i8' if x.dtype == DType.INT8 else 'u8'}_f32"
    return Plan("int -> float", (Call(fn, (In(x, CTYPE[x.dtype]), Out(y, "float"), _numel(y),
                                          Float(sx), zx)),))


# --------------------------------------------------------------------------- data movement


def _render_reshape(ctx: RenderContext, node: Node) -> str:
    x, y = node.inputs[0], node.output
    head = _comment(f"{node.name} ({node.op}): {x.shape} -> {y.shape}")
    if x.is_constant:
        source = ctx.const_array(x.name, np.asarray(x.data))
    else:
        source = ctx.tensor(x)
        if source == ctx.tensor(y):
            return head[:-3] + "; aliased, nothing to do */"
    return f"{head}\nmlk_copy({ctx.tensor(y)}, {source}, {y.type.nbytes}u);"


def _prepare_reshape(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    if x.type.nbytes != y.type.nbytes:
        raise ValueError(f"reshape changes the size ({x.type.nbytes} -> {y.type.nbytes} bytes)")
    return Plan("reshape", ())


for _op in RESHAPES:
    RENDERERS[_op] = _render_reshape
    _PREPARE[_op] = _prepare_reshape


@_register("Transpose")
def _transpose(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    rank = x.type.rank
    perm = node.attr("perm") or tuple(reversed(range(rank)))
    in_strides = _contiguous(x.shape)
    dims, (strides,) = _merge([int(n) for n in y.shape], [[in_strides[p] for p in perm]])
    if len(dims) > 6:
        raise ValueError(f"transpose needs {len(dims)} loops (at most 6)")
    pad = 6 - len(dims)
    call = Call("mlk_transpose_i8", (In(x), Out(y), *([1] * pad + dims), *([0] * pad + strides)))
    return Plan(f"perm {tuple(perm)}", (call,))


@_register("Pad")
def _pad(node: Node) -> Plan:
    x, y = node.inputs[0], node.output
    _int8(x, y)
    if node.attr("mode", "constant") != "constant":
        raise ValueError(f"pad mode {node.attr('mode')!r} is not supported (constant only)")
    pads = [int(p) for p in node.attr("pads")]
    rank = len(pads) // 2
    if min(pads, default=0) < 0:
        raise ValueError("negative pads (cropping) are not supported")
    sy, zy = _tensor_q(y)
    value = float(node.attr("value", 0.0))
    fill = zy
    if value != 0.0:
        fill = int(np.clip(q8.quantize(np.array([value], np.float32), y_scale=sy,
                                       y_zero_point=zy)[0], -128, 127))
    dims = [[int(x.shape[i]), pads[i], pads[i + rank]] for i in range(rank)]
    merged: list[list[int]] = []
    for d, before, after in reversed(dims):  # fold unpadded inner dims into their outer one
        if merged and merged[0][1] == merged[0][2] == 0:
            inner = merged.pop(0)[0]
            merged.insert(0, [d * inner, before * inner, after * inner])
        else:
            merged.insert(0, [d, before, after])
    if len(merged) > 4:
        raise ValueError(f"pad of rank {rank} needs more than 4 loops")
    merged = [[1, 0, 0]] * (4 - len(merged)) + merged
    sizes, befores = [m[0] for m in merged], [m[1] for m in merged]
    outs = [m[0] + m[1] + m[2] for m in merged]
    call = Call("mlk_pad_i8", (In(x), Out(y), *sizes, *befores, *outs, fill))
    return Plan(f"pads {pads} fill {fill}", (call,))


@_register("Concat")
def _concat(node: Node) -> Plan:
    y = node.output
    inputs = [v for v in node.inputs if v is not None]
    _int8(y, *inputs)
    rank = y.type.rank
    axis = int(node.attr("axis")) % rank
    outer = math.prod(y.shape[:axis])
    out_inner = math.prod(y.shape[axis:])
    calls, offset = [], 0
    for v in inputs:
        in_inner = math.prod(v.shape[axis:])
        calls.append(Call("mlk_concat_i8", (In(v), Out(y), outer, in_inner, out_inner, offset)))
        offset += in_inner
    activation = node.attr("activation", "NONE")
    sy, zy = _tensor_q(y)
    if activation == "RELU":  # the TFLite backend emits a RELU with the output's parameters
        m, s = _qm(sy / sy)
        calls.append(Call("mlk_relu_i8", (In(y), Out(y), _numel(y), zy, m, s, zy,
                                          max(-128, zy), 127)))
    elif activation == "RELU6":  # TFLite-Micro RELU6: clamp to [z, z + round(6 / s)]
        six = int(round_half_away_f(f32(6.0) / f32(sy))) + zy
        calls.append(Call("mlk_clamp_i8", (In(y), Out(y), _numel(y), zy, min(max(six, -128),
                                                                            127))))
    elif activation != "NONE":
        raise ValueError(f"int8 concat with fused {activation} is not supported")
    return Plan(f"axis {axis}, {len(inputs)} inputs, {activation}", tuple(calls))
