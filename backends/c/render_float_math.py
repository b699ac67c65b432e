"""C renderers of the float element-wise maths (``microlith_kernels_float_math.h``):
EXP ``e^x``, SQRT, RSQRT ``1 / sqrt(x)``, ELU ``x if x >= 0 else e^x - 1`` (TFLite's alpha 1),
GELU ``x Phi(x)`` (``approximate``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``),
one ``mlk_math_f32`` call with an op code; and DIV ``a / b`` with broadcasting
(``mlk_div_f32``, the binary kernels' loops) and a fused clamp. The kernels are libm-free;
their approximations and error bounds are in the header."""

from __future__ import annotations

from microlith.backends.c.render_base import Call, Plan, broadcast_loops, numel
from microlith.backends.c.render_float import Fields, _act, _f, _operand, _out, renders_float
from microlith.ir.core import Node

MATH = {"tfl.exp": 0, "tfl.sqrt": 1, "tfl.rsqrt": 2, "tfl.elu": 3, "tfl.gelu": 4}
GELU_TANH = 5


@renders_float(*MATH)
def _math(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    op = MATH[node.op]
    if node.op == "tfl.gelu" and node.attr("approximate", False) in (True, "tanh"):
        op = GELU_TANH
    if node.op == "tfl.elu" and float(node.attr("alpha", 1.0)) != 1.0:
        raise ValueError("ELU with alpha != 1 has no float C kernel")
    fields: Fields = [("op", op), ("n", numel(y))]
    name = "gelu (tanh)" if op == GELU_TANH else node.op[4:]
    return Plan(f"float {name}", (Call("mlk_math_f32", "mlk_math_f_params", tuple(fields),
                                       (_f(x), _out(y))),))


@renders_float("tfl.div")
def _div(node: Node) -> Plan:
    a, b, y = node.arg(0), node.arg(1), node.output
    act = str(node.attr("activation", node.attr("fused_activation_function", "NONE")))
    fields: Fields = [*broadcast_loops(y.shape, [a.shape, b.shape]),
                      ("clamp", int(act != "NONE")), *_act(node)]
    return Plan(f"float div {a.shape} {b.shape}",
                (Call("mlk_div_f32", "mlk_div_f_params", tuple(fields),
                      (_operand(a), _operand(b), _out(y))),))
