"""``.tflite`` conventions: the ``serving_default`` SignatureDef, ``min_runtime_version``
metadata, and ``--strip`` (outputs unchanged in TFLite-Micro)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microlith import CompileOptions, compile_onnx
from microlith.backends.tflite.runtime_version import (
    metadata_buffer,
    min_runtime_version,
    release_for,
)
from microlith.formats.tflite.flatbuffer import parse_model, serialize_model
from microlith.formats.tflite.signature import TflSignature
from tests.backends.tflite_models import Interpreter, build_float_model, run_tflm

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return np.load(CALIB)["input"]


@pytest.fixture(scope="module")
def compiled() -> dict[str, bytes]:
    float_ = compile_onnx(LENET).output
    int8 = compile_onnx(LENET, CompileOptions(quantize="int8", calibration_data=str(CALIB),
                                              quiet=True)).output
    stripped = compile_onnx(LENET, CompileOptions(quantize="int8", calibration_data=str(CALIB),
                                                  quiet=True, strip=True)).output
    int16 = compile_onnx(LENET, CompileOptions(quantize="int16x8", quiet=True,
                                               calibration_data=str(CALIB))).output
    dynamic = compile_onnx(LENET, CompileOptions(quantize="dynamic", quiet=True)).output
    float16 = compile_onnx(LENET, CompileOptions(quantize="float16", quiet=True)).output
    return {"float": float_, "int8": int8, "int8-stripped": stripped, "int16x8": int16,
            "dynamic": dynamic, "float16": float16}


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


@pytest.mark.parametrize("mode", ["float", "int8", "int16x8", "dynamic", "float16"])
def test_signature_runner_matches_invoke(compiled, digits, mode):
    signed = Interpreter(model_content=compiled[mode])
    assert signed.get_signature_list() == {
        "serving_default": {"inputs": ["input"], "outputs": ["logits"]}}
    runner = signed.get_signature_runner("serving_default")
    interp = Interpreter(model_content=compiled[mode])
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    out_index = interp.get_output_details()[0]["index"]
    for sample in digits[:8]:
        x = _quantize(sample.transpose(1, 2, 0)[None], detail)  # the .tflite is NHWC
        got = runner(input=x)["logits"].copy()
        interp.set_tensor(detail["index"], x)
        interp.invoke()
        expected = interp.get_tensor(out_index).copy()
        assert got.dtype == expected.dtype == detail["dtype"]
        np.testing.assert_array_equal(got, expected)
    assert np.any(got != got.flat[0])  # not a constant output


def test_min_runtime_version_of_compiled_models(compiled):
    for mode, data in compiled.items():
        model = parse_model(data)
        expected = min_runtime_version((op.op, op.version) for op in model.operators)
        if mode.endswith("stripped"):
            assert model.metadata == {}
            continue
        assert model.metadata == {"min_runtime_version": metadata_buffer(expected)}
    int8_ops = {(op.op, op.version) for op in parse_model(compiled["int8"]).operators}
    assert ("CONV_2D", 3) in int8_ops and ("FULLY_CONNECTED", 4) in int8_ops
    assert parse_model(compiled["int8"]).metadata["min_runtime_version"] == \
        b"1.14.0" + bytes(10)


def test_min_runtime_version_rules():
    assert release_for("CONV_2D", 1) == "1.5.0" and release_for("CONV_2D", 3) == "1.14.0"
    assert release_for("QUANTIZE", 3) == "2.7.0" and release_for("CONV_2D", 99) is None
    assert release_for("NOT_AN_OP", 1) is None
    # numeric, not string order: 1.14.0 > 1.5.0 and 2.10 would beat 2.9
    assert min_runtime_version([("CONV_2D", 1), ("FULLY_CONNECTED", 3)]) == "1.14.0"
    assert min_runtime_version([("RESHAPE", 1), ("DEQUANTIZE", 5), ("CONV_2D", 6)]) == "2.9.0"
    assert min_runtime_version([("CONV_2D", 99)]) == ""  # unknown pairs are skipped
    with pytest.raises(ValueError, match="16 bytes"):
        metadata_buffer("1.2.3.4.5.6.7.8.9")


def test_signatures_round_trip_and_checks():
    model, _ = build_float_model(np.random.default_rng(0))
    model.signatures = [TflSignature("serving_default", [("x", model.inputs[0])],
                                     [("y", model.outputs[0])])]
    data = serialize_model(model)
    assert parse_model(data).signatures == model.signatures
    assert serialize_model(parse_model(data)) == data
    model.signatures[0].outputs.append(("y", model.outputs[0]))
    with pytest.raises(ValueError, match="duplicate output names"):
        serialize_model(model)
    model.signatures = [TflSignature("s", [("x", 999)], [])]
    with pytest.raises(ValueError, match="tensor index 999 out of range"):
        serialize_model(model)


def test_strip_keeps_tflm_outputs(compiled, digits):
    full, stripped = compiled["int8"], compiled["int8-stripped"]
    assert len(stripped) < len(full)
    model = parse_model(stripped)
    assert all(t.name == "" for t in model.tensors) and model.signatures == []
    assert model.description == "" and model.subgraph_name == ""
    interp = Interpreter(model_content=full)
    detail = interp.get_input_details()[0]
    xs = [_quantize(s.transpose(1, 2, 0)[None], detail) for s in digits[:20]]
    outs = [(run_tflm(full, [x])[0], run_tflm(stripped, [x])[0]) for x in xs]
    for a, b in outs:
        np.testing.assert_array_equal(a, b)
    assert len({a.tobytes() for a, _ in outs}) > 1
    Interpreter(model_content=stripped).allocate_tensors()  # LiteRT still loads it


def test_strip_refused_for_c(tmp_path):
    from microlith.diagnostics import UsageError

    with pytest.raises(UsageError, match="--strip applies to flatbuffer targets"):
        compile_onnx(LENET, CompileOptions(target="c", quantize="int8", strip=True,
                                           calibration_data=str(CALIB)))
