"""Mixed precision: ``--int16 NODE_OR_OPTYPE,...`` (16x8 layers inside an int8 model, with
requantizing QUANTIZE ops at the borders) and ``--int16 auto[:BUDGET]``, against
TFLite-Micro, LiteRT and host gcc.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.app.int16_advisor import advise
from microlith.diagnostics import MicrolithError
from tests.c_end_to_end.c_models import host_build, host_outputs, write_files
from tests.test_int16x8 import ZOO, check_tensors, compiled, data
from tools.runtimes import run_litert, run_tflm

CASES = [("lenet", ("/4/Conv",)), ("lenet", ("/9/Gemm", "/11/Gemm")), ("resnet8", ("Add",)),
         ("dscnn", ("Conv",)), ("mlp_sigmoid", ("Sigmoid",)),
         ("mlp_sigmoid", ("/4/Tanh", "/5/Gemm")), ("mobilenet_v1", ("/0/0.6/Gemm", "Softmax"))]


@pytest.mark.parametrize("name,layers", CASES)
def test_mixed_bit_exact_with_tflm(name: str, layers: tuple[str, ...]) -> None:
    m = compiled(name, "int8", int16=layers)
    kinds = {m.tfl.tensors[op.outputs[0]].dtype for op in m.tfl.operators}
    assert kinds == {"int8", "int16"}
    borders = [op for op in m.tfl.operators if op.op == "QUANTIZE"]
    assert borders and all(
        {m.tfl.tensors[op.inputs[0]].dtype, m.tfl.tensors[op.outputs[0]].dtype} ==
        {"int8", "int16"} for op in borders)
    assert check_tensors(m, data(name)[1][:10]) >= 3
    feeds = m.feed(data(name)[1][:100])
    a, b = run_tflm(m.data, feeds), run_litert(m.data, feeds)
    assert int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) <= 1


def test_mixed_needs_a_16x8_kernel() -> None:
    with pytest.raises(MicrolithError, match="--int16: .* has no 16x8 kernel"):
        compiled("helper_ops", "int8", int16=("HardSwish",), fallback="float")


def test_mixed_c_host_equals_tflm(tmp_path) -> None:
    from microlith.app.driver import CompileOptions, compile_onnx

    result = compile_onnx(ZOO / "lenet.onnx", CompileOptions(
        target="c", quantize="int8", int16=("/4/Conv", "/11/Gemm"),
        calibration_data=data("lenet")[0], quiet=True))
    m = compiled("lenet", "int8", int16=("/4/Conv", "/11/Gemm"))
    feeds = np.ascontiguousarray(m.feed(data("lenet")[1]))
    want = run_tflm(m.data, feeds, flatten=True)
    exe = host_build(write_files(tmp_path / "gen", result.files), result.graph.inputs[0].name,
                     "O2", tmp_path / "b")
    assert np.array_equal(host_outputs(exe, feeds, np.int8), want)


def _sqnr_float_io(name: str, int16: tuple[str, ...]) -> float:
    from tests.test_int8_end_to_end import digits
    from tests.test_int16x8 import dequantized, float_outputs, sqnr_db

    m = compiled(name, "int8", int16=int16, io_dtype="float32")
    xs = digits(name)[1]
    return sqnr_db(float_outputs(name), dequantized(m, run_tflm(m.data, m.feed(xs))))


def test_a_tensor_is_promoted_with_its_readers() -> None:
    """lenet: /9/Gemm's output tensor (read by /11/Gemm) is a candidate with both nodes; 16x8
    /9/Gemm alone gains nothing on held-out digits (its int8 reader rounds its output back),
    with its reader it gains >= 2 dB (TFLite-Micro, float interface)."""
    advice = advise(ZOO / "lenet.onnx", data("lenet")[0])
    groups = {c.name: c.nodes for c in advice.ranking}
    assert groups["/9/Gemm_output_0"] == ("/11/Gemm", "/9/Gemm"), groups
    base = _sqnr_float_io("lenet", ())
    alone, pair = _sqnr_float_io("lenet", ("/9/Gemm",)), _sqnr_float_io(
        "lenet", ("/9/Gemm", "/11/Gemm"))
    assert abs(alone - base) < 0.5 and pair > base + 2.0, (base, alone, pair)
    assert advice.all_sqnr_db > advice.chosen_sqnr_db - 1e-9 >= advice.int8_sqnr_db
    int8_out = advise(ZOO / "lenet.onnx", data("lenet")[0], output_dtype="int8")
    auto = compiled("lenet", "int8", int16=("auto",))  # the int8 output of the compile
    assert auto.data == compiled("lenet", "int8", int16=tuple(int8_out.chosen) or None).data


@pytest.mark.slow
def test_auto_promotes_few_layers_and_recovers_the_gap(tmp_path) -> None:
    """The benchmark's deep offset regression (64-32-32-32-32-1, target 273.15 + 10 mean
    ink): ``--int16 auto`` promotes <= 25% of the layers and recovers >= 80% of the SQNR gap
    between int8 and 16x8, on held-out digits in TFLite-Micro (float interface)."""
    pytest.importorskip("torch")
    from tools.bench_int16 import mixed_row, train_regressor
    from tools.digits import load_digits_split
    from tools.runtimes import ort_outputs, ort_session

    x_train, _, x_test, _ = load_digits_split(8, "flat")
    path = str(tmp_path / "regressor5.onnx")
    train_regressor(path, (32, 32, 32, 32))
    row = mixed_row("regression", path, x_train[:300], x_test,
                    ort_outputs(ort_session(path), x_test))
    assert 0 < row["promoted_layers"] <= 0.25 * row["layers"], row
    assert row["gap_recovered"] >= 0.8, row


def test_auto_budget_is_respected() -> None:
    advice = advise(ZOO / "lenet.onnx", data("lenet")[0], budget=100)
    assert advice.chosen == [] and advice.chosen_cost_bytes == 0
    with pytest.raises(MicrolithError, match="auto:BUDGET"):
        compiled("lenet", "int8", int16=("auto:x",))
