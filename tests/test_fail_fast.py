"""Fail fast: target legality before calibration; ``inspect`` surveys unsupported ops.

A model that int8 (or the C target) cannot take is refused before ``calibrate`` reads a
single sample, with every offending node in one line; ``--fallback float`` still lets
the TFLite target keep such a node in float. ``microlith inspect`` on an ONNX model with
ops the importer does not know lists them with their counts instead of failing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import BackendError
from tests.badinput import cli_run

N = helper.make_node


def _model(path: Path) -> Path:
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32) * 0.1, "w")
    nodes = [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             N("HardSigmoid", ["c"], ["h"], name="hsig"),
             N("Relu", ["h"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 6, 6])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 2, 6, 6])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("target", ["tflite", "c"])
def test_int8_is_refused_before_calibration(tmp_path: Path, target: str) -> None:
    path = _model(tmp_path / "m.onnx")
    data = np.zeros((4, 1, 6, 6), np.float32)
    with pytest.raises(BackendError, match=r"checked before calibration\): .*hsig "
                                           r"\(HardSigmoid\)") as info:
        compile_onnx(path, CompileOptions(quantize="int8", target=target, quiet=True,
                                          calibration_data=data))
    assert "conv" not in str(info.value).split("calibration):")[1]


def test_fallback_float_still_compiles_for_tflite(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.onnx")
    data = np.random.default_rng(0).standard_normal((4, 1, 6, 6)).astype(np.float32)
    result = compile_onnx(path, CompileOptions(quantize="int8", fallback="float", quiet=True,
                                               calibration_data=data))
    assert result.output[4:8] == b"TFL3"


def test_inspect_surveys_unsupported_ops(tmp_path: Path) -> None:
    nodes = [N("Sin", ["x"], ["a"], name="sin1"), N("Relu", ["a"], ["b"], name="r"),
             N("Sin", ["b"], ["c"], name="sin2"), N("Cos", ["c"], ["y"], name="cos")]
    graph = helper.make_graph(nodes, "u", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 3, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              tmp_path / "u.onnx")
    run = cli_run("inspect", "u.onnx", cwd=tmp_path)
    assert run.status == 0, run.err
    lines = run.out.splitlines()
    assert lines[0] == "u.onnx: onnx, 4 ops, 2 unsupported op types (3 nodes)"
    assert "  Cos                      1  unsupported" in lines
    assert "  Sin                      2  unsupported" in lines
    assert "  Relu                     1" in lines
    assert lines[-1] == "unsupported: Cos x1 (cos); Sin x2 (sin1, sin2)"
