"""``import-qdq``: a Q/DQ model's pairs are stripped, their numbers kept for ``insert-qdq``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microlith.diagnostics import PassError
from tests.badinput import save
from tests.passes.passkit import ZOO, compile_model, print_graph
from tests.qdq.qdqkit import W, qdq_gemm
from tools.filecheck import filecheck

TO_INT8 = ("import-qdq,infer-shapes,lower-fc,calibrate{optional=true},insert-qdq,"
           "fuse-requantize,eliminate-dead")


def test_pairs_are_stripped_and_annotated(tmp_path: Path) -> None:
    graph, ctx = compile_model(save(qdq_gemm(), tmp_path / "m.onnx"), "import-qdq")
    filecheck(print_graph(graph), """
        CHECK: graph @g(%arg0: tensor<1x4xf32>)
        CHECK-NEXT: %c0 = const tensor<3x4xf32>
        CHECK-NEXT: %0 = Gemm(%arg0, %c0)
        CHECK-NEXT: return %0
    """)
    assert str(graph.inputs[0].meta["qdq"]) == "q<0.02:-128>"  # uint8 zero point 0 - 128
    assert str(graph.outputs[0].meta["qdq"]) == "q<0.05:0>"
    weights = graph.nodes[0].meta["qdq_inputs"][1]
    assert weights.axis == 0 and len(weights.scale) == 3
    np.testing.assert_array_equal(graph.nodes[0].arg(1).constant,
                                  W.astype(np.float32) * np.float32(0.01))
    assert any("1 activation Q/DQ pairs" in m or "2 activation Q/DQ pairs" in m
               for _, _, m in ctx.remarks)


def test_the_model_numbers_reach_the_integer_graph(tmp_path: Path) -> None:
    graph, ctx = compile_model(save(qdq_gemm(), tmp_path / "m.onnx"), TO_INT8)
    filecheck(print_graph(graph), """
        CHECK: graph @g(%arg0: tensor<1x4xi8, q<0.02:-128>>)
        CHECK-NEXT: %c0 = const tensor<3x4xi8, q<axis=0,n=3,0.01..0.01>>
        CHECK-NEXT: %0 = FullyConnected(%arg0, %c0) : tensor<1x3xi8, q<0.05:0>>
        CHECK-NEXT: return %0
    """)
    np.testing.assert_array_equal(graph.nodes[0].arg(1).constant, W)  # the model's integers
    assert not [r for r in ctx.remarks if r[0] == "insert-qdq"]


def test_asymmetric_weights_are_requantized_with_a_remark(tmp_path: Path) -> None:
    path = save(qdq_gemm(w_zp=np.array([0, 3, 0], np.int8)), tmp_path / "m.onnx")
    graph, ctx = compile_model(path, TO_INT8)
    fc = graph.nodes[0]
    assert fc.arg(1).quant is not None and set(fc.arg(1).quant.zero_point) == {0}
    remarks = [m for p, n, m in ctx.remarks if p == "insert-qdq" and n == "gemm"]
    assert remarks and "asymmetric (zero point 3)" in remarks[0], remarks
    with pytest.raises(PassError, match="asymmetric.*--strict-qdq forbids"):
        compile_model(path, TO_INT8.replace("insert-qdq", "insert-qdq{strict=true}"))


def test_float_model_is_left_alone(tmp_path: Path) -> None:
    """Must not fire: a model without Q/DQ prints the same before and after."""
    before, _ = compile_model(ZOO / "lenet.onnx", "infer-shapes")
    after, ctx = compile_model(ZOO / "lenet.onnx", "infer-shapes,import-qdq")
    assert print_graph(after) == print_graph(before)
    assert any("0 activation Q/DQ pairs, 0 quantized constants" in m for _, _, m in ctx.remarks)
