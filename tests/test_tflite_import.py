"""TFLite in: an int8 ``.tflite`` compiles to C whose outputs are TFLite-Micro's bytes on
that same file (arena at the liveness bound); a float ``.tflite`` is quantized by our
calibrator from NHWC data and matches the ONNX path; bad files are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith import CompileOptions, Converter, compile_onnx
from microlith.app.driver import write_directory
from microlith.app.run_model import run_c_directory, run_tflite
from microlith.diagnostics import MicrolithError, UsageError
from microlith.formats.tflite.flatbuffer import parse_model
from tests.cli.clikit import run

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "tests" / "zoo"
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"


def _samples(path: Path, n: int) -> np.ndarray:
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value or 1 for d in dims]
    return np.random.default_rng(1).standard_normal((n, *shape[1:])).astype(np.float32)


@pytest.mark.parametrize("name", ["lenet", "dscnn", "mobilenet_v1", "resnet8", "mlp_sigmoid",
                                  "helper_matmul"])
def test_int8_tflite_to_c_matches_tflm(name, tmp_path):
    calib = _samples(ZOO / f"{name}.onnx", 24)
    data = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        quantize="int8", quiet=True, calibration_data=[[c[None]] for c in calib])).output
    (tmp_path / "model.tflite").write_bytes(data)
    conv = Converter.from_tflite(tmp_path / "model.tflite", target="c")
    result = conv.compile()
    write_directory(tmp_path / "c", result.files)
    x = calib[:6]
    ours = run_c_directory(tmp_path / "c", x, "host").outputs[0]
    micro = run_tflite(tmp_path / "model.tflite", x, "tflite-micro").outputs[0]
    np.testing.assert_array_equal(ours, micro)
    # at the liveness bound, rounded up to the plan's 8-byte alignment (kernel scratch
    # such as the DSP convolution's im2col columns is not a multiple of 8)
    assert result.sizes["arena"] == -(-result.sizes["lower_bound"] // 8) * 8
    assert Converter.from_tflite(data, target="c").convert() == result.files  # bytes: same


def test_float_tflite_quantized_by_us_matches_the_onnx_path(tmp_path):
    digits = np.load(CALIB)["input"]
    float_tflite = compile_onnx(LENET).output
    np.savez(tmp_path / "nhwc.npz", input=digits.transpose(0, 2, 3, 1))  # the file's layout
    (tmp_path / "f.tflite").write_bytes(float_tflite)
    proc = run("compile", "f.tflite", "-o", "q.tflite", "--quantize", "int8",
               "--calibration-data", "nhwc.npz", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    onnx_int8 = compile_onnx(LENET, CompileOptions(quantize="int8", quiet=True,
                                                   calibration_data=str(CALIB))).output
    (tmp_path / "o.tflite").write_bytes(onnx_int8)
    ours = run_tflite(tmp_path / "q.tflite", digits).outputs[0]
    reference = run_tflite(tmp_path / "o.tflite", digits).outputs[0]
    np.testing.assert_array_equal(ours, reference)  # same ranges -> same int8 model
    same_float = Converter.from_tflite(float_tflite).convert()
    assert [op.op for op in parse_model(same_float).operators] == \
        [op.op for op in parse_model(float_tflite).operators]


def test_tflite_input_errors(tmp_path):
    with pytest.raises(MicrolithError, match=r"<tflite bytes>: not a valid \.tflite file"):
        Converter.from_tflite(b"TFL3" * 10).convert()
    q = compile_onnx(LENET, CompileOptions(quantize="int8", quiet=True,
                                           calibration_data=str(CALIB))).output
    with pytest.raises(UsageError, match="already quantized"):
        Converter.from_tflite(q, quantize="int8")
    from microlith.formats.tflite.flatbuffer import serialize_model

    model = parse_model(q)
    for op in model.operators:
        if op.op == "MAX_POOL_2D":
            op.op, op.options = "L2_POOL_2D", {**op.options}
    with pytest.raises(MicrolithError, match=r"unsupported TFLite operators: L2_POOL_2D"):
        Converter.from_tflite(serialize_model(model)).convert()
