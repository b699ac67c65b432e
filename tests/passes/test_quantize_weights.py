"""``quantize-weights``: IR text (FileCheck), numerics against onnxruntime, and what it must
leave alone (the LiteRT runs of whole models are in ``tests/test_weight_modes.py``)."""

from __future__ import annotations

import pytest

from microlith.ir.types import DType
from microlith.pipeline import parse_pipeline
from tests.passes.passkit import ZOO, assert_matches_onnxruntime, compile_model, print_graph
from tools.filecheck import filecheck

CANONICAL = "infer-shapes,fold-constants,lower-fc,fold-batchnorm,fuse-activation,to-nhwc"


def test_int8_weights_ir() -> None:
    graph, _ = compile_model(ZOO / "lenet.onnx", f"{CANONICAL},quantize-weights")
    filecheck(print_graph(graph), """
        CHECK: const tensor<6x5x5x1xi8, q<axis=0,n=6,
        CHECK: const tensor<6xf32>
        CHECK: const tensor<64x64xi8, q<axis=0,n=64,
        CHECK: Conv(%arg0, %c0, %c1)
        CHECK: FullyConnected(
        CHECK-SAME: : tensor<1x64xf32>
    """)
    assert graph.meta["weight_storage"] == "int8"


def test_float16_weights_ir_and_numerics() -> None:
    graph, _ = compile_model(ZOO / "lenet.onnx",
                             f"{CANONICAL},quantize-weights{{dtype=float16}}")
    filecheck(print_graph(graph), """
        CHECK: const tensor<6x5x5x1xf16>
        CHECK: const tensor<6xf16>
        CHECK-NOT: xf32> #
        CHECK: Conv(
    """)
    constants = [v for v in graph.constants() if v.uses and v.dtype.is_float]
    assert constants and all(v.dtype == DType.FLOAT16 for v in constants)
    assert_matches_onnxruntime(graph, ZOO / "lenet.onnx", atol=0.05)


def test_int8_weights_numerics() -> None:
    graph, _ = compile_model(ZOO / "lenet.onnx", f"{CANONICAL},quantize-weights")
    assert_matches_onnxruntime(graph, ZOO / "lenet.onnx", atol=0.5)


def test_min_elements_keeps_small_layers_float() -> None:
    """Must not fire below the threshold: the 150-weight first convolution stays float32."""
    graph, ctx = compile_model(ZOO / "lenet.onnx",
                               f"{CANONICAL},quantize-weights{{min-elements=1024}}")
    conv = graph.nodes[0]
    assert conv.arg(1).dtype == DType.FLOAT32
    assert any("min-elements 1024" in r[2] for r in ctx.remarks)


def test_bad_option() -> None:
    with pytest.raises(Exception, match="min-elements"):
        parse_pipeline("quantize-weights{min-elements=-1}")
