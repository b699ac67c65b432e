"""``fold-batchnorm``: BN folded into Conv/ConvTranspose/FC/Gemm/MatMul, else Mul+Add."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.passes.passkit import (
    ZOO,
    assert_matches_onnxruntime,
    check_golden,
    compile_model,
    make_model,
    ops,
    print_graph,
    remarks_for,
    zoo_feeds,
)
from tools.filecheck import filecheck

PREFIX = "infer-shapes,fold-constants,eliminate-dead,lower-fc,"


def bn_params(channels: int, seed: int = 0, prefix: str = "bn") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"{prefix}_scale": rng.uniform(0.5, 1.5, channels),
            f"{prefix}_bias": rng.uniform(-0.5, 0.5, channels),
            f"{prefix}_mean": rng.uniform(-0.5, 0.5, channels),
            f"{prefix}_var": rng.uniform(0.5, 2.0, channels)}


def bn(x: str, y: str, prefix: str = "bn", **attrs: float) -> object:
    return helper.make_node("BatchNormalization", [x] + [f"{prefix}_{k}" for k in (
        "scale", "bias", "mean", "var")], [y], name=prefix, **attrs)


def conv_bn_relu(tmp_path: Path) -> Path:
    """Conv(bias) -> BN(eps 1e-3) -> Relu with small, hand-written weights."""
    w = (np.arange(2 * 2 * 3 * 3, dtype=np.float32).reshape(2, 2, 3, 3) % 5 - 2) / 4
    params = {"bn_scale": np.array([1.5, 0.5]), "bn_bias": np.array([0.25, -0.5]),
              "bn_mean": np.array([0.5, -1.0]), "bn_var": np.array([4.0, 0.25])}
    return make_model(tmp_path / "conv_bn.onnx", [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        bn("c", "n", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"], name="relu")],
        [("x", [1, 2, 4, 4])], [("y", [1, 2, 4, 4])],
        {"w": w, "b": np.array([0.5, -0.25], np.float32), **params})


# ---- IR text ------------------------------------------------------------------------------

def test_conv_bn_folds_into_the_conv(tmp_path: Path) -> None:
    graph, ctx = compile_model(conv_bn_relu(tmp_path), "infer-shapes,fold-batchnorm")
    filecheck(print_graph(graph), """
        CHECK: graph @conv_bn(%arg0: tensor<1x2x4x4xf32>)
        CHECK: %c0 = const tensor<2x2x3x3xf32> #{{[0-9a-f]{8}}}  # w_bn
        CHECK-NEXT: = const tensor<2xf32> [{{.*}}]  # b_bn
        CHECK-NOT: BatchNormalization
        CHECK: %0 = Conv(%arg0, %c0, %c1)
        CHECK-SAME: pads=[1, 1, 1, 1]
        CHECK-SAME: : tensor<1x2x4x4xf32>  # conv
        CHECK-NEXT: %1 = Relu(%0) : tensor<1x2x4x4xf32>  # relu
        CHECK-NEXT: return %1
    """)
    assert remarks_for(ctx, "bn") == ["FoldIntoLinear: applied"]


def test_golden_conv_bn_relu(tmp_path: Path) -> None:
    graph, _ = compile_model(conv_bn_relu(tmp_path),
                             "infer-shapes,fold-batchnorm,fuse-activation")
    check_golden("fold_batchnorm_conv_bn_relu.ir", print_graph(graph))


def test_folded_values_are_the_formula(tmp_path: Path) -> None:
    graph, _ = compile_model(conv_bn_relu(tmp_path), "infer-shapes,fold-batchnorm")
    (conv,) = graph.find("Conv")
    s = np.array([1.5, 0.5]) / np.sqrt(np.array([4.0, 0.25]) + 1e-3)
    w = (np.arange(36, dtype=np.float32).reshape(2, 2, 3, 3) % 5 - 2) / 4
    np.testing.assert_allclose(conv.inputs[1].data, w * s[:, None, None, None], rtol=1e-6)
    expected_bias = (np.array([0.5, -0.25]) - np.array([0.5, -1.0])) * s + [0.25, -0.5]
    np.testing.assert_allclose(conv.inputs[2].data, expected_bias, rtol=1e-6)


def test_bias_free_conv_gets_a_bias(tmp_path: Path) -> None:
    path = make_model(tmp_path / "nobias.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), bn("c", "y")],
        [("x", [1, 3, 5, 5])], [("y", [1, 4, 5, 5])],
        {"w": np.random.default_rng(1).standard_normal((4, 3, 1, 1)), **bn_params(4)})
    graph, _ = compile_model(path, "fold-batchnorm")
    filecheck(print_graph(graph), """
        CHECK: = const tensor<4xf32> [{{.*}}]  # conv_bias_bn
        CHECK: Conv(%arg0, %c0, %c1)
        CHECK-NOT: BatchNormalization
    """)
    assert_matches_onnxruntime(graph, path)


# ---- numerics -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid",
                                  "helper_matmul"])
def test_zoo_numerics_after_folding(name: str) -> None:
    path = ZOO / f"{name}.onnx"
    graph, _ = compile_model(path, PREFIX + "fold-batchnorm")
    assert "BatchNormalization" not in ops(graph)
    assert_matches_onnxruntime(graph, path, zoo_feeds(name, 10))


@pytest.mark.parametrize("kind", ["ConvTranspose", "Gemm", "MatMul", "depthwise"])
def test_other_producers_fold(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "ConvTranspose":
        node = helper.make_node("ConvTranspose", ["x", "w"], ["h"], strides=[2, 2])
        inputs, out, w = [("x", [1, 2, 3, 3])], [("y", [1, 4, 7, 7])], rng.standard_normal(
            (2, 4, 3, 3))
    elif kind == "depthwise":
        node = helper.make_node("Conv", ["x", "w"], ["h"], group=4, pads=[1, 1, 1, 1])
        inputs, out, w = [("x", [1, 4, 5, 5])], [("y", [1, 4, 5, 5])], rng.standard_normal(
            (4, 1, 3, 3))
    elif kind == "Gemm":
        node = helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=1, alpha=0.5)
        inputs, out, w = [("x", [1, 6])], [("y", [1, 4])], rng.standard_normal((4, 6))
    else:
        node = helper.make_node("MatMul", ["x", "w"], ["h"])
        inputs, out, w = [("x", [3, 6])], [("y", [3, 4])], rng.standard_normal((6, 4))
    path = make_model(tmp_path / "m.onnx", [node, bn("h", "y", epsilon=1e-4)], inputs, out,
                      {"w": w, "c": rng.standard_normal(4), **bn_params(4, 5)})
    graph, _ = compile_model(path, "infer-shapes,fold-batchnorm")
    assert ops(graph) == ["FullyConnected" if kind in ("Gemm", "MatMul") else node.op_type]
    assert_matches_onnxruntime(graph, path)


# ---- must not fire -------------------------------------------------------------------------

def test_conv_output_with_another_user_becomes_mul_add(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    path = make_model(tmp_path / "shared.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        bn("c", "n"),
        helper.make_node("Add", ["n", "c"], ["y"], name="residual")],
        [("x", [1, 2, 4, 4])], [("y", [1, 3, 4, 4])],
        {"w": rng.standard_normal((3, 2, 1, 1)), **bn_params(3)})
    graph, ctx = compile_model(path, "infer-shapes,fold-batchnorm")
    assert ops(graph) == ["Conv", "Mul", "Add", "Add"]
    (conv,) = graph.find("Conv")
    assert conv.inputs[1].name == "w" and len(conv.inputs) == 2  # weights untouched
    assert remarks_for(ctx, "bn") == [
        "FoldIntoLinear: not applied: conv output has other users", "LoneBatchNorm: applied"]
    filecheck(print_graph(graph), """
        CHECK: = const tensor<3x1x1xf32> [{{.*}}]  # bn_scale_1
        CHECK-NEXT: = const tensor<3x1x1xf32> [{{.*}}]  # bn_shift
        CHECK: %0 = Conv(%arg0, %c0)
        CHECK-NEXT: %1 = Mul(%0, %c1) : tensor<1x3x4x4xf32>  # bn_mul
        CHECK-NEXT: %2 = Add(%1, %c2) : tensor<1x3x4x4xf32>  # bn_add
        CHECK-NEXT: %3 = Add(%2, %0)
    """)
    assert_matches_onnxruntime(graph, path)


def test_lone_batchnorm_on_an_input(tmp_path: Path) -> None:
    path = make_model(tmp_path / "lone.onnx", [bn("x", "y")], [("x", [2, 3, 4])],
                      [("y", [2, 3, 4])], bn_params(3))
    graph, ctx = compile_model(path, "fold-batchnorm")
    assert ops(graph) == ["Mul", "Add"]
    assert "FoldIntoLinear: not applied: input is not produced by " in remarks_for(ctx, "bn")[0]
    assert_matches_onnxruntime(graph, path)


def test_gemm_that_cannot_be_lowered_is_not_folded(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    path = make_model(tmp_path / "transa.onnx", [
        helper.make_node("Gemm", ["x", "w"], ["h"], name="gemm", transA=1), bn("h", "y")],
        [("x", [6, 1])], [("y", [1, 4])], {"w": rng.standard_normal((6, 4)), **bn_params(4)})
    graph, ctx = compile_model(path, "infer-shapes,fold-batchnorm")
    assert ops(graph) == ["Gemm", "Mul", "Add"]
    assert remarks_for(ctx, "bn")[0] == ("FoldIntoLinear: not applied: gemm cannot become "
                                         "FullyConnected: transA=1 is not supported")
    assert_matches_onnxruntime(graph, path)


@pytest.mark.parametrize("spec", ["infer-shapes,fold-batchnorm",
                                  "infer-shapes,lower-fc,fold-batchnorm"])
def test_3d_matmul_is_not_folded_along_the_wrong_axis(tmp_path: Path, spec: str) -> None:
    """BN normalizes axis 1; a 3-D FC's channel is axis 2 (same size here on purpose)."""
    rng = np.random.default_rng(6)
    path = make_model(tmp_path / "seq.onnx", [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), bn("h", "y")],
        [("x", [1, 4, 4])], [("y", [1, 4, 4])], {"w": rng.standard_normal((4, 4)),
                                                  **bn_params(4)})
    graph, ctx = compile_model(path, spec)
    assert ops(graph)[-2:] == ["Mul", "Add"]
    assert "output is not 2-D" in remarks_for(ctx, "bn")[0]
    assert_matches_onnxruntime(graph, path)


