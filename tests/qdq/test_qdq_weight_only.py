"""Weight-only DequantizeLinear (int8 weights, float activations; the hybrid form tf2onnx
writes for TF's dynamic-range models), built from the zoo by ``tools.qdq_zoo.weight_only_dq``.

* With calibration data it compiles to full int8 using the model's weight scales: every
  weight tensor of the ``.tflite`` has the model's per-channel scales (relative 1e-6) and
  the same int8 values in each channel (the layout may permute them); TFLite-Micro ==
  our interpreter; accuracy within 1 point of the float model on the held-out digits.
* Without, it compiles to the dynamic-range form (``qdq-dynamic``): the model's own int8
  weights and scales for LiteRT's hybrid kernels, float activations; accuracy within 0.5
  points of float. ``--quantize qdq`` without data is one clear error asking for data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tests.badinput import fails_cleanly
from tools.qdq_zoo import ZOO, digits_for, weight_only_dq
from tools.runtimes import (
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
    top1,
)

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


@pytest.fixture(scope="module")
def lenet_wo(tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    path = tmp_path_factory.mktemp("wo") / "lenet_wo.onnx"
    return path, weight_only_dq(ZOO / "lenet.onnx", path)


def test_weight_only_qdq_mode_without_data_asks_for_calibration(
        lenet_wo: tuple[Path, dict], tmp_path: Path) -> None:
    shutil.copy(lenet_wo[0], tmp_path / "wo.onnx")
    line = fails_cleanly(tmp_path, "compile", "wo.onnx", "-o", "out.tflite", "--quantize", "qdq")
    assert "weight-only" in line and "--calibration-data" in line, line
    assert "qdq-dynamic" in line, line


def test_weight_only_without_data_is_dynamic_range_with_the_model_weights(
        lenet_wo: tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    path, weights = lenet_wo
    result = compile_onnx(path, CompileOptions(quiet=True))
    assert "quantize-weights" in result.pipeline and "calibrate" not in result.pipeline
    assert not [r for r in result.remarks if "requantized" in r[2]]
    model = parse_model(result.output)
    ints = [t for t in model.tensors if t.dtype == "int8" and t.data is not None]
    assert len(ints) == len(weights)
    for name, (q, scales) in weights.items():
        found = [t for t in ints if t.quant is not None and len(t.quant.scale) == len(scales)
                 and np.allclose(t.quant.scale, scales, rtol=1e-6, atol=0)]
        assert len(found) == 1, name
        data = np.frombuffer(found[0].data or b"", np.int8)
        assert sorted(data.tolist()) == sorted(q.reshape(-1).tolist()), name
    inp = model.tensors[model.inputs[0]]
    assert inp.dtype == "float32"  # float activations and interface
    _, _, x_test, y_test = digits_for("lenet")
    feeds = to_physical(x_test, input_perm(result.graph))
    got = np.concatenate([run_litert(result.output, feeds[i:i + 1])
                          for i in range(len(feeds))])
    accuracy = (top1(got) == y_test).mean()
    float_accuracy = (top1(ort_outputs(ort_session(ZOO / "lenet.onnx"), x_test)) == y_test
                      ).mean()
    assert accuracy >= float_accuracy - 0.005, (accuracy, float_accuracy)


def test_weight_only_with_data_is_full_int8_with_the_model_weight_scales(
        lenet_wo: tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    path, weights = lenet_wo
    x_train, _, x_test, y_test = digits_for("lenet")
    result = compile_onnx(path, CompileOptions(quiet=True, calibration_data=x_train[:300]))
    assert [r for r in result.remarks if r[0] == "insert-qdq"] == []
    model = parse_model(result.output)
    per_axis = [t for t in model.tensors if t.dtype == "int8" and t.data is not None]
    assert len(per_axis) == len(weights)
    for name, (q, scales) in weights.items():
        axis = 0 if q.shape[0] == len(scales) else 1
        found = [t for t in per_axis if t.quant is not None and len(t.quant.scale) == len(
            scales) and np.allclose(t.quant.scale, scales, rtol=1e-6, atol=0)]
        assert len(found) == 1, name
        tensor = found[0]
        assert tensor.quant is not None and set(tensor.quant.zero_point) == {0}
        data = np.frombuffer(tensor.data or b"", np.int8).reshape(tensor.shape)
        channels = np.moveaxis(q, axis, 0).reshape(len(scales), -1)
        ours = np.moveaxis(data, tensor.quant.quantized_dimension, 0).reshape(len(scales), -1)
        np.testing.assert_array_equal(np.sort(ours, axis=1), np.sort(channels, axis=1))
    graph = result.graph
    inp, out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert inp.quant is not None and out.quant is not None
    feeds = quantize_input(to_physical(x_test, input_perm(graph)), inp.quant.scale[0],
                           inp.quant.zero_point[0])
    tflm = run_tflm(result.output, feeds)
    ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
    np.testing.assert_array_equal(tflm, ours)
    accuracy = (top1(tflm.astype(np.float64)) == y_test).mean()
    float_accuracy = (top1(ort_outputs(ort_session(ZOO / "lenet.onnx"), x_test)) == y_test
                      ).mean()
    assert accuracy >= float_accuracy - 0.01, (accuracy, float_accuracy)
