"""``eliminate-dead``: unused nodes and constants go, Identity is bypassed, inputs stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from tests.passes.passkit import (
    ZOO,
    assert_matches_onnxruntime,
    compile_model,
    make_model,
    ops,
    print_graph,
    remarks_for,
    zoo_feeds,
)
from tools.filecheck import filecheck


def dead_chain_model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "dead.onnx", [
        helper.make_node("Relu", ["x"], ["a"], name="live_relu"),
        helper.make_node("Identity", ["a"], ["i"], name="ident"),
        helper.make_node("Mul", ["i", "k"], ["y"], name="live_mul"),
        helper.make_node("Sigmoid", ["x"], ["d1"], name="dead_sigmoid"),
        helper.make_node("Add", ["d1", "unused_k"], ["d2"], name="dead_add"),
        helper.make_node("Tanh", ["d2"], ["d3"], name="dead_tanh")],
        [("x", [1, 4]), ("spare", [1, 2])], [("y", [1, 4])],
        {"k": np.full(4, 2.0), "unused_k": np.ones(4), "never_used": np.zeros(3)})


# ---- IR text ------------------------------------------------------------------------------

def test_dead_chain_is_removed_and_inputs_stay(tmp_path: Path) -> None:
    path = dead_chain_model(tmp_path)
    graph, ctx = compile_model(path, "eliminate-dead")
    filecheck(print_graph(graph), """
        CHECK: graph @dead(%arg0: tensor<1x4xf32>, %arg1: tensor<1x2xf32>) {
        CHECK-NEXT: %c0 = const tensor<4xf32> [2, 2, 2, 2]  # k
        CHECK-NEXT: %0 = Relu(%arg0) : tensor<1x4xf32>  # live_relu
        CHECK-NEXT: %1 = Mul(%0, %c0) : tensor<1x4xf32>  # live_mul
        CHECK-NEXT: return %1
        CHECK-NOT: Sigmoid
    """)
    assert [v.name for v in graph.inputs] == ["x", "spare"]
    assert "unused_k" not in graph.values and "never_used" not in graph.values
    assert ops(graph) == ["Relu", "Mul"]
    assert [remarks_for(ctx, n) for n in ("dead_tanh", "dead_add", "dead_sigmoid")] == \
        [["removed: result unused"]] * 3
    feeds = {"x": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4),
             "spare": np.zeros((1, 2), np.float32)}
    assert_matches_onnxruntime(graph, path, [feeds])


# ---- numerics -------------------------------------------------------------------------------

def test_helper_ops_identity_and_dropout_are_bypassed() -> None:
    path = ZOO / "helper_ops.onnx"
    graph, _ = compile_model(path, "infer-shapes,fold-constants,eliminate-dead")
    assert "Identity" not in ops(graph) and "Shape" not in ops(graph)
    assert graph.outputs[0].name == "output"
    assert_matches_onnxruntime(graph, path, zoo_feeds("helper_ops", 3))


# ---- must not fire / corner cases ------------------------------------------------------------

def test_identity_from_input_to_output_stays(tmp_path: Path) -> None:
    path = make_model(tmp_path / "pass.onnx", [helper.make_node("Identity", ["x"], ["y"])],
                      [("x", [2])], [("y", [2])])
    graph, _ = compile_model(path, "eliminate-dead")
    assert ops(graph) == ["Identity"]
    assert [v.name for v in graph.inputs] == ["x"] and [v.name for v in graph.outputs] == ["y"]


def test_identity_output_keeps_its_name(tmp_path: Path) -> None:
    path = make_model(tmp_path / "rename.onnx", [
        helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["y"])],
        [("x", [2])], [("y", [2])])
    graph, _ = compile_model(path, "eliminate-dead")
    assert ops(graph) == ["Relu"] and graph.outputs[0].name == "y"
    assert_matches_onnxruntime(graph, path)


def test_identity_between_two_graph_outputs_keeps_both_names(tmp_path: Path) -> None:
    path = make_model(tmp_path / "two.onnx", [
        helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["b"])],
        [("x", [2])], [("a", [2]), ("b", [2])])
    graph, _ = compile_model(path, "eliminate-dead")
    assert [v.name for v in graph.outputs] == ["a", "b"]
    assert_matches_onnxruntime(graph, path)


def test_unused_graph_input_and_constant_output_stay(tmp_path: Path) -> None:
    path = make_model(tmp_path / "const_out.onnx", [
        helper.make_node("Constant", [], ["c"], value_floats=[1.0, 2.0]),
        helper.make_node("Neg", ["x"], ["unused"])],
        [("x", [2])], [("c", [2])])
    graph, _ = compile_model(path, "eliminate-dead")
    assert graph.nodes == [] and [v.name for v in graph.inputs] == ["x"]
    assert graph.outputs[0].is_constant and graph.outputs[0].name == "c"
    assert_matches_onnxruntime(graph, path)


def test_idempotent_on_the_zoo() -> None:
    for name in ("resnet8", "mobilenet_v1"):
        graph, _ = compile_model(ZOO / f"{name}.onnx", "eliminate-dead")
        once = print_graph(graph)
        graph2, _ = compile_model(ZOO / f"{name}.onnx", "eliminate-dead,eliminate-dead")
        assert print_graph(graph2) == once
