"""TFLite in, beyond int8: a 16x8 ``.tflite`` (int16 activations), an int8 one with uint8
I/O (QUANTIZE uint8 -> int8 and back at the edges) and a mixed int8/16x8 one (requantizing
QUANTIZE ops at the borders), all made by our own writer, compile with ``microlith compile
model.tflite --target c``; the C's outputs are TFLite-Micro's bytes on that same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith import CompileOptions, compile_onnx
from microlith.app.run_model import run_c_directory, run_tflite
from microlith.formats.tflite.flatbuffer import parse_model
from tests.cli.clikit import run

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"
ZOO = ROOT / "tests" / "zoo"

CASES = {  # name: (model, CompileOptions fields, (input dtype, output dtype), op that must appear)
    "lenet-16x8": (LENET, {"quantize": "int16x8"}, ("int16", "int16"), "CONV_2D"),
    "lenet-uint8-io": (LENET, {"quantize": "int8", "io_dtype": "uint8"}, ("uint8", "uint8"),
                       "QUANTIZE"),
    "lenet-mixed": (LENET, {"quantize": "int8", "int16": ("/4/Conv",)}, ("int8", "int8"),
                    "QUANTIZE"),
    "dscnn-16x8": pytest.param(ZOO / "dscnn.onnx", {"quantize": "int16x8"}, ("int16", "int16"),
                   "DEPTHWISE_CONV_2D", marks=pytest.mark.slow),
}


def _data(model: Path, work: Path) -> tuple[Path, np.ndarray]:
    if model == LENET:
        return CALIB, np.load(CALIB)["input"][:16]
    dims = onnx.load(model).graph.input[0].type.tensor_type.shape.dim
    shape = [d.dim_value or 1 for d in dims]
    x = np.random.default_rng(1).standard_normal((24, *shape[1:])).astype(np.float32)
    name = onnx.load(model).graph.input[0].name
    np.savez(work / "calib.npz", **{name: x})
    return work / "calib.npz", x[:8]


def _params(case: str) -> tuple:
    value = CASES[case]
    return tuple(value.values) if hasattr(value, "values") else value


def _write(model: Path, options: dict, calib: Path, path: Path) -> None:
    result = compile_onnx(model, CompileOptions(calibration_data=str(calib), quiet=True,
                                                **options))
    path.write_bytes(result.output)


@pytest.mark.parametrize("case", [pytest.param(c, marks=CASES[c].marks)
                                  if hasattr(CASES[c], "marks") else c for c in sorted(CASES)])
def test_tflite_to_c_matches_tflm(case, tmp_path):
    model, options, (in_dtype, out_dtype), op = _params(case)
    calib, x = _data(model, tmp_path)
    _write(model, options, calib, tmp_path / "m.tflite")
    parsed = parse_model((tmp_path / "m.tflite").read_bytes())
    assert parsed.tensors[parsed.inputs[0]].dtype == in_dtype
    assert parsed.tensors[parsed.outputs[0]].dtype == out_dtype
    assert op in {o.op for o in parsed.operators}
    proc = run("compile", "m.tflite", "--target", "c", "-o", "c", "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nhwc = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x  # the file's own layout
    ours = run_c_directory(tmp_path / "c", nhwc, "host").outputs[0]
    micro = run_tflite(tmp_path / "m.tflite", nhwc, "tflite-micro").outputs[0]
    assert ours.dtype == np.dtype(out_dtype) and ours.shape[0] == len(x)
    np.testing.assert_array_equal(ours, micro)
    assert len(np.unique(ours)) > 3  # not a constant output


def test_float_input_quantize_is_refused(tmp_path):
    """A float-I/O int8 file (QUANTIZE / DEQUANTIZE from and to float at the edges) is not an
    integer model for the C target: one line naming the file."""
    _write(LENET, {"quantize": "int8", "io_dtype": "float32"}, CALIB, tmp_path / "f.tflite")
    proc = run("compile", "f.tflite", "--target", "c", "-o", "c", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "f.tflite" in proc.stderr and "Traceback" not in proc.stderr
