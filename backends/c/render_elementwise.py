"""C renderers: element-wise ops, activations, softmax, quantize/dequantize (maths in
``render_ops``).
"""

from __future__ import annotations

import numpy as np

from microlith.backends.c.render_base import (
    CTYPE,
    INT32_LIMIT,
    LUT_MIN_ELEMENTS,
    Call,
    Float,
    In,
    Out,
    Plan,
    Table,
    _act,
    _broadcast,
    _int8,
    _numel,
    _qm,
    _register,
    _tensor_q,
)
from microlith.interpreter import fixed_point as fp
from microlith.interpreter.int8_common import (
    f32,
)
from microlith.interpreter.int8_graph_kernels import INT8_GRAPH_KERNELS
from microlith.ir.core import Node, Value
from microlith.ir.types import DType

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
