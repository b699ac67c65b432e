"""``infer-shapes``: every node's output type recomputed from the op registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import PassError
from microlith.interpreter import run_graph
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.pipeline import PassManager
from tests.passes.passkit import (
    ZOO,
    ZOO_MODELS,
    assert_matches_onnxruntime,
    compile_model,
    make_model,
    print_graph,
    run_pipeline,
    zoo_feeds,
)
from tools.filecheck import filecheck


def conv_flatten(tmp_path: Path) -> Path:
    return make_model(tmp_path / "cf.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["y"], name="flatten")],
        [("x", [1, 3, 8, 8])], [("y", [1, 64])],
        {"w": np.random.default_rng(0).standard_normal((4, 3, 3, 3))})


# ---- IR text ------------------------------------------------------------------------------

def test_wrong_types_are_repaired(tmp_path: Path) -> None:
    path = conv_flatten(tmp_path)
    graph, _ = compile_model(path, "infer-shapes")
    expected = print_graph(graph)
    conv, flatten = graph.nodes
    conv.output.set_type(TensorType(DType.FLOAT32, (1, 4, 8, 8)))
    flatten.output.set_type(TensorType(DType.INT32, (1, 256)))
    run_pipeline(graph, "infer-shapes")
    text = print_graph(graph)
    filecheck(text, """
        CHECK: %0 = Conv(%arg0, %c0)
        CHECK-SAME: : tensor<1x4x4x4xf32>  # conv
        CHECK-NEXT: %1 = Flatten(%0) {axis=1} : tensor<1x64xf32>  # flatten
    """)
    assert text == expected
    assert_matches_onnxruntime(graph, path)


def test_quantization_is_kept_when_the_shape_is_unchanged(tmp_path: Path) -> None:
    graph, _ = compile_model(conv_flatten(tmp_path), "infer-shapes")
    quant = QuantParams((0.05,), (3,))
    graph.nodes[1].output.set_type(graph.nodes[1].output.type.with_quant(quant))
    run_pipeline(graph, "infer-shapes")
    assert graph.nodes[1].output.quant == quant
    assert "q<0.05:3>" in print_graph(graph)


# ---- numerics: exact shapes checked node by node by the interpreter ---------------------------

@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_types_match_what_the_kernels_produce(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, _ = compile_model(path, "infer-shapes")
    # With inputs of exactly the typed shape the interpreter checks every node's output
    # shape against its IR type.
    (feed,) = zoo_feeds(name, 1)
    outputs = run_graph(graph, feed, keep_all=True)
    for node in graph.nodes:
        for value in node.outputs:
            assert outputs[value.name].shape == value.shape, node.name
            assert outputs[value.name].dtype == value.dtype.numpy, node.name
    assert_matches_onnxruntime(graph, path, [feed])


# ---- bad input ----------------------------------------------------------------------------

def test_inputs_that_do_not_fit_name_the_node(tmp_path: Path) -> None:
    graph, _ = compile_model(conv_flatten(tmp_path), "infer-shapes")
    conv = graph.nodes[0]
    conv.set_input(1, graph.add_constant(np.zeros((4, 2, 3, 3), np.float32), "bad_w"))
    with pytest.raises(PassError, match=r"pass 'infer-shapes' failed at node 'conv' \(Conv\): "
                                        r"input has 3 channels, weights expect 2 x group 1 "
                                        r"\[passes before it: eliminate-dead\]") as info:
        PassManager.from_spec("eliminate-dead,infer-shapes").run(graph)  # no verify_each
    assert "^^^" in info.value.context  # type: ignore[attr-defined]


def test_reshape_waiting_for_fold_constants_keeps_its_type() -> None:
    graph, _ = compile_model(ZOO / "helper_ops.onnx", "infer-shapes")
    (reshape,) = graph.find("Reshape")
    assert reshape.inputs[1].producer is not None  # still a Shape chain
    before = reshape.output.type
    run_pipeline(graph, "infer-shapes,fold-constants,infer-shapes")
    assert reshape.inputs[1].is_constant and reshape.output.type == before
