"""``lower-fc``: Gemm and MatMul(+Add) with constant weights become FullyConnected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

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

RNG = np.random.default_rng(0)


def gemm_model(tmp_path: Path, c_shape: tuple[int, ...] | None = (3,), m: int = 1,
               **attrs: float) -> Path:
    trans_b = bool(attrs.get("transB", 0))
    w = RNG.standard_normal((3, 5) if trans_b else (5, 3))
    inits = {"w": w}
    inputs = ["x", "w"]
    if c_shape is not None:
        inits["c"] = RNG.standard_normal(c_shape)
        inputs.append("c")
    x_shape = [5, m] if attrs.get("transA", 0) else [m, 5]
    return make_model(tmp_path / "gemm.onnx",
                      [helper.make_node("Gemm", inputs, ["y"], name="gemm", **attrs)],
                      [("x", x_shape)], [("y", [m, 3])], inits)


# ---- IR text ------------------------------------------------------------------------------

def test_gemm_becomes_fully_connected(tmp_path: Path) -> None:
    path = gemm_model(tmp_path, transB=1, alpha=2.0, beta=0.5)
    graph, ctx = compile_model(path, "infer-shapes,lower-fc")
    filecheck(print_graph(graph), """
        CHECK: graph @gemm(%arg0: tensor<1x5xf32>)
        CHECK-NEXT: %c0 = const tensor<3x5xf32> #{{[0-9a-f]+}}  # w_fc
        CHECK-NEXT: %c1 = const tensor<3xf32> [{{[^,]+, [^,]+, [^,]+}}]  # c_bias
        CHECK-NEXT: %0 = FullyConnected(%arg0, %c0, %c1) : tensor<1x3xf32>
        CHECK-NEXT: return %0
        CHECK-NOT: Gemm
    """)
    assert graph.outputs[0].name == "y" and remarks_for(ctx, "gemm") == []
    w = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    assert w.shape == (3, 5)  # transB=1: B is already [N, K]; FC's W is alpha * B
    np.testing.assert_array_equal(graph.values["w_fc"].data, w * np.float32(2.0))
    assert_matches_onnxruntime(graph, path)


def test_matmul_add_becomes_one_fully_connected(tmp_path: Path) -> None:
    path = make_model(tmp_path / "mm.onnx", [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["b", "h"], ["y"], name="bias")],
        [("x", [2, 4])], [("y", [2, 3])],
        {"w": RNG.standard_normal((4, 3)), "b": RNG.standard_normal((1, 3))})
    graph, _ = compile_model(path, "infer-shapes,lower-fc")
    filecheck(print_graph(graph), """
        CHECK: %c0 = const tensor<3x4xf32> #{{.*}}  # w_fc
        CHECK-NEXT: %c1 = const tensor<3xf32>
        CHECK-NOT: MatMul
        CHECK-NOT: Add
        CHECK: %0 = FullyConnected(%arg0, %c0, %c1) : tensor<2x3xf32>
        CHECK-NEXT: return %0
    """)
    assert graph.outputs[0].name == "y"
    assert_matches_onnxruntime(graph, path)


@pytest.mark.parametrize("kwargs", [
    {"c_shape": None}, {"c_shape": (1, 3)}, {"c_shape": (1,)}, {"c_shape": ()},
    {"c_shape": (3,), "m": 4, "transB": 1}, {"c_shape": (2, 3), "m": 2},
])
def test_gemm_variants(tmp_path: Path, kwargs: dict) -> None:
    path = gemm_model(tmp_path, **kwargs)
    graph, _ = compile_model(path, "infer-shapes,lower-fc")
    expected = "Gemm" if kwargs["c_shape"] == (2, 3) else "FullyConnected"  # C varies on M
    assert ops(graph) == [expected]
    assert_matches_onnxruntime(graph, path)


# ---- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["mlp_sigmoid", "helper_matmul", "lenet"])
def test_zoo_numerics(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, _ = compile_model(path, "infer-shapes,fold-constants,eliminate-dead,lower-fc")
    assert not graph.find("Gemm") and not graph.find("MatMul")
    assert_matches_onnxruntime(graph, path, zoo_feeds(name, 10))


def test_matmul_with_a_batch_of_rows(tmp_path: Path) -> None:
    path = make_model(tmp_path / "rows.onnx", [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["y"])],
        [("x", [2, 3, 4])], [("y", [2, 3, 5])],
        {"w": RNG.standard_normal((4, 5)), "b": RNG.standard_normal(5)})
    graph, _ = compile_model(path, "infer-shapes,lower-fc")
    assert ops(graph) == ["FullyConnected"]
    assert_matches_onnxruntime(graph, path)


def test_fused_activation_on_the_bias_add_survives(tmp_path: Path) -> None:
    """fuse-activation may run first (pipelines are editable): the Add's RELU moves to FC."""
    path = make_model(tmp_path / "late.onnx", [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"])],
        [("x", [1, 4])], [("y", [1, 3])],
        {"w": RNG.standard_normal((4, 3)), "b": RNG.standard_normal(3)})
    graph, _ = compile_model(path, "infer-shapes,fuse-activation,lower-fc")
    (fc,) = graph.nodes
    assert fc.op == "FullyConnected" and fc.attr("activation") == "RELU"
    assert_matches_onnxruntime(graph, path)


# ---- must not fire -------------------------------------------------------------------------

def test_gemm_with_trans_a_stays(tmp_path: Path) -> None:
    path = gemm_model(tmp_path, transA=1, m=2)
    graph, ctx = compile_model(path, "infer-shapes,lower-fc")
    assert ops(graph) == ["Gemm"]
    assert remarks_for(ctx, "gemm") == ["not lowered: transA=1 is not supported"]
    assert_matches_onnxruntime(graph, path)


def test_non_constant_weights_stay(tmp_path: Path) -> None:
    path = make_model(tmp_path / "dyn.onnx", [
        helper.make_node("Gemm", ["x", "w"], ["g"], name="gemm"),
        helper.make_node("MatMul", ["g", "v"], ["y"], name="mm")],
        [("x", [1, 4]), ("w", [4, 3]), ("v", [3, 2])], [("y", [1, 2])])
    graph, ctx = compile_model(path, "infer-shapes,lower-fc")
    assert ops(graph) == ["Gemm", "MatMul"]
    assert remarks_for(ctx, "gemm") == ["not lowered: the weight operand is not a constant "
                                        "matrix"]
    assert remarks_for(ctx, "mm") == remarks_for(ctx, "gemm")
    assert_matches_onnxruntime(graph, path)


def test_non_constant_c_stays(tmp_path: Path) -> None:
    path = make_model(tmp_path / "c.onnx", [
        helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="gemm")],
        [("x", [1, 4]), ("c", [3])], [("y", [1, 3])], {"w": RNG.standard_normal((4, 3))})
    graph, ctx = compile_model(path, "lower-fc")
    assert ops(graph) == ["Gemm"]
    assert remarks_for(ctx, "gemm") == ["not lowered: the C operand is not constant"]


def test_c_varying_along_m_stays(tmp_path: Path) -> None:
    path = gemm_model(tmp_path, c_shape=(2, 1), m=2)
    graph, ctx = compile_model(path, "lower-fc")
    assert ops(graph) == ["Gemm"]
    assert remarks_for(ctx, "gemm") == ["not lowered: C of shape (2, 1) varies along M"]
    assert_matches_onnxruntime(graph, path)


def test_add_that_is_not_a_bias_is_kept(tmp_path: Path) -> None:
    path = make_model(tmp_path / "rowbias.onnx", [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["y"])],
        [("x", [2, 4])], [("y", [2, 3])],
        {"w": RNG.standard_normal((4, 3)), "b": RNG.standard_normal((2, 3))})
    graph, _ = compile_model(path, "infer-shapes,lower-fc")
    assert ops(graph) == ["FullyConnected", "Add"]
    assert len(graph.nodes[0].inputs) == 2  # no bias taken
    assert_matches_onnxruntime(graph, path)
