"""``fold-constants``: nodes with constant inputs (and every Shape) become constants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from microlith.ir.types import QuantParams
from tests.passes.passkit import (
    ZOO,
    assert_matches_onnxruntime,
    compile_model,
    make_model,
    ops,
    print_graph,
    remarks_for,
    run_pipeline,
    zoo_feeds,
)
from tools.filecheck import filecheck

# ---- IR text ------------------------------------------------------------------------------


def test_shape_chain_of_helper_ops_folds() -> None:
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape: the target shape is a constant."""
    path = ZOO / "helper_ops.onnx"
    graph, ctx = compile_model(path, "infer-shapes,fold-constants")
    text = print_graph(graph)
    filecheck(text, """
        CHECK-NOT: Shape(
        CHECK: = const tensor<2xi64> [1, -1]  # target_shape
        CHECK-NOT: Shape(
        CHECK-NOT: Gather(
        CHECK: Reshape(%{{[0-9]+}}, %c{{[0-9]+}})
        CHECK-NOT: Shape(
    """)
    for name in ("shape", "batch", "batch_1d", "target_shape"):
        assert remarks_for(ctx, name) == ["folded to a constant"]
    assert not {"Shape", "Gather"} & set(ops(graph))
    assert_matches_onnxruntime(graph, path, zoo_feeds("helper_ops", 3))


def test_constant_subgraph_folds_and_keeps_names(tmp_path: Path) -> None:
    path = make_model(tmp_path / "consts.onnx", [
        helper.make_node("Add", ["k1", "k2"], ["s"], name="add"),
        helper.make_node("Sqrt", ["s"], ["r"], name="sqrt"),
        helper.make_node("Mul", ["x", "r"], ["y"], name="mul")],
        [("x", [1, 3])], [("y", [1, 3])],
        {"k1": np.array([1.0, 2.0, 3.0]), "k2": np.array([3.0, 7.0, 13.0])})
    graph, _ = compile_model(path, "fold-constants,eliminate-dead")
    filecheck(print_graph(graph), """
        CHECK: %c0 = const tensor<3xf32> [2, 3, 4]  # r
        CHECK-NEXT: %0 = Mul(%arg0, %c0) : tensor<1x3xf32>  # mul
        CHECK-NEXT: return %0
    """)
    assert_matches_onnxruntime(graph, path)


def test_folded_graph_output_keeps_its_name(tmp_path: Path) -> None:
    path = make_model(tmp_path / "out.onnx", [
        helper.make_node("Neg", ["k"], ["y"]), helper.make_node("Relu", ["x"], ["z"])],
        [("x", [2])], [("y", [2]), ("z", [2])], {"k": np.array([1.0, -2.0])})
    graph, _ = compile_model(path, "fold-constants")
    assert ops(graph) == ["Relu"] and [v.name for v in graph.outputs] == ["y", "z"]
    assert graph.outputs[0].data.tolist() == [-1.0, 2.0]
    assert_matches_onnxruntime(graph, path)


# ---- numerics -------------------------------------------------------------------------------

def test_zoo_numerics_after_folding() -> None:
    for name in ("mobilenet_v1", "helper_matmul"):
        path = ZOO / f"{name}.onnx"
        graph, _ = compile_model(path, "infer-shapes,fold-constants")
        assert_matches_onnxruntime(graph, path, zoo_feeds(name, 5))


def test_shape_of_an_activation_folds_to_its_static_shape(tmp_path: Path) -> None:
    path = make_model(tmp_path / "shape.onnx", [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Shape", ["r"], ["s"], start=1),
        helper.make_node("Reshape", ["x", "s"], ["y"])],
        [("x", [1, 2, 6])], [("y", [2, 6])], opset=15)
    graph, _ = compile_model(path, "infer-shapes,fold-constants,eliminate-dead")
    assert ops(graph) == ["Reshape"] and graph.nodes[0].inputs[1].data.tolist() == [2, 6]
    assert_matches_onnxruntime(graph, path)


# ---- must not fire -------------------------------------------------------------------------

def test_nodes_reading_activations_stay(tmp_path: Path) -> None:
    path = make_model(tmp_path / "live.onnx", [
        helper.make_node("Add", ["x", "k"], ["a"], name="add"),
        helper.make_node("Mul", ["a", "k"], ["y"], name="mul")],
        [("x", [3])], [("y", [3])], {"k": np.array([1.0, 2.0, 3.0])})
    graph, ctx = compile_model(path, "fold-constants")
    assert ops(graph) == ["Add", "Mul"] and ctx.remarks == []
    assert_matches_onnxruntime(graph, path)


def test_quantized_results_are_not_folded(tmp_path: Path) -> None:
    path = make_model(tmp_path / "q.onnx", [helper.make_node("Neg", ["k"], ["n"]),
                                            helper.make_node("Add", ["x", "n"], ["y"])],
                      [("x", [2])], [("y", [2])], {"k": np.array([1.0, 2.0])})
    graph, _ = compile_model(path, "infer-shapes")
    neg = graph.find("Neg")[0]
    neg.output.set_type(neg.output.type.with_quant(QuantParams((0.5,), (0,))))
    run_pipeline(graph, "fold-constants")
    assert ops(graph) == ["Neg", "Add"]
