"""``to-nhwc``: one global NCHW -> NHWC conversion with no Transpose between convs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import PassError
from tests.passes.passkit import (
    CONV_MODELS,
    ZOO,
    assert_matches_onnxruntime,
    check_golden,
    compile_model,
    make_model,
    ops,
    print_graph,
    remarks_for,
    run_pipeline,
    zoo_feeds,
)
from tools.filecheck import filecheck

BEFORE = "infer-shapes,fold-constants,eliminate-dead,lower-fc,fold-batchnorm,fuse-activation,"
NHWC = [0, 2, 3, 1]
RNG = np.random.default_rng(0)


def conv(x: str, y: str, w: str = "w", **attrs: object) -> object:
    return helper.make_node("Conv", [x, w], [y], name=y, **attrs)


# ---- IR text ------------------------------------------------------------------------------

def test_lenet_becomes_nhwc_without_transposes() -> None:
    graph, ctx = compile_model(ZOO / "lenet.onnx", BEFORE + "to-nhwc")
    text = print_graph(graph)
    filecheck(text, """
        CHECK: graph @main_graph(%arg0: tensor<1x16x16x1xf32>)
        CHECK: = const tensor<6x5x5x1xf32> #{{[0-9a-f]+}}  # {{.*}}_nhwc
        CHECK-NOT: Transpose
        CHECK: Conv(%arg0,
        CHECK-SAME: layout="NHWC"
        CHECK-SAME: tensor<1x16x16x6xf32>
        CHECK-NEXT: MaxPool(
        CHECK-SAME: layout="NHWC"
        CHECK-NEXT: Conv(
        CHECK-SAME: layout="NHWC"
        CHECK-NEXT: AveragePool(
        CHECK-SAME: layout="NHWC"
        CHECK-NEXT: Reshape(
        CHECK-NEXT: FullyConnected(
        CHECK-SAME: activation="RELU"
        CHECK-NEXT: FullyConnected(
        CHECK-NEXT: return
    """)
    assert graph.meta["io_perms"] == {"input": NHWC}
    assert any("FC weight columns permuted" in m for _, _, m in ctx.remarks)


def test_golden_lenet() -> None:
    graph, _ = compile_model(ZOO / "lenet.onnx", BEFORE + "to-nhwc")
    check_golden("to_nhwc_lenet.ir", print_graph(graph))


# ---- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*CONV_MODELS, "helper_ops", "helper_matmul"])
def test_zoo_numerics(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, _ = compile_model(path, BEFORE + "to-nhwc")
    if name in CONV_MODELS:
        assert "Transpose" not in ops(graph)
        assert all(n.attr("layout") == "NHWC" for n in graph.nodes if n.op == "Conv")
    assert_matches_onnxruntime(graph, path, zoo_feeds(name, 10))


def test_axis_ops_are_remapped(tmp_path: Path) -> None:
    path = make_model(tmp_path / "axes.onnx", [
        conv("x", "a"), conv("x", "b", "w2"),
        helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
        helper.make_node("Softmax", ["cat"], ["soft"], axis=1),
        helper.make_node("Pad", ["soft", "pads"], ["pad"]),
        helper.make_node("ReduceMean", ["pad"], ["y"], axes=[1, 3], keepdims=0)],
        [("x", [1, 2, 3, 5])], [("y", [1, 4])],
        {"w": RNG.standard_normal((4, 2, 1, 1)), "w2": RNG.standard_normal((3, 2, 1, 1)),
         "pads": np.array([0, 1, 1, 0, 0, 2, 0, 1], np.int64)})
    graph, _ = compile_model(path, "infer-shapes,to-nhwc")
    assert "Transpose" not in ops(graph)
    concat, softmax, pad, mean = graph.nodes[2:]
    assert (concat.attr("axis"), softmax.attr("axis"), mean.attr("axes")) == (3, 3, (2, 3))
    assert pad.attr("pads") == (0, 1, 0, 1, 0, 0, 1, 2)
    assert_matches_onnxruntime(graph, path)


def test_elementwise_with_broadcast_constants(tmp_path: Path) -> None:
    path = make_model(tmp_path / "bias.onnx", [
        conv("x", "c"), helper.make_node("Add", ["c", "b"], ["a"]),
        helper.make_node("Mul", ["s", "a"], ["y"])],
        [("x", [1, 2, 3, 5])], [("y", [1, 4, 3, 5])],
        {"w": RNG.standard_normal((4, 2, 1, 1)), "b": RNG.standard_normal((4, 1, 1)),
         "s": RNG.standard_normal((1, 4, 3, 1))})
    graph, _ = compile_model(path, "infer-shapes,to-nhwc")
    assert ops(graph) == ["Conv", "Add", "Mul"]
    assert graph.nodes[1].inputs[1].shape == (1, 1, 1, 4)
    assert graph.meta["io_perms"] == {"x": NHWC, "y": NHWC}
    assert_matches_onnxruntime(graph, path)


# ---- must not fire / corner cases ------------------------------------------------------------

def test_mlp_is_unchanged() -> None:
    graph, _ = compile_model(ZOO / "mlp_sigmoid.onnx", BEFORE.rstrip(","))
    before = print_graph(graph)
    graph, _ = compile_model(ZOO / "mlp_sigmoid.onnx", BEFORE + "to-nhwc")
    assert print_graph(graph) == before
    assert graph.meta["io_perms"] == {}


def test_flatten_into_fc_permutes_weights_not_data(tmp_path: Path) -> None:
    fc_w = RNG.standard_normal((5, 36)).astype(np.float32)
    path = make_model(tmp_path / "flat.onnx", [
        conv("x", "c"), helper.make_node("Flatten", ["c"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw"], ["y"], transB=1)],
        [("x", [1, 2, 3, 3])], [("y", [1, 5])],
        {"w": RNG.standard_normal((4, 2, 1, 1)), "fw": fc_w})
    graph, ctx = compile_model(path, "infer-shapes,lower-fc,to-nhwc")
    assert ops(graph) == ["Conv", "Reshape", "FullyConnected"]
    assert remarks_for(ctx, "flatten") == ["FC weight columns permuted instead of transposing "
                                           "data"]
    columns = np.arange(36).reshape(1, 4, 3, 3).transpose(0, 2, 3, 1).reshape(-1)
    np.testing.assert_array_equal(graph.nodes[2].inputs[1].data, fc_w[:, columns])
    assert_matches_onnxruntime(graph, path)


def test_flatten_that_is_a_graph_output_needs_a_transpose(tmp_path: Path) -> None:
    path = make_model(tmp_path / "flatout.onnx", [
        conv("x", "c"), helper.make_node("Flatten", ["c"], ["y"])],
        [("x", [1, 2, 3, 3])], [("y", [1, 36])], {"w": RNG.standard_normal((4, 2, 1, 1))})
    graph, _ = compile_model(path, "infer-shapes,to-nhwc")
    assert ops(graph) == ["Conv", "Transpose", "Flatten"]
    assert graph.find("Transpose")[0].attr("perm") == (0, 3, 1, 2)
    assert graph.meta["io_perms"] == {"x": NHWC}  # the flat output is in ONNX order
    assert_matches_onnxruntime(graph, path)


def test_transpose_that_cancels_the_layout(tmp_path: Path) -> None:
    """A model that ends in NHWC on purpose: its Transpose becomes free, output in NHWC."""
    path = make_model(tmp_path / "tf.onnx", [
        conv("x", "c"), helper.make_node("Transpose", ["c"], ["t"], name="to_nhwc", perm=NHWC),
        helper.make_node("Softmax", ["t"], ["y"], axis=3)],
        [("x", [1, 2, 3, 5])], [("y", [1, 3, 5, 4])], {"w": RNG.standard_normal((4, 2, 1, 1))})
    graph, ctx = compile_model(path, "infer-shapes,to-nhwc")
    assert ops(graph) == ["Conv", "Softmax"]
    assert graph.nodes[1].attr("axis") == 3
    assert graph.meta["io_perms"] == {"x": NHWC}
    assert remarks_for(ctx, "to_nhwc") == ["removed: cancels the layout permutation"]
    assert_matches_onnxruntime(graph, path)


def test_cancelling_transpose_of_a_shared_value(tmp_path: Path) -> None:
    path = make_model(tmp_path / "shared.onnx", [
        conv("x", "c"), helper.make_node("Transpose", ["c"], ["t"], name="to_nhwc", perm=NHWC),
        helper.make_node("Relu", ["c"], ["r"])],
        [("x", [1, 2, 3, 5])], [("t", [1, 3, 5, 4]), ("r", [1, 4, 3, 5])],
        {"w": RNG.standard_normal((4, 2, 1, 1))})
    graph, _ = compile_model(path, "infer-shapes,to-nhwc,eliminate-dead")
    assert "Transpose" not in ops(graph)
    assert graph.meta["io_perms"] == {"x": NHWC, "r": NHWC}
    assert_matches_onnxruntime(graph, path)


def test_lower_rank_activation_operand(tmp_path: Path) -> None:
    path = make_model(tmp_path / "rank.onnx", [
        conv("x", "c"), helper.make_node("Add", ["c", "z"], ["y"])],
        [("x", [1, 2, 3, 5]), ("z", [3, 5])], [("y", [1, 4, 3, 5])],
        {"w": RNG.standard_normal((4, 2, 1, 1))})
    graph, _ = compile_model(path, "infer-shapes,to-nhwc")
    assert ops(graph) == ["Conv", "Transpose", "Add"]
    assert_matches_onnxruntime(graph, path)


def test_run_time_conv_weights(tmp_path: Path) -> None:
    path = make_model(tmp_path / "dynw.onnx", [conv("x", "y", pads=[1, 0, 1, 0])],
                      [("x", [1, 2, 3, 5]), ("w", [4, 2, 3, 1])], [("y", [1, 4, 3, 5])])
    graph, _ = compile_model(path, "infer-shapes,to-nhwc")
    assert graph.meta["io_perms"] == {"x": NHWC, "w": NHWC, "y": NHWC}
    assert_matches_onnxruntime(graph, path)


@pytest.mark.parametrize("spec, io_perms, transposes", [
    ("to-nhwc{inputs=nchw}", {"y": NHWC}, 1),
    ("to-nhwc{outputs=nchw}", {"x": NHWC}, 1),
    ("to-nhwc{inputs=nchw,outputs=nchw}", {}, 2),
])
def test_interface_options(tmp_path: Path, spec: str, io_perms: dict,
                           transposes: int) -> None:
    path = make_model(tmp_path / "io.onnx", [conv("x", "c"), conv("c", "y", "w2")],
                      [("x", [1, 2, 3, 5])], [("y", [1, 3, 3, 5])],
                      {"w": RNG.standard_normal((4, 2, 1, 1)),
                       "w2": RNG.standard_normal((3, 4, 1, 1))})
    graph, _ = compile_model(path, "infer-shapes," + spec)
    assert graph.meta["io_perms"] == io_perms
    assert ops(graph).count("Transpose") == transposes
    assert [v.name for v in graph.outputs] == ["y"] and [v.name for v in graph.inputs] == ["x"]
    assert_matches_onnxruntime(graph, path)


def test_second_run_does_nothing() -> None:
    path = ZOO / "resnet8.onnx"
    graph, ctx = compile_model(path, BEFORE + "to-nhwc")
    once = print_graph(graph)
    ctx = run_pipeline(graph, "to-nhwc,fold-pad,to-nhwc")
    assert print_graph(graph) == once
    assert ("to-nhwc", graph.name, "skipped: the graph was already converted by to-nhwc") in \
        ctx.remarks
    assert_matches_onnxruntime(graph, path, zoo_feeds("resnet8", 3))


def test_unfolded_shape_chain_is_a_named_error() -> None:
    with pytest.raises(PassError, match=r"pass 'to-nhwc' failed at node 'reshape' \(Reshape\): "
                                        r"the target shape is not a constant "
                                        r"\(fold-constants first\)"):
        compile_model(ZOO / "helper_ops.onnx", "infer-shapes,to-nhwc")
