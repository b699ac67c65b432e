"""Reshapes made redundant by the target op: none before FULLY_CONNECTED (it flattens its
input itself), none after a MEAN that can drop the reduced axes (``keep_dims=False``).
Numerics: LiteRT vs onnxruntime (float), TFLite-Micro vs our integer interpreter (int8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.app.integer_run import executable
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tools.runtimes import (
    NCHW_TO_NHWC,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
)

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(2)
N = helper.make_node


def _save(nodes: list[onnx.NodeProto], out_shape: list[int], inits: list[onnx.TensorProto],
          path: Path) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2, 6, 6])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, out_shape)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.fixture(params=["mean-relu", "pool-fc", "must-not-fire"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, list[str]]:
    w = numpy_helper.from_array((RNG.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32),
                                "w")
    conv = N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")
    if request.param == "mean-relu":  # MEAN (keep_dims) + RESHAPE -> MEAN(keep_dims=False)
        nodes = [conv, N("GlobalAveragePool", ["c"], ["g"], name="gap"),
                 N("Flatten", ["g"], ["f"], name="flatten"), N("Relu", ["f"], ["y"], name="relu")]
        return _save(nodes, [1, 4], [w], tmp_path / "m.onnx"), ["CONV_2D", "MEAN", "RELU"]
    if request.param == "pool-fc":
        fc = numpy_helper.from_array((RNG.standard_normal((3, 36)) * 0.2).astype(np.float32),
                                     "fc")
        nodes = [conv, N("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool"), N("Flatten", ["p"], ["f"], name="flatten"),
                 N("Gemm", ["f", "fc"], ["y"], transB=1, name="gemm")]
        return (_save(nodes, [1, 3], [w, fc], tmp_path / "m.onnx"),
                ["CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"])
    # the flatten is the graph output: the model's interface, kept
    nodes = [conv, N("Flatten", ["c"], ["y"], name="flatten")]
    return _save(nodes, [1, 144], [w], tmp_path / "m.onnx"), ["CONV_2D", "TRANSPOSE", "RESHAPE"]


def test_ops_and_numerics(case: tuple[Path, list[str]]) -> None:
    path, expected = case
    result = compile_onnx(path, CompileOptions(quiet=True))
    assert [op.op for op in parse_model(result.output).operators] == expected
    xs = RNG.standard_normal((8, 2, 6, 6)).astype(np.float32)
    got = run_litert(result.output, to_physical(xs, NCHW_TO_NHWC))
    assert np.abs(got - ort_outputs(ort_session(path), xs)).max() <= 1e-4
    calib = RNG.standard_normal((32, 2, 6, 6)).astype(np.float32)
    q8 = compile_onnx(path, CompileOptions(quantize="int8", calibration_data=calib, quiet=True))
    assert "RESHAPE" not in [op.op for op in parse_model(q8.output).operators] or \
        "RESHAPE" in expected
    q = q8.graph.inputs[0].quant
    xq = quantize_input(to_physical(xs, NCHW_TO_NHWC), q.scale[0], q.zero_point[0])
    ours = run_graph(executable(q8.graph), {"x": xq})["y"]
    assert np.array_equal(run_tflm(q8.output, xq), ours)
