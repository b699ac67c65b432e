"""C renderer of the float LOCAL_RESPONSE_NORMALIZATION (``mlk_lrn_f32``,
``microlith_kernels_float_norm.h``): ``y = x (bias + alpha sum_{|k - c| <= radius} x_k^2)^-beta``
over the last axis, with TFLite's attributes (alpha already divided by ONNX's size)."""

from __future__ import annotations

from microlith.backends.c.render_base import Call, Float, Plan, numel
from microlith.backends.c.render_float import Fields, _f, _out, renders_float
from microlith.ir.core import Node


@renders_float("tfl.local_response_normalization")
def _lrn(node: Node) -> Plan:
    x, y = node.arg(0), node.output
    depth = int(x.shape[-1])
    if float(node.attr("bias")) <= 0.0:
        raise ValueError("LRN with bias <= 0 (the power's base can be 0)")
    fields: Fields = [("outer", numel(x) // depth), ("depth", depth),
                      ("radius", int(node.attr("radius"))),
                      ("bias", Float(float(node.attr("bias")))),
                      ("alpha", Float(float(node.attr("alpha")))),
                      ("beta", Float(float(node.attr("beta"))))]
    return Plan(f"float local response normalization radius {node.attr('radius')}",
                (Call("mlk_lrn_f32", "mlk_lrn_f_params", tuple(fields), (_f(x), _out(y))),))
