"""AveragePool with ``count_include_pad=0`` and pads that are neither SAME nor VALID (PAD +
VALID AVERAGE_POOL_2D + MUL, exact), and LRN (LOCAL_RESPONSE_NORMALIZATION, float), after
a convolution (``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs onnxruntime,
int8 in TFLite-Micro vs our integer interpreter, C vs our interpreter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(4)
W = (RNG.standard_normal((5, 2, 3, 3)) * 0.4).astype(np.float32)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 2, 7, 6)).astype(np.float32)


def _model(tmp_path: Path, node: object, name: str) -> Path:
    conv = helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv")
    return save_model(tmp_path / f"{name}.onnx", [conv, node], (1, 2, 7, 6), {"w": W})


@pytest.mark.parametrize("pads, strides, kernel", [((0, 0, 1, 1), (2, 2), (3, 3)),
                                                   ((1, 1, 1, 1), (2, 2), (3, 3)),
                                                   ((2, 0, 1, 1), (1, 2), (3, 2))])
def test_average_pool_exclude_pad(tmp_path: Path, pads: tuple, strides: tuple,
                                  kernel: tuple) -> None:
    node = helper.make_node("AveragePool", ["c"], ["y"], name="pool", kernel_shape=list(kernel),
                            strides=list(strides), pads=list(pads), count_include_pad=0)
    path = _model(tmp_path, node, "pool")
    ops = builtins(check_float(path, _xs(6)).output)
    assert ops[-3:] == ["PAD", "AVERAGE_POOL_2D", "MUL"], ops
    # C keeps the explicit pads in one c.average_pool_2d (no MUL): its own int8 rounding
    check_int8(path, _xs(64), _xs(12), tmp_path, c_as_tflite=False)


def test_lrn(tmp_path: Path) -> None:
    node = helper.make_node("LRN", ["c"], ["y"], name="lrn", size=3, alpha=0.02, beta=0.75,
                            bias=2.0)
    path = _model(tmp_path, node, "lrn")
    # LiteRT's reference LRN sums [c - r, c + r) (one channel short); its default kernel
    # and TensorFlow sum [c - r, c + r], as ONNX does
    ops = builtins(check_float(path, _xs(6), reference_kernels=False).output)
    assert ops[-1] == "LOCAL_RESPONSE_NORMALIZATION"
    with pytest.raises(MicrolithError, match="no int8 kernel for: lrn"):
        check_int8(path, _xs(16), _xs(2), tmp_path)
    even = _model(tmp_path, helper.make_node("LRN", ["c"], ["y"], name="lrn", size=4), "even")
    with pytest.raises(MicrolithError, match="even"):
        check_float(even, _xs(2))
