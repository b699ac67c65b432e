"""``widen-1d``: the Squeeze after a 1-D op moves past element-wise ops, BatchNormalization
and broadcasting binaries and cancels the next 1-D op's Unsqueeze."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import helper

from tests.passes.passkit import (
    assert_matches_onnxruntime,
    compile_model,
    make_model,
    ops,
    print_graph,
)
from tools.filecheck import filecheck

RNG = np.random.default_rng(3)


def _chain(tmp_path: Path, middle: list, extra: dict | None = None) -> Path:
    inits = {"w": RNG.standard_normal((4, 2, 3)), "w2": RNG.standard_normal((4, 4, 3)),
             **(extra or {})}
    return make_model(tmp_path / "chain.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1]), *middle,
        helper.make_node("Conv", ["m", "w2"], ["y"], name="conv2", pads=[1, 1])],
        [("x", [1, 2, 10])], [("y", [1, 4, 10])], inits)


def test_squeeze_sinks_and_cancels(tmp_path: Path) -> None:
    bn = {"s": RNG.uniform(0.5, 1.5, 4), "b": RNG.uniform(-1, 1, 4),
          "mu": RNG.uniform(-1, 1, 4), "var": RNG.uniform(0.5, 1.5, 4),
          "k": RNG.uniform(0.5, 1.5, (4, 1))}
    path = _chain(tmp_path, [
        helper.make_node("BatchNormalization", ["c", "s", "b", "mu", "var"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "k"], ["m"], name="scale")], bn)
    graph, _ = compile_model(path, "infer-shapes,widen-1d,eliminate-dead")
    filecheck(print_graph(graph), """
        CHECK: Unsqueeze(%arg0)
        CHECK: Conv(
        CHECK-NOT: Squeeze
        CHECK: BatchNormalization(
        CHECK-NOT: Squeeze
        CHECK: Relu(
        CHECK-NOT: Squeeze
        CHECK: Mul(
        CHECK-NOT: Unsqueeze
        CHECK: Conv(
        CHECK: Squeeze(
    """)
    assert ops(graph).count("Squeeze") == 1 and ops(graph).count("Unsqueeze") == 1
    assert_matches_onnxruntime(graph, path)


def test_axis_op_is_not_moved(tmp_path: Path) -> None:
    """Must not fire: Softmax over channels (an axis op) keeps the squeeze in front of it."""
    path = _chain(tmp_path, [helper.make_node("Softmax", ["c"], ["m"], name="sm", axis=1)])
    graph, _ = compile_model(path, "infer-shapes,widen-1d,eliminate-dead")
    assert ops(graph).count("Squeeze") == 2 and ops(graph).count("Unsqueeze") == 2
    assert_matches_onnxruntime(graph, path)
