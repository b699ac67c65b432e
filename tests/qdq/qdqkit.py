"""Shared by the Q/DQ tests: a tiny hand-written Q/DQ model."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.badinput import model, vi

RNG = np.random.default_rng(0)
W = np.clip(np.round(RNG.standard_normal((3, 4)) * 40), -127, 127).astype(np.int8)


def qdq_gemm(*, x_scale: float = 0.02, x_zp: np.ndarray | None = None,
             w_scale: np.ndarray | None = None, w_zp: np.ndarray | None = None,
             w: np.ndarray = W, dq_scale: float | None = None, int_input: bool = False,
             axis: int = 0, opset: int = 13) -> onnx.ModelProto:
    """x[1,4] -> Q -> DQ -> Gemm(DQ(W), transB) -> Q -> DQ -> y[1,3]."""
    inits: dict[str, np.ndarray] = {
        "xs": np.array(x_scale, np.float32),
        "xz": np.array(0, np.uint8) if x_zp is None else x_zp,
        "xs2": np.array(x_scale if dq_scale is None else dq_scale, np.float32),
        "w": w, "ws": np.full(3, 0.01, np.float32) if w_scale is None else w_scale,
        "wz": np.zeros(3, np.int8) if w_zp is None else w_zp,
        "ys": np.array(0.05, np.float32), "yz": np.array(128, np.uint8)}
    nodes = [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], name="dq_w",
                              axis=axis),
             helper.make_node("DequantizeLinear", ["xq", "xs2", "xz"], ["xf"], name="dq_x"),
             helper.make_node("Gemm", ["xf", "wf"], ["g"], name="gemm", transB=1),
             helper.make_node("QuantizeLinear", ["g", "ys", "yz"], ["gq"], name="q_y"),
             helper.make_node("DequantizeLinear", ["gq", "ys", "yz"], ["y"], name="dq_y")]
    if int_input:
        inputs = [vi("xq", [1, 4], TensorProto.UINT8)]
    else:
        nodes.insert(0, helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"],
                                         name="q_x"))
        inputs = [vi("x", [1, 4])]
    return model(nodes, inputs, [vi("y", [1, 3])], inits, opset=opset)
