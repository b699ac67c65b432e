"""``microlith debug --quantize int16x8``: the per-layer table of the 16x8 model.

The 16x8 report's output SQNR is the one of the compiled ``--quantize int16x8`` model run
by TFLite-Micro on the same samples (vs onnxruntime's float outputs); its rows are the
16x8 tensors (zero point 0, LOGISTIC / TANH outputs at 2**-15); and the 16x8 output error is
below int8's.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from microlith.app.cli import main
from microlith.app.driver import CompileOptions, compile_onnx
from microlith.app.quant_debug import DebugOptions, debug_quantization
from microlith.formats.tflite.flatbuffer import parse_model
from tools.bench_common import ZOO, digits_for
from tools.runtimes import ort_outputs, ort_session, quantize_input, run_tflm

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MODEL = f"{ZOO}/mlp_sigmoid.onnx"
N = 64


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    return 10 * float(np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / noise))


def test_debug_16x8_output_sqnr_is_the_compiled_models() -> None:
    cal = digits_for("mlp_sigmoid")[0][:N]
    report = debug_quantization(MODEL, DebugOptions(calibration_data=cal, quantize="int16x8",
                                                    quiet=True))
    int8 = debug_quantization(MODEL, DebugOptions(calibration_data=cal, quiet=True))
    assert report.kind == "16x8" and report.table().startswith("16x8 error per layer")
    assert all(r.zero_point == 0 for r in report.rows)
    fixed = {r.op: r.scale for r in report.rows if r.op in ("Sigmoid", "Tanh")}
    assert fixed == {"Sigmoid": 2.0 ** -15, "Tanh": 2.0 ** -15}
    data = compile_onnx(MODEL, CompileOptions(quantize="int16x8", calibration_data=cal,
                                              quiet=True)).output
    tfl = parse_model(data)
    qi, qo = (tfl.tensors[i].quant for i in (tfl.inputs[0], tfl.outputs[0]))
    out = run_tflm(data, quantize_input(cal, qi.scale[0], qi.zero_point[0], "int16"))
    got = (out.astype(np.float64) - qo.zero_point[0]) * qo.scale[0]
    want = sqnr_db(ort_outputs(ort_session(MODEL), cal), got)
    (metrics,) = report.outputs.values()
    assert abs(metrics.sqnr_db - want) < 0.05, (metrics.sqnr_db, want)
    (metrics8,) = int8.outputs.values()
    assert metrics.sqnr_db > metrics8.sqnr_db + 2.0


def test_debug_cli_16x8(tmp_path, capsys) -> None:
    name = onnx.load(MODEL).graph.input[0].name
    path = tmp_path / "cal.npz"
    np.savez(path, **{name: digits_for("mlp_sigmoid")[0][:16]})
    assert main(["debug", MODEL, "--calibration-data", str(path), "--quantize", "int16x8",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "16x8 error per layer" in out and "argmax agreement float vs 16x8" in out
    with pytest.raises(SystemExit) as exc:
        main(["debug", MODEL, "--calibration-data", str(path), "--quantize", "int4"])
    assert exc.value.code == 2
