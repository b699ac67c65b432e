"""onnxruntime Q/DQ models of every trained zoo model compile with their own scales.

Each zoo model is quantized by onnxruntime's ``quantize_static`` (QDQ format, after
``quant_pre_process``) on 100 training digits, in four configurations: per-channel and
per-tensor weights, QUInt8 and QInt8 activations (``tools/qdq_zoo.py``). Each compiles
with **no calibration data**, and then:

* every activation tensor of the ``.tflite`` carries the ONNX scale (relative 1e-6) and
  zero point (shifted by -128 for uint8; ``tools.qdq_zoo.scale_mismatches``);
* top-1 agreement with onnxruntime running the Q/DQ model on the 450 held-out digits is
  >= 99%;
* TFLite-Micro's output bytes == our integer interpreter's == our C's (host gcc -O2);
* the only changes of the model's numbers are the remarked ones, and ``--strict-qdq``
  turns them into an error.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import MicrolithError
from tests.c_end_to_end.c_models import host_build, host_outputs, write_files
from tools.qdq_zoo import CONFIGS, TRAINED, ZOO, digits_for, make_qdq, measure

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

CASES = [(name, config) for name in TRAINED for config in CONFIGS]


@pytest.fixture(scope="module")
def qdq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("qdq")


@functools.cache
def _case(directory: Path, name: str, config: str) -> tuple[Path, dict[str, Any]]:
    x_train, _, x_test, y_test = digits_for(name)
    per_channel, acts = CONFIGS[config]
    path = make_qdq(ZOO / f"{name}.onnx", directory / f"{name}_{config}.onnx", x_train[:100],
                    per_channel, acts)
    return path, measure(path, x_test, y_test)


@pytest.mark.parametrize(("name", "config"), CASES)
def test_qdq_model_keeps_its_scales_and_agrees(qdq_dir: Path, name: str, config: str) -> None:
    _, m = _case(qdq_dir, name, config)
    assert m["scale_mismatches"] == []
    assert m["agreement"] >= 0.99, m
    assert m["tflm_equals_interpreter"]


@pytest.mark.parametrize(("name", "config"), [c for c in CASES if c[1] in ("pc-u8", "pt-s8")])
def test_qdq_model_c_equals_tflm(qdq_dir: Path, name: str, config: str, tmp_path: Path
                                 ) -> None:
    path, m = _case(qdq_dir, name, config)
    result = compile_onnx(path, CompileOptions(target="c", quiet=True))
    directory = write_files(tmp_path / "c", result.files)
    exe = host_build(directory, result.graph.inputs[0].name, "O2", tmp_path / "build")
    got = host_outputs(exe, m["feeds"].reshape(len(m["feeds"]), -1))
    np.testing.assert_array_equal(got, m["tflm"])


def test_fixed_output_scales_are_requantized_and_remarked(qdq_dir: Path) -> None:
    """mlp_sigmoid: Sigmoid / Tanh write TFLite's fixed scales, then a requantize to the
    model's; mobilenet_v1: Softmax likewise. The remark names node, change and reason."""
    _, m = _case(qdq_dir, "mlp_sigmoid", "pc-u8")
    fixed = [r for r in m["remarks"] if "fixed output scale" in r]
    assert any(r.startswith("/2/Sigmoid:") and "q<0.00390625:-128>" in r for r in fixed), fixed
    assert any(r.startswith("/4/Tanh:") and "q<0.0078125:0>" in r for r in fixed), fixed
    _, m = _case(qdq_dir, "mobilenet_v1", "pc-s8")
    assert any("Softmax" in r and "fixed output scale" in r for r in m["remarks"])


def test_strict_qdq_refuses_the_remarked_changes(qdq_dir: Path) -> None:
    path, _ = _case(qdq_dir, "mlp_sigmoid", "pc-u8")
    with pytest.raises(MicrolithError, match=r"Sigmoid.*--strict-qdq forbids"):
        compile_onnx(path, CompileOptions(quiet=True, strict_qdq=True))


def test_strict_qdq_accepts_a_model_that_needs_no_change(qdq_dir: Path) -> None:
    path, m = _case(qdq_dir, "lenet", "pc-s8")
    assert m["remarks"] == []
    result = compile_onnx(path, CompileOptions(quiet=True, strict_qdq=True))
    assert result.output == m["tflite"]  # deterministic, and strict changes nothing


def test_explicit_int8_mode_is_refused_for_a_qdq_model(qdq_dir: Path) -> None:
    path, _ = _case(qdq_dir, "lenet", "pc-s8")
    x_train = digits_for("lenet")[0][:10]
    with pytest.raises(MicrolithError, match="already quantized.*--quantize qdq"):
        compile_onnx(path, CompileOptions(quiet=True, quantize="int8", calibration_data={
            "input": x_train}))
