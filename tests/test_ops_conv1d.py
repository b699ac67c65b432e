"""1-D Conv / MaxPool / AveragePool / ConvTranspose (a 3-D ``[N, C, L]`` input) as the 2-D
ops with H = 1, end to end (``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs
onnxruntime, int8 in TFLite-Micro vs our integer interpreter, C vs our interpreter
and the int8 TRANSPOSE_CONV (2-D; TFLite-Micro == interpreter == C). The depthwise
convolution has a bias: an int8 one without is the bias-free-convolution item of issue 9,
handled elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(6)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 2, 16)).astype(np.float32)


def test_conv1d_pools(tmp_path: Path) -> None:
    inits = {"w": (RNG.standard_normal((4, 2, 3)) * 0.5).astype(np.float32),
             "b": RNG.uniform(-0.2, 0.2, 4).astype(np.float32),
             "w2": (RNG.standard_normal((4, 1, 5)) * 0.5).astype(np.float32),
             "b2": RNG.uniform(-0.2, 0.2, 4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["m"], name="max", kernel_shape=[2],
                              strides=[2]),
             helper.make_node("Conv", ["m", "w2", "b2"], ["d"], name="depthwise", group=4,
                              pads=[2, 2], dilations=[1], strides=[1]),
             helper.make_node("AveragePool", ["d"], ["y"], name="avg", kernel_shape=[3],
                              strides=[1], pads=[1, 1], count_include_pad=0)]
    path = save_model(tmp_path / "conv1d.onnx", nodes, (1, 2, 16), inits)
    ops = builtins(check_float(path, _xs(8)).output)
    assert ops.count("CONV_2D") == 1 and "DEPTHWISE_CONV_2D" in ops and "MAX_POOL_2D" in ops
    check_int8(path, _xs(64), _xs(16), tmp_path)


def test_conv_transpose1d_float(tmp_path: Path) -> None:
    w = (RNG.standard_normal((2, 3, 4)) * 0.5).astype(np.float32)
    path = save_model(tmp_path / "deconv1d.onnx", [
        helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", strides=[2],
                         kernel_shape=[4])], (1, 2, 16), {"w": w})
    assert "TRANSPOSE_CONV" in builtins(check_float(path, _xs(4)).output)


@pytest.mark.parametrize("kernel, strides, bias", [((2, 2), (2, 2), True),
                                                   ((3, 2), (2, 1), False)])
def test_conv_transpose_int8(tmp_path: Path, kernel: tuple, strides: tuple, bias: bool) -> None:
    """TRANSPOSE_CONV in int8: TFLite-Micro == our interpreter == C."""
    w = (RNG.standard_normal((4, 3, *kernel)) * 0.4).astype(np.float32)
    inits = {"w0": (RNG.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32), "w": w}
    inputs = ["c", "w"]
    if bias:
        inits["b"] = RNG.uniform(-0.3, 0.3, 3).astype(np.float32)
        inputs.append("b")
    path = save_model(tmp_path / "deconv.onnx", [
        helper.make_node("Conv", ["x", "w0"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", inputs, ["y"], name="deconv", strides=list(strides),
                         kernel_shape=list(kernel))], (1, 2, 5, 4), inits)
    xs = RNG.uniform(-1, 1, (16, 2, 5, 4)).astype(np.float32)
    assert "TRANSPOSE_CONV" in builtins(check_float(path, xs[:4]).output)
    int8 = check_int8(path, RNG.uniform(-1, 1, (64, 2, 5, 4)).astype(np.float32), xs, tmp_path)
    assert "TRANSPOSE_CONV" in builtins(int8.output)
