"""LayerNormalization (decomposed; float, int8 refused on its Sqrt), Gelu (GELU; int8 as a
float table: LiteRT within 1 LSB, TFLite-Micro has no GELU; C), and PyTorch's erf form of
GELU folded by ``fuse-gelu`` -- end to end (``tests/ops_harness.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(12)
W = (RNG.standard_normal((8, 8)) * 0.6).astype(np.float32)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 3, 8)).astype(np.float32)


def _model(tmp_path: Path, tail: list, extra: dict | None = None, name: str = "m",
           opset: int = 17) -> Path:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"), *tail]
    return save_model(tmp_path / f"{name}.onnx", nodes, (1, 3, 8), {"w": W, **(extra or {})},
                      opset=opset)


def test_layer_norm(tmp_path: Path) -> None:
    extra = {"g": RNG.uniform(0.5, 1.5, 8).astype(np.float32),
             "b": RNG.uniform(-0.5, 0.5, 8).astype(np.float32)}
    path = _model(tmp_path, [helper.make_node("LayerNormalization", ["h", "g", "b"], ["y"],
                                              name="ln", axis=-1, epsilon=1e-5)], extra)
    ops = builtins(check_float(path, _xs(8)).output)
    assert ops.count("MEAN") == 2 and "SQRT" in ops and "DIV" in ops, ops
    with pytest.raises(MicrolithError, match="no int8 kernel"):
        check_int8(path, _xs(16), _xs(2), tmp_path)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(tmp_path: Path, approximate: str) -> None:
    path = _model(tmp_path, [helper.make_node("Gelu", ["h"], ["y"], name="gelu",
                                              approximate=approximate)], opset=20)
    assert builtins(check_float(path, _xs(8)).output)[-1] == "GELU"
    check_int8(path, _xs(64), _xs(16), tmp_path, tflm=False)


@pytest.mark.parametrize("half_first", [False, True])
def test_erf_gelu_is_fused(tmp_path: Path, half_first: bool) -> None:
    """torch.nn.GELU as the pre-opset-20 exporters write it."""
    extra = {"sqrt2": np.array(math.sqrt(2), np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Div", ["h", "sqrt2"], ["a"], name="div"),
             helper.make_node("Erf", ["a"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["p"], name="add")]
    if half_first:
        nodes += [helper.make_node("Mul", ["h", "half"], ["hh"], name="half"),
                  helper.make_node("Mul", ["hh", "p"], ["y"], name="mul")]
    else:
        nodes += [helper.make_node("Mul", ["h", "p"], ["m"], name="mul"),
                  helper.make_node("Mul", ["m", "half"], ["y"], name="half")]
    path = _model(tmp_path, nodes, extra, opset=13)
    assert builtins(check_float(path, _xs(8)).output) == ["FULLY_CONNECTED", "GELU"]
    check_int8(path, _xs(64), _xs(16), tmp_path, tflm=False)


def test_lone_erf_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Erf", ["h"], ["y"], name="erf")], opset=13)
    with pytest.raises(MicrolithError, match="Erf"):
        check_float(path, _xs(2))