def test_non_constant_statistics_stay(tmp_path: Path) -> None:
    path = make_model(tmp_path / "dyn.onnx", [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        [("x", [1, 2, 3, 3]), ("s", [2]), ("b", [2]), ("m", [2]), ("v", [2])],
        [("y", [1, 2, 3, 3])])
    graph, ctx = compile_model(path, "fold-batchnorm")
    assert ops(graph) == ["BatchNormalization"]
    assert remarks_for(ctx, "bn") == [
        "FoldIntoLinear: not applied: scale, bias, mean and variance are not all constants",
        "LoneBatchNorm: not applied: scale, bias, mean and variance are not all constants"]
    feeds = {name: np.random.default_rng(7).uniform(0.5, 1.5, shape).astype(np.float32)
             for name, shape in [("x", (1, 2, 3, 3)), ("s", (2,)), ("b", (2,)), ("m", (2,)),
                                 ("v", (2,))]}
    assert_matches_onnxruntime(graph, path, [feeds])


def test_producer_with_fused_activation_is_not_folded(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    path = make_model(tmp_path / "act.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"), bn("r", "y")],
        [("x", [1, 2, 3, 3])], [("y", [1, 2, 3, 3])],
        {"w": rng.standard_normal((2, 2, 1, 1)), **bn_params(2)})
    graph, ctx = compile_model(path, "infer-shapes,fuse-activation,fold-batchnorm")
    assert ops(graph) == ["Conv", "Mul", "Add"]
    assert remarks_for(ctx, "bn")[0] == ("FoldIntoLinear: not applied: conv already has a "
                                         "fused activation")
    assert_matches_onnxruntime(graph, path)
