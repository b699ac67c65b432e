"""The QOperator ops the zoo models do not produce: ``QLinearMatMul``, ``QLinearMul``,
``QLinearLeakyRelu``, ``QLinearConcat`` (onnxruntime ``quantize_static`` in QOperator
format of a small MatMul / LeakyRelu / Mul / Concat network), compiled with no calibration
data: TFLite-Micro == our interpreter, and >= 99% top-1 agreement with onnxruntime on 200
random inputs (99.5% measured)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tests.badinput import model, save, vi
from tools.qdq_zoo import make_qdq
from tools.runtimes import ort_outputs, ort_session, quantize_input, run_tflm, top1

pytest.importorskip("onnxruntime.quantization")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

RNG = np.random.default_rng(3)


def float_model() -> onnx.ModelProto:
    inits = {"w1": RNG.standard_normal((16, 8)).astype(np.float32) * 0.3,
             "w2": RNG.standard_normal((16, 8)).astype(np.float32) * 0.3,
             "m": RNG.uniform(0.5, 1.5, 8).astype(np.float32),
             "w3": RNG.standard_normal((16, 10)).astype(np.float32) * 0.3}
    nodes = [helper.make_node("MatMul", ["input", "w1"], ["a"], name="mm1"),
             helper.make_node("LeakyRelu", ["a"], ["b"], name="leaky", alpha=0.1),
             helper.make_node("Mul", ["b", "m"], ["c"], name="mul"),
             helper.make_node("MatMul", ["input", "w2"], ["d"], name="mm2"),
             helper.make_node("Concat", ["c", "d"], ["e"], name="cat", axis=1),
             helper.make_node("MatMul", ["e", "w3"], ["logits"], name="mm3")]
    return model(nodes, [vi("input", [1, 16])], [vi("logits", [1, 10])], inits)


def test_qoperator_matmul_mul_leaky_concat(tmp_path: Path) -> None:
    source = save(float_model(), tmp_path / "f.onnx")
    x = RNG.uniform(-1, 1, (300, 16)).astype(np.float32)
    path = make_qdq(source, tmp_path / "qop.onnx", x[:100], False, "QUInt8",
                    quant_format="QOperator")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QLinearMatMul", "QLinearMul", "QLinearLeakyRelu", "QLinearConcat"} <= ops, ops
    result = compile_onnx(path, CompileOptions(quiet=True))
    tfl = parse_model(result.output)
    inp = tfl.tensors[tfl.inputs[0]]
    assert inp.quant is not None
    feeds = quantize_input(x[100:], inp.quant.scale[0], inp.quant.zero_point[0])
    tflm = run_tflm(result.output, feeds)
    graph = result.graph
    np.testing.assert_array_equal(
        run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name], tflm)
    reference = ort_outputs(ort_session(path), x[100:])
    agreement = (top1(tflm.astype(np.float64)) == top1(reference)).mean()
    assert agreement >= 0.99, agreement
