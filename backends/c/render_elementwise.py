"""C renderers: element-wise ops, activations, table lookups, softmax, quantize/dequantize
(the maths is in ``microlith.quant.elementwise`` / ``activation`` / ``data``)."""

from __future__ import annotations

from microlith.backends.c.render_base import (
    CTYPE,
    INT32_LIMIT,
    Call,
    FieldValue,
    Float,
    In,
    Out,
    Plan,
    Table,
    broadcast_loops,
    int8_values,
    numel,
    renders,
    shift_in_range,
)
from microlith.ir.core import Node
from microlith.ir.types import DType
from microlith.quant.activation import (
    ClampParams,
    HardSwishParams,
    LeakyReluParams,
    LutParams,
    ReluParams,
    SigmoidParams,
    SoftmaxParams,
)
from microlith.quant.data import DequantizeParams, QuantizeParams
from microlith.quant.elementwise import AddSubParams, ExtremumParams, MulParams, PreluParams


def _binary(node: Node) -> tuple[tuple[In, In, Out], list[tuple[str, int]]]:
    a, b, y = node.arg(0), node.arg(1), node.output
    int8_values(a, b, y)
    return (In(a), In(b), Out(y)), broadcast_loops(y.shape, [a.shape, b.shape])


@renders("tfl.add", "tfl.sub")
def _add_sub(node: Node, p: AddSubParams) -> Plan:
    tensors, loops = _binary(node)
    fields = (("sign", p.sign), *loops, ("a_zp", p.a_zp), ("a_mult", p.a_mult),
              ("a_shift", shift_in_range(p.a_shift)), ("b_zp", p.b_zp), ("b_mult", p.b_mult),
              ("b_shift", shift_in_range(p.b_shift)), ("y_mult", p.out_mult),
              ("y_shift", shift_in_range(p.out_shift)), ("y_zp", p.y_zp),
              ("act_min", p.act_min), ("act_max", p.act_max))
    a, b = node.arg(0).shape, node.arg(1).shape
    return Plan(f"{a} {'+' if p.sign > 0 else '-'} {b}",
                (Call("mlk_add_sub_i8", "mlk_add_sub_params", fields, tensors),))


@renders("tfl.mul")
def _mul(node: Node, p: MulParams) -> Plan:
    tensors, loops = _binary(node)
    fields = (*loops, ("a_zp", p.a_zp), ("b_zp", p.b_zp), ("mult", p.mult),
              ("shift", shift_in_range(p.shift)), ("y_zp", p.y_zp), ("act_min", p.act_min),
              ("act_max", p.act_max))
    return Plan(f"{node.arg(0).shape} * {node.arg(1).shape}",
                (Call("mlk_mul_i8", "mlk_mul_params", fields, tensors),))


@renders("tfl.prelu")
def _prelu(node: Node, p: PreluParams) -> Plan:
    tensors, loops = _binary(node)
    fields = (*loops, ("x_zp", p.x_zp), ("alpha_zp", p.alpha_zp), ("pos_mult", p.pos_mult),
              ("pos_shift", shift_in_range(p.pos_shift)), ("neg_mult", p.neg_mult),
              ("neg_shift", shift_in_range(p.neg_shift)), ("y_zp", p.y_zp))
    return Plan(f"{node.arg(0).shape}, alpha {node.arg(1).shape}",
                (Call("mlk_prelu_i8", "mlk_prelu_params", fields, tensors),))


@renders("tfl.maximum", "tfl.minimum")
def _extremum(node: Node, p: ExtremumParams) -> Plan:
    tensors, loops = _binary(node)
    return Plan(f"{node.arg(0).shape}, {node.arg(1).shape}",
                (Call("mlk_extremum_i8", "mlk_extremum_params",
                      (("is_max", p.is_max), *loops), tensors),))


def _unary(node: Node) -> tuple[In, Out]:
    x, y = node.arg(0), node.output
    int8_values(x, y)
    return In(x), Out(y)


@renders("c.lut")
def _lut(node: Node, p: LutParams) -> Plan:
    table = node.arg(1)
    fields = (("n", numel(node.output)), ("table", Table(table.name, table.constant)))
    return Plan("256-entry table", (Call("mlk_lut_i8", "mlk_lut_params", fields, _unary(node)),))


@renders("tfl.relu")
def _relu(node: Node, p: ReluParams) -> Plan:
    fields = (("n", numel(node.output)), ("x_zp", p.x_zp), ("mult", p.mult),
              ("shift", shift_in_range(p.shift)), ("y_zp", p.y_zp), ("lo", p.lo), ("hi", p.hi))
    return Plan("relu", (Call("mlk_relu_i8", "mlk_relu_params", fields, _unary(node)),))


@renders("tfl.relu6")
def _relu6(node: Node, p: ClampParams) -> Plan:
    fields = (("n", numel(node.output)), ("lo", p.lo), ("hi", p.hi))
    return Plan("relu6", (Call("mlk_clamp_i8", "mlk_clamp_params", fields, _unary(node)),))


