"""``fold-pad``: an explicit zero spatial Pad absorbed into the following Conv's pads."""

from __future__ import annotations

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

RNG = np.random.default_rng(0)


def pad_model(tmp_path: Path, pads: list[int], value: float | None = None,
              consumer: str = "Conv", extra_user: bool = False) -> Path:
    """x -> Pad(pads, value) -> consumer (Conv with pads [0, 1, 1, 0], or MaxPool)."""
    inits: dict[str, np.ndarray] = {"pads": np.array(pads, np.int64),
                                    "w": RNG.standard_normal((3, 2, 3, 3))}
    pad_inputs = ["x", "pads"]
    if value is not None:
        inits["value"] = np.array(value, np.float32)
        pad_inputs.append("value")
    nodes = [helper.make_node("Pad", pad_inputs, ["p"], name="pad")]
    x_shape = [1, 2, 6, 7]
    padded = [d + pads[i] + pads[i + 4] for i, d in enumerate(x_shape)]
    if consumer == "Conv":
        nodes.append(helper.make_node("Conv", ["p", "w"], ["y"], name="conv",
                                      pads=[0, 1, 1, 0]))
        out = [1, 3, padded[2] - 1, padded[3] - 1]
    else:
        nodes.append(helper.make_node("MaxPool", ["p"], ["y"], name="pool",
                                      kernel_shape=[2, 2]))
        out = [1, padded[1], padded[2] - 1, padded[3] - 1]
    outputs = [("y", out)]
    if extra_user:
        nodes.append(helper.make_node("Relu", ["p"], ["r"], name="relu"))
        outputs.append(("r", padded))
    if pads[1] or pads[5]:  # a channel pad: the Conv must see the padded channel count
        inits["w"] = RNG.standard_normal((3, padded[1], 3, 3))
    return make_model(tmp_path / "pad.onnx", nodes, [("x", x_shape)], outputs, inits)


# ---- IR text ------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_zero_pad_folds_into_conv(tmp_path: Path, layout: str) -> None:
    path = pad_model(tmp_path, [0, 0, 1, 2, 0, 0, 3, 0])
    spec = "infer-shapes," + ("to-nhwc," if layout == "NHWC" else "") + "fold-pad"
    graph, ctx = compile_model(path, spec)
    filecheck(print_graph(graph), f"""
        CHECK-NOT: Pad(
        CHECK: %0 = Conv(%arg0, %c0)
        CHECK-SAME: pads=[1, 3, 4, 0]
        CHECK-SAME: tensor<{"1x9x8x3" if layout == "NHWC" else "1x3x9x8"}xf32>
        CHECK-NEXT: return %0
    """)
    assert graph.nodes[0].attr("layout") == layout
    assert remarks_for(ctx, "pad") == ["PadIntoConv: applied"]
    assert_matches_onnxruntime(graph, path)


# ---- numerics -------------------------------------------------------------------------------

def test_helper_ops_pad_folds_after_the_whole_pipeline() -> None:
    path = ZOO / "helper_ops.onnx"
    graph, _ = compile_model(path, "infer-shapes,fold-constants,eliminate-dead,lower-fc,"
                                   "fold-batchnorm,fuse-activation,to-nhwc,fold-pad")
    assert "Pad" not in ops(graph)
    assert_matches_onnxruntime(graph, path, zoo_feeds("helper_ops", 5))


def test_explicit_zero_value_folds(tmp_path: Path) -> None:
    path = pad_model(tmp_path, [0, 0, 1, 1, 0, 0, 1, 1], value=0.0)
    graph, _ = compile_model(path, "fold-pad")
    assert ops(graph) == ["Conv"]
    assert_matches_onnxruntime(graph, path)


# ---- must not fire -------------------------------------------------------------------------

@pytest.mark.parametrize("pads, value, consumer, extra_user, reason", [
    ([0, 0, 1, 1, 0, 0, 1, 1], 1.5, "Conv", False, "pad value is not zero"),
    ([0, 1, 1, 1, 0, 0, 1, 1], None, "Conv", False, "pads the batch or channel dimension"),
    ([0, 0, 1, 1, 0, 0, 1, 1], None, "MaxPool", False,
     "the only user is not a Conv reading it as data"),
    ([0, 0, 1, 1, 0, 0, 1, 1], None, "Conv", True,
     "the only user is not a Conv reading it as data"),
])
def test_pads_that_must_stay(tmp_path: Path, pads: list[int], value: float | None,
                             consumer: str, extra_user: bool, reason: str) -> None:
    path = pad_model(tmp_path, pads, value, consumer, extra_user)
    graph, ctx = compile_model(path, "infer-shapes,to-nhwc,fold-pad")
    assert "Pad" in ops(graph)
    assert remarks_for(ctx, "pad") == [f"PadIntoConv: not applied: {reason}"]
    assert_matches_onnxruntime(graph, path)


def test_pad_that_is_a_graph_output_stays(tmp_path: Path) -> None:
    path = make_model(tmp_path / "out.onnx", [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Conv", ["p", "w"], ["y"])],
        [("x", [1, 2, 4, 4])], [("p", [1, 2, 6, 6]), ("y", [1, 3, 6, 6])],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
         "w": RNG.standard_normal((3, 2, 1, 1))})
    graph, _ = compile_model(path, "fold-pad")
    assert ops(graph) == ["Pad", "Conv"]
    assert_matches_onnxruntime(graph, path)


def test_pad_feeding_conv_weights_stays(tmp_path: Path) -> None:
    path = make_model(tmp_path / "w.onnx", [
        helper.make_node("Pad", ["k", "pads"], ["kp"], name="pad"),
        helper.make_node("Conv", ["x", "kp"], ["y"])],
        [("x", [1, 2, 5, 5]), ("k", [3, 2, 1, 1])], [("y", [1, 3, 3, 3])],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)})
    graph, ctx = compile_model(path, "fold-pad")
    assert ops(graph) == ["Pad", "Conv"]
    assert remarks_for(ctx, "pad") == [
        "PadIntoConv: not applied: the only user is not a Conv reading it as data"]
