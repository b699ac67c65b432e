"""``fuse-activation``: Relu / Relu6 / Clip(-1, 1) folded into the producer's activation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
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


def clip_model(tmp_path: Path, low: float | None, high: float | None) -> Path:
    """Conv -> Clip(low, high); bounds as constant operands (opset 13), absent if None."""
    rng = np.random.default_rng(0)
    inits: dict[str, np.ndarray] = {"w": rng.standard_normal((3, 2, 1, 1)) * 4}
    names = ["c", "", ""]
    if low is not None:
        inits["lo"], names[1] = np.array(low, np.float32), "lo"
    if high is not None:
        inits["hi"], names[2] = np.array(high, np.float32), "hi"
    while not names[-1]:
        names.pop()
    return make_model(tmp_path / "clip.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="producer"),
        helper.make_node("Clip", names, ["y"], name="clip")],
        [("x", [1, 2, 3, 3])], [("y", [1, 3, 3, 3])], inits)


# ---- IR text ------------------------------------------------------------------------------

@pytest.mark.parametrize("low, high, activation", [
    (0.0, None, "RELU"), (0.0, math.inf, "RELU"), (0.0, 6.0, "RELU6"),
    (-1.0, 1.0, "RELU_N1_TO_1")])
def test_clip_bounds_fuse(tmp_path: Path, low: float, high: float | None,
                          activation: str) -> None:
    path = clip_model(tmp_path, low, high)
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation")
    filecheck(print_graph(graph), f"""
        CHECK: %0 = Conv(%arg0, %c0) {{activation="{activation}",
        CHECK-SAME: # producer
        CHECK-NOT: Clip
        CHECK: return %0
    """)
    assert graph.outputs[0].name == "y"  # the fused value keeps the ONNX output name
    assert remarks_for(ctx, "clip") == ["FuseIntoProducer: applied"]
    assert_matches_onnxruntime(graph, path)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "MaxPool", "Gemm"])
def test_relu_fuses_into_every_fusable_op(tmp_path: Path, op: str) -> None:
    rng = np.random.default_rng(1)
    shape = [1, 2, 4, 4]
    out_shape = list(shape)
    inits: dict[str, np.ndarray] = {"k": rng.uniform(0.5, 1.5, (2, 1, 1))}
    if op == "MaxPool":
        node = helper.make_node(op, ["x"], ["h"], kernel_shape=[2, 2], strides=[2, 2])
        out_shape = [1, 2, 2, 2]
    elif op == "Gemm":
        shape, out_shape = [1, 5], [1, 3]
        inits = {"k": rng.standard_normal((5, 3))}
        node = helper.make_node(op, ["x", "k"], ["h"])
    else:
        node = helper.make_node(op, ["x", "k"], ["h"])
    path = make_model(tmp_path / "m.onnx", [node, helper.make_node("Relu", ["h"], ["y"])],
                      [("x", shape)], [("y", out_shape)], inits)
    graph, _ = compile_model(path, "infer-shapes,lower-fc,fuse-activation")
    (fused,) = graph.nodes
    assert fused.attr("activation") == "RELU"
    assert_matches_onnxruntime(graph, path)


def test_relu_does_not_fuse_into_concat(tmp_path: Path) -> None:
    """TFLite's CONCATENATION refuses a fused activation: the Relu stays an op of its own."""
    node = helper.make_node("Concat", ["x", "x"], ["h"], axis=1)
    path = make_model(tmp_path / "m.onnx", [node, helper.make_node("Relu", ["h"], ["y"])],
                      [("x", [1, 2, 4, 4])], [("y", [1, 4, 4, 4])], {})
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation")
    assert [n.op for n in graph.nodes] == ["Concat", "Relu"]
    assert any("cannot fuse an activation" in message for _, _, message in ctx.remarks)
    assert_matches_onnxruntime(graph, path)


# ---- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v1", "resnet8", "lenet"])
def test_zoo_numerics(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, _ = compile_model(path, "infer-shapes,fold-constants,eliminate-dead,lower-fc,"
                                   "fold-batchnorm,fuse-activation")
    assert not graph.find("Relu") and not graph.find("Clip")
    if name == "mobilenet_v1":
        assert sum(n.attr("activation") == "RELU6" for n in graph.nodes) == 7
    assert_matches_onnxruntime(graph, path, zoo_feeds(name, 10))


# ---- must not fire -------------------------------------------------------------------------

def test_clip_0_5_is_not_fused(tmp_path: Path) -> None:
    path = clip_model(tmp_path, 0.0, 5.0)
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation")
    assert ops(graph) == ["Conv", "Clip"]
    assert graph.find("Conv")[0].attr("activation") == "NONE"
    assert remarks_for(ctx, "clip") == [
        "FuseIntoProducer: not applied: clip bounds (0.0, 5.0) have no fused form"]
    assert_matches_onnxruntime(graph, path)


def test_producer_with_two_users_is_not_fused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    path = make_model(tmp_path / "two.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "c"], ["y"], name="add")],
        [("x", [1, 2, 3, 3])], [("y", [1, 2, 3, 3])], {"w": rng.standard_normal((2, 2, 1, 1))})
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation")
    assert ops(graph) == ["Conv", "Relu", "Add"]
    assert remarks_for(ctx, "relu") == [
        "FuseIntoProducer: not applied: producer conv output has other users"]
    assert_matches_onnxruntime(graph, path)


def test_producer_that_is_a_graph_output_is_not_fused(tmp_path: Path) -> None:
    path = make_model(tmp_path / "out.onnx", [
        helper.make_node("Add", ["x", "x"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu")],
        [("x", [2, 3])], [("a", [2, 3]), ("y", [2, 3])])
    graph, _ = compile_model(path, "fuse-activation")
    assert ops(graph) == ["Add", "Relu"]
    assert_matches_onnxruntime(graph, path)


@pytest.mark.parametrize("first, reason", [
    ("Sigmoid", "producer s (Sigmoid) cannot fuse an activation"),
    (None, "input is not produced by a node")])
def test_unfusable_producers(tmp_path: Path, first: str | None, reason: str) -> None:
    nodes = [] if first is None else [helper.make_node(first, ["x"], ["s"], name="s")]
    nodes.append(helper.make_node("Relu", ["s" if first else "x"], ["y"], name="relu"))
    path = make_model(tmp_path / "m.onnx", nodes, [("x", [2, 3])], [("y", [2, 3])])
    graph, ctx = compile_model(path, "fuse-activation")
    assert ops(graph)[-1] == "Relu"
    assert remarks_for(ctx, "relu") == [f"FuseIntoProducer: not applied: {reason}"]


def test_second_activation_is_not_fused_into_the_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path = make_model(tmp_path / "double.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Clip", ["r", "lo", "hi"], ["y"], name="clip")],
        [("x", [1, 2, 3, 3])], [("y", [1, 2, 3, 3])],
        {"w": rng.standard_normal((2, 2, 1, 1)) * 5, "lo": np.array(-1.0, np.float32),
         "hi": np.array(1.0, np.float32)})
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation")
    assert ops(graph) == ["Conv", "Clip"]
    assert graph.find("Conv")[0].attr("activation") == "RELU"
    assert remarks_for(ctx, "clip")[-1] == ("FuseIntoProducer: not applied: producer conv "
                                            "already has an activation")
    assert_matches_onnxruntime(graph, path)


def test_leaky_relu_is_left_alone(tmp_path: Path) -> None:
    path = make_model(tmp_path / "leaky.onnx", [
        helper.make_node("Add", ["x", "x"], ["a"]),
        helper.make_node("LeakyRelu", ["a"], ["y"], alpha=0.1)],
        [("x", [2, 3])], [("y", [2, 3])])
    graph, _ = compile_model(path, "fuse-activation")
    assert ops(graph) == ["Add", "LeakyRelu"]
    assert graph.nodes[0].attr("activation") == "NONE"