@renders("tfl.leaky_relu")
def _leaky_relu(node: Node, p: LeakyReluParams) -> Plan:
    if p.alpha_mult >= INT32_LIMIT:
        raise ValueError(f"leaky-relu alpha {node.attr('alpha')} gives an unrepresentable "
                         "multiplier")
    fields = (("n", numel(node.output)), ("x_zp", p.x_zp), ("id_mult", p.id_mult),
              ("id_shift", shift_in_range(p.id_shift)), ("alpha_mult", p.alpha_mult),
              ("alpha_shift", shift_in_range(p.alpha_shift)),
              ("alpha_negative", p.alpha_negative), ("y_zp", p.y_zp))
    return Plan(f"alpha {node.attr('alpha')}",
                (Call("mlk_leaky_relu_i8", "mlk_leaky_relu_params", fields, _unary(node)),))


@renders("tfl.hard_swish")
def _hard_swish(node: Node, p: HardSwishParams) -> Plan:
    if p.out_exp > 0 or p.relu_exp > 16:
        raise ValueError("hard-swish multipliers out of the supported range (TFLM refuses)")
    fields = (("n", numel(node.output)), ("x_zp", p.x_zp), ("y_zp", p.y_zp),
              ("out_m", p.out_mult), ("out_exp", p.out_exp), ("relu_m", p.relu_mult),
              ("relu_exp", p.relu_exp))
    return Plan("hard-swish",
                (Call("mlk_hard_swish_i8", "mlk_hard_swish_params", fields, _unary(node)),))


@renders("tfl.logistic", "tfl.tanh")
def _sigmoid(node: Node, p: SigmoidParams) -> Plan:
    if p.radius > 0 and not -31 <= p.shift <= 30:
        raise ValueError(f"input scale {node.arg(0).quant} out of the supported range")
    fields = (("n", numel(node.output)), ("x_zp", p.x_zp), ("mult", p.mult),
              ("shift", p.shift), ("radius", p.radius))
    fn = "mlk_tanh_i8" if p.is_tanh else "mlk_logistic_i8"
    return Plan(f"input radius {p.radius}",
                (Call(fn, "mlk_sigmoid_params", fields, _unary(node)),))


@renders("tfl.softmax")
def _softmax(node: Node, p: SoftmaxParams) -> Plan:
    x = node.arg(0)
    depth = x.shape[-1]
    fields = (("rows", numel(x) // depth), ("depth", depth), ("mult", p.mult),
              ("left_shift", p.left_shift), ("diff_min", p.diff_min))
    return Plan(f"rows of {depth}",
                (Call("mlk_softmax_i8", "mlk_softmax_params", fields, _unary(node)),))


_SUFFIX = {DType.INT8: "i8", DType.UINT8: "u8", DType.INT16: "i16"}


@renders("tfl.quantize")
def _quantize(node: Node, p: QuantizeParams) -> Plan:
    x, y = node.arg(0), node.output
    if y.dtype not in _SUFFIX:
        raise ValueError(f"quantize to {y.dtype} is not supported (int8 / uint8 / int16)")
    tensors = (In(x, CTYPE.get(x.dtype, "int8_t")), Out(y, CTYPE[y.dtype]))
    fields: tuple[tuple[str, FieldValue], ...]
    if not p.requantize:
        fields = (("n", numel(y)), ("scale", Float(p.y_scale)), ("zp", p.y_zp))
        return Plan("float -> int", (Call(f"mlk_quantize_f32_{_SUFFIX[y.dtype]}",
                                          "mlk_quantize_params", fields, tensors),))
    if x.dtype not in _SUFFIX or (x.dtype, y.dtype) == (DType.UINT8, DType.UINT8):
        raise ValueError(f"requantize {x.dtype} -> {y.dtype} is not supported")
    fields = (("n", numel(y)), ("x_zp", p.x_zp), ("mult", p.mult),
              ("shift", shift_in_range(p.shift)), ("y_zp", p.y_zp))
    fn = f"mlk_requantize_{_SUFFIX[x.dtype]}_{_SUFFIX[y.dtype]}"
    return Plan("requantize", (Call(fn, "mlk_requantize_params", fields, tensors),))


@renders("tfl.dequantize")
def _dequantize(node: Node, p: DequantizeParams) -> Plan:
    x, y = node.arg(0), node.output
    if x.dtype not in _SUFFIX or y.dtype != DType.FLOAT32 or p.per_axis is not None:
        raise ValueError(f"dequantize {x.dtype} -> {y.dtype} is not supported")
    fields = (("n", numel(y)), ("scale", Float(p.scale)), ("zp", p.zp))
    return Plan("int -> float", (Call(f"mlk_dequantize_{_SUFFIX[x.dtype]}_f32",
                                      "mlk_dequantize_params", fields,
                                      (In(x, CTYPE[x.dtype]), Out(y, "float"))),))
