"""Bad Q/DQ models: one ``error:`` line naming the file, node and culprit; exit 2; nothing
written. The good model of this file compiles (so each case fails for its own reason).

A zero point outside its type cannot be stored in a typed ONNX tensor; the way it
arrives is a zero point of a wider type than the data (int32 300 for int8 weights),
which ONNX's own type inference names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.badinput import cli_run, fails_cleanly, model, save, vi

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


Case = tuple[Callable[[], onnx.ModelProto], list[str]]
CASES: dict[str, Case] = {
    "zero-scale": (lambda: qdq_gemm(x_scale=0.0), ["'q_x'", "scale 0", "finite and positive"]),
    "negative-weight-scale": (lambda: qdq_gemm(w_scale=np.array([0.01, -0.5, 0.01],
                                                                np.float32)),
                              ["'dq_w'", "scale -0.5", "finite and positive"]),
    "zero-point-out-of-type": (lambda: qdq_gemm(w_zp=np.array([0, 300, 0], np.int32)),
                               ["dq_w", "x_zero_point", "int32"]),
    "per-axis-length": (lambda: qdq_gemm(w_scale=np.full(4, 0.01, np.float32),
                                         w_zp=np.zeros(4, np.int8)),
                        ["'dq_w'", "4 entries", "axis 0", "has 3"]),
    "dq-without-q": (lambda: qdq_gemm(int_input=True),
                     ["'dq_x'", "no matching QuantizeLinear", "'xq'", "graph input"]),
    "dq-other-params-than-q": (lambda: qdq_gemm(dq_scale=0.03),
                               ["'dq_x'", "no matching QuantizeLinear", "differ"]),
    "int16": (lambda: qdq_gemm(x_zp=np.array(0, np.int16), opset=21),
              ["'q_x'", "int16 is not supported"]),
}


def test_the_good_model_compiles(tmp_path: Path) -> None:
    save(qdq_gemm(), tmp_path / "good.onnx")
    run = cli_run("compile", "good.onnx", "-o", "out.tflite", cwd=tmp_path)
    assert run.status == 0, run.err
    assert (tmp_path / "out.tflite").stat().st_size > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_qdq_model_is_one_line_error(tmp_path: Path, case: str) -> None:
    build, needles = CASES[case]
    save(build(), tmp_path / "bad.onnx")
    line = fails_cleanly(tmp_path, "compile", "bad.onnx", "-o", "out.tflite")
    assert line.startswith("error: bad.onnx: "), line
    for needle in needles:
        assert needle in line, (needle, line)
