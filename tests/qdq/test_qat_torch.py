"""The PyTorch quantization-aware-training round trip (``tools/qat_digits.py``): eager-mode
``prepare_qat`` on a small CNN, ``convert``, legacy ONNX export (QDQ form, with its
``Cast`` / ``ConstantOfShape`` artefacts), compiled to int8 with no calibration data.

* the QAT model's int8 accuracy (TFLite-Micro, 450 held-out digits) is at least the
  post-training int8 accuracy of the same float network compiled with ``--quantize int8``;
* >= 99% top-1 agreement with onnxruntime running the exported QDQ model;
* every activation scale / zero point of the ONNX model is on the ``.tflite``, and the
  model needed no change (no remarks);
* TFLite-Micro == our interpreter == our C (host gcc).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.interpreter import run_graph
from tests.c_end_to_end.c_models import host_build, host_outputs, write_files
from tools.qdq_zoo import scale_mismatches

pytest.importorskip("torch")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


@pytest.fixture(scope="module")
def qat(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    from tools.qat_digits import build, evaluate

    paths = build(tmp_path_factory.mktemp("qat"))
    return paths, evaluate(paths)


@pytest.mark.slow
def test_qat_int8_accuracy_is_at_least_post_training_int8(
        qat: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, results = qat
    assert results["qat"]["accuracy"] >= results["ptq"]["accuracy"], results
    assert results["qat"]["agreement_ort"] >= 0.99
    assert results["qat"]["remarks"] == []


@pytest.mark.slow
def test_qat_model_keeps_its_scales(qat: tuple[dict[str, Any], dict[str, Any]]) -> None:
    paths, results = qat
    assert scale_mismatches(paths["qat"], results["qat"]["_tflite"]) == []


@pytest.mark.slow
def test_qat_tflm_equals_interpreter_and_c(qat: tuple[dict[str, Any], dict[str, Any]],
                                           tmp_path: Path) -> None:
    paths, results = qat
    feeds, tflm = results["qat"]["_feeds"], results["qat"]["_tflm"]
    graph = compile_onnx(paths["qat"], CompileOptions(quiet=True)).graph
    ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
    np.testing.assert_array_equal(np.asarray(ours).reshape(tflm.shape), tflm)
    c = compile_onnx(paths["qat"], CompileOptions(target="c", quiet=True))
    exe = host_build(write_files(tmp_path / "c", c.files), c.graph.inputs[0].name, "O2",
                     tmp_path / "build")
    np.testing.assert_array_equal(host_outputs(exe, feeds.reshape(len(feeds), -1)), tflm)
