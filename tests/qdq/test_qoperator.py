"""onnxruntime QOperator models (``QLinearConv``, ``QGemm``, ``QLinearAdd``,
``QLinearAveragePool``, ``QLinearGlobalAveragePool``, ``QLinearSigmoid``,
``QLinearSoftmax``, MaxPool / Flatten on quantized tensors) of every trained zoo model
compile with no calibration data: each output scale and zero point of the model is on a
tensor of the ``.tflite``; >= 99% top-1 agreement with onnxruntime on the held-out digits;
TFLite-Micro == our interpreter; our C == TFLite-Micro on two of them. QLinearAveragePool
rescales, which TFLite's AVERAGE_POOL_2D cannot: a requantize follows it (remarked)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from tests.c_end_to_end.c_models import host_build, host_outputs, write_files
from tools.qdq_zoo import (
    TRAINED,
    ZOO,
    digits_for,
    make_qdq,
    measure,
    params_missing_from,
    qoperator_output_params,
)

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


@pytest.fixture(scope="module")
def qop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qop")


@functools.cache
def _case(directory: Path, name: str) -> tuple[Path, dict[str, Any]]:
    x_train, _, x_test, y_test = digits_for(name)
    path = make_qdq(ZOO / f"{name}.onnx", directory / f"{name}_qop.onnx", x_train[:100],
                    True, "QUInt8", quant_format="QOperator")
    return path, measure(path, x_test, y_test)


@pytest.mark.parametrize("name", TRAINED)
def test_qoperator_model_keeps_its_scales_and_agrees(qop_dir: Path, name: str) -> None:
    path, m = _case(qop_dir, name)
    ops = {line for line in path.read_bytes().split(b"\x00") if b"QLinear" in line}
    assert ops, "onnxruntime wrote QOperator nodes"
    assert params_missing_from(m["tflite"], qoperator_output_params(path)) == []
    assert m["agreement"] >= 0.99, m
    assert m["tflm_equals_interpreter"]


def test_qlinear_average_pool_rescale_is_remarked(qop_dir: Path) -> None:
    _, m = _case(qop_dir, "lenet")
    assert any("AveragePool" in r and "requantized to the model's" in r for r in m["remarks"])


@pytest.mark.parametrize("name", ["resnet8", "mobilenet_v1"])
def test_qoperator_c_equals_tflm(qop_dir: Path, name: str, tmp_path: Path) -> None:
    path, m = _case(qop_dir, name)
    result = compile_onnx(path, CompileOptions(target="c", quiet=True))
    directory = write_files(tmp_path / "c", result.files)
    exe = host_build(directory, result.graph.inputs[0].name, "O2", tmp_path / "build")
    got = host_outputs(exe, m["feeds"].reshape(len(m["feeds"]), -1))
    np.testing.assert_array_equal(got, m["tflm"])
