"""C renderers of 16x8 nodes (int16 activations; see ``microlith.quant.wide``).

Convolutions and fully connected layers have records of their own (int64 bias); the other
ops reuse the int8 renderer's fields (same record, same parameter struct) and call the
``_i16`` kernel on ``int16_t`` tensors (``microlith_kernels_wide.h``). LOGISTIC / TANH /
SOFTMAX take their lookup tables as ``const`` arrays (``microlith_kernels_wide_activation.h``;
one copy per model: identical arrays are shared).
"""

from __future__ import annotations

import dataclasses

import numpy as np

import microlith.backends.c.render_data  # noqa: F401  (the int8 renderers reused here)
import microlith.backends.c.render_elementwise  # noqa: F401
import microlith.backends.c.render_nn  # noqa: F401
from microlith.backends.c.render_base import (
    RENDERERS,
    Call,
    FieldValue,
    In,
    Out,
    Plan,
    Table,
    numel,
    renders,
    shifts_in_range,
)
from microlith.ir.core import Node
from microlith.ir.types import DType
from microlith.quant.wide import Conv16Params, FullyConnected16Params
from microlith.quant.wide_activation import Sigmoid16Params, Softmax16Params
from microlith.quant.wide_tables import sigmoid_table, softmax_exp_table, softmax_reciprocal_table

_STRUCTS = {"mlk_pad_params": "mlk_pad_i16_params"}


def _int16(*values: object) -> None:
    for v in values:
        if getattr(v, "dtype", None) != DType.INT16:
            raise ValueError(f"{getattr(v, 'name', None)!r} must be int16")


def _retyped(plan: Plan) -> Plan:
    """The int8 plan with ``_i16`` kernels on ``int16_t`` tensors."""
    calls = []
    for call in plan.calls:
        if not call.function.endswith("_i8"):
            raise ValueError(f"no 16x8 C kernel for {call.function}")
        tensors = tuple(dataclasses.replace(t, ctype="int16_t")
                        if isinstance(t, In | Out) and not t.value.is_constant else t
                        for t in call.tensors)
        calls.append(Call(call.function[:-3] + "_i16", _STRUCTS.get(call.struct or "",
                                                                    call.struct),
                          call.fields, tensors))
    return Plan(plan.comment + " (16x8)", tuple(calls))


def _wide(op: str) -> None:
    int8_renderer = RENDERERS[op]

    def render(node: Node, p: object) -> Plan:
        _int16(node.arg(0), node.output)
        return _retyped(int8_renderer(node, p))

    renders(op, wide=True)(render)


for _op in ("tfl.add", "tfl.sub", "tfl.mul", "tfl.leaky_relu", "tfl.max_pool_2d",
            "tfl.average_pool_2d", "c.max_pool_2d", "c.average_pool_2d", "tfl.mean",
            "tfl.pad", "tfl.padv2", "tfl.concatenation", "tfl.transpose", "tfl.reshape"):
    _wide(_op)


def _tables(node: Node, mult: np.ndarray, shift: np.ndarray, bias: np.ndarray
            ) -> list[tuple[str, FieldValue]]:
    w = node.arg(1)
    return [("w", Table(w.name, np.asarray(w.data))),
            ("bias", Table(f"{node.name}_bias", np.asarray(bias, np.int64))),
            ("mult", Table(f"{node.name}_mult", mult)),
            ("shift", Table(f"{node.name}_shift", shifts_in_range(shift)))]


@renders("c.conv_2d", "c.depthwise_conv_2d", "tfl.conv_2d", "tfl.depthwise_conv_2d", wide=True)
def _conv16(node: Node, p: Conv16Params) -> Plan:
    x, y, c = node.arg(0), node.output, p.conv
    _int16(x, y)
    for s in c.shift:
        if not -31 <= int(s) < 8:
            raise ValueError(f"16x8 requantization needs a shift in [-31, 8), got {int(s)}")
    fields = (*_tables(node, c.mult, c.shift, p.bias), ("batches", x.shape[0]),
              ("in_h", c.in_h), ("in_w", c.in_w), ("in_c", c.in_c), ("out_h", c.out_h),
              ("out_w", c.out_w), ("out_c", c.out_c), ("k_h", c.k_h), ("k_w", c.k_w),
              ("stride_h", c.stride_h), ("stride_w", c.stride_w), ("dil_h", c.dil_h),
              ("dil_w", c.dil_w), ("pad_top", c.pad_top), ("pad_left", c.pad_left),
              ("groups", max(c.groups, 1)), ("depth_mult", c.depth_multiplier),
              ("act_min", p.act_min), ("act_max", p.act_max))
    kind = "depthwise " if c.depth_multiplier else ""
    return Plan(f"{kind}{c.k_h}x{c.k_w} stride {c.stride_h}x{c.stride_w} (16x8)",
                (Call("mlk_conv2d_i16", "mlk_conv2d_i16_params", fields,
                      (In(x, "int16_t"), Out(y, "int16_t"))),))


@renders("tfl.fully_connected", wide=True)
def _fully_connected16(node: Node, p: FullyConnected16Params) -> Plan:
    x, y, fc = node.arg(0), node.output, p.fc
    _int16(x, y)
    if fc.w_zp:
        raise ValueError("the C fully-connected kernel needs symmetric weights (zero point 0)")
    fields = (*_tables(node, fc.mult, fc.shift, p.bias), ("batches", numel(x) // fc.depth),
              ("depth", fc.depth), ("units", fc.units), ("y_zp", fc.y_zp),
              ("act_min", p.act_min), ("act_max", p.act_max))
    return Plan(f"{fc.depth}->{fc.units} (16x8)",
                (Call("mlk_fully_connected_i16", "mlk_fully_connected_i16_params", fields,
                      (In(x, "int16_t"), Out(y, "int16_t"))),))


# ---- LOGISTIC / TANH / SOFTMAX: table kernels (microlith_kernels_wide_activation.h) ----
@renders("tfl.logistic", "tfl.tanh", wide=True)
def _sigmoid16(node: Node, p: Sigmoid16Params) -> Plan:
    x, y = node.arg(0), node.output
    _int16(x, y)
    fields = (("table", Table("sigmoid16_table", np.asarray(sigmoid_table(), np.uint16))),
              ("n", numel(y)), ("mult", p.mult), ("shift", p.shift))
    fn = "mlk_tanh_i16" if p.is_tanh else "mlk_logistic_i16"
    return Plan(f"input x {p.mult} >> {p.shift} (16x8)",
                (Call(fn, "mlk_sigmoid_i16_params", fields,
                      (In(x, "int16_t"), Out(y, "int16_t"))),))


@renders("tfl.softmax", wide=True)
def _softmax16(node: Node, p: Softmax16Params) -> Plan:
    x, y = node.arg(0), node.output
    _int16(x, y)
    depth = x.shape[-1]
    if not -31 <= p.shift <= 31:
        raise ValueError(f"16x8 softmax: input scale {x.quant} out of the supported range")
    fields = (("exp_table", Table("softmax16_exp", np.asarray(softmax_exp_table(), np.int16))),
              ("recip_table", Table("softmax16_recip",
                                    np.asarray(softmax_reciprocal_table(), np.int16))),
              ("rows", numel(x) // depth), ("depth", depth), ("mult", p.mult),
              ("shift", p.shift))
    return Plan(f"rows of {depth} (16x8)",
                (Call("mlk_softmax_i16", "mlk_softmax_i16_params", fields,
                      (In(x, "int16_t"), Out(y, "int16_t"))),))
