"""Softmax on any axis end to end (``tests/ops_harness.py``): the last axis is one SOFTMAX,
another axis is swapped to the end by TRANSPOSE (or RESHAPE when only size-1 dimensions
follow it) and back; a channel softmax after convolutions needs nothing (``to-nhwc``
makes the channel axis the last one). Float in LiteRT vs onnxruntime, int8 in
TFLite-Micro vs our integer interpreter, C vs our interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(9)


@pytest.mark.parametrize("shape, axis, extra", [((1, 4, 6), 1, "TRANSPOSE"),
                                                ((1, 5, 3), -1, None),
                                                ((1, 6, 1), 1, "RESHAPE")])
def test_softmax_axis(tmp_path: Path, shape: tuple, axis: int, extra: str | None) -> None:
    scale = RNG.uniform(1, 3, shape).astype(np.float32)
    path = save_model(tmp_path / "s.onnx", [
        helper.make_node("Mul", ["x", "scale"], ["h"], name="scale"),
        helper.make_node("Softmax", ["h"], ["y"], name="softmax", axis=axis)], shape,
        {"scale": scale})
    xs = RNG.uniform(-1, 1, (8, *shape[1:])).astype(np.float32)
    ops = builtins(check_float(path, xs).output)
    assert ops.count("SOFTMAX") == 1 and (extra is None or ops.count(extra) == 2), ops
    check_int8(path, RNG.uniform(-1, 1, (64, *shape[1:])).astype(np.float32), xs, tmp_path)


@pytest.mark.parametrize("axis", [1, 2])
def test_softmax_after_conv(tmp_path: Path, axis: int) -> None:
    w = (RNG.standard_normal((3, 2, 3, 3)) * 0.5).astype(np.float32)
    path = save_model(tmp_path / "c.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Softmax", ["c"], ["y"], name="softmax", axis=axis)], (1, 2, 4, 5),
        {"w": w})
    xs = RNG.uniform(-1, 1, (8, 2, 4, 5)).astype(np.float32)
    ops = builtins(check_float(path, xs).output)
    assert ops.count("TRANSPOSE") == (0 if axis == 1 else 2), ops
    check_int8(path, RNG.uniform(-1, 1, (64, 2, 4, 5)).astype(np.float32), xs, tmp_path)
