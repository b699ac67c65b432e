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


def test_auto_promotes_few_layers_and_recovers_the_gap() -> None:
    """lenet: the output layer alone (1 of 4 candidates) recovers >= 80% of the gap."""
    advice = advise(ZOO / "lenet.onnx", data("lenet")[0])
    assert 0 < len(advice.chosen) <= 0.25 * advice.candidates, advice.table()
    assert advice.gap_recovered >= 0.8, advice.table()
    auto = compiled("lenet", "int8", int16=("auto",))
    assert auto.data == compiled("lenet", "int8", int16=tuple(advice.chosen)).data


def test_auto_budget_is_respected() -> None:
    advice = advise(ZOO / "lenet.onnx", data("lenet")[0], budget=100)
    assert advice.chosen == [] and advice.chosen_cost_bytes == 0
    with pytest.raises(MicrolithError, match="auto:BUDGET"):
        compiled("lenet", "int8", int16=("auto:x",))
