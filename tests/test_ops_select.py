"""Slice, Split, Gather (constant indices), ReduceMax / ReduceMin / ReduceSum / ReduceProd and
ArgMax / ArgMin end to end (``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs
onnxruntime; int8 ``.tflite`` in TFLite-Micro vs our integer interpreter and C (REDUCE_PROD
and ARG_MAX / ARG_MIN: float only -- TFLite-Micro has no int8 REDUCE_PROD, and an int8
arg-max has no quantized output to keep)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(5)
SCALE = (RNG.uniform(0.5, 1.5, (1, 4, 6))).astype(np.float32)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 4, 6)).astype(np.float32)


def _model(tmp_path: Path, tail: list, extra: dict | None = None, name: str = "m",
           opset: int = 13, y_type: int = TensorProto.FLOAT) -> Path:
    nodes = [helper.make_node("Mul", ["x", "scale"], ["h"], name="scale"), *tail]
    return save_model(tmp_path / f"{name}.onnx", nodes, (1, 4, 6),
                      {"scale": SCALE, **(extra or {})}, opset=opset, y_type=y_type)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


@pytest.mark.parametrize("starts, ends, axes, steps", [
    ((1, 0), (3, 6), (1, 2), (1, 2)),
    ((-1, 5), (-100, 0), (1, 2), (-1, -2)),
    ((2,), (100,), (-1,), (1,)),
])
def test_slice(tmp_path: Path, starts: tuple, ends: tuple, axes: tuple, steps: tuple) -> None:
    path = _model(tmp_path, [helper.make_node("Slice", ["h", "s", "e", "a", "st"], ["y"],
                                              name="slice")],
                  {"s": _i64(*starts), "e": _i64(*ends), "a": _i64(*axes), "st": _i64(*steps)})
    assert builtins(check_float(path, _xs(6)).output)[-1] == "STRIDED_SLICE"
    check_int8(path, _xs(64), _xs(12), tmp_path)


@pytest.mark.parametrize("opset, split", [(13, (2, 4)), (18, None)])
def test_split(tmp_path: Path, opset: int, split: tuple | None) -> None:
    inputs = ["h", "sizes"] if split else ["h"]
    attrs = {} if split else {"num_outputs": 2}
    path = _model(tmp_path, [
        helper.make_node("Split", inputs, ["p0", "p1"], name="split", axis=2, **attrs),
        helper.make_node("Neg", ["p0"], ["n0"], name="neg"),
        helper.make_node("Concat", ["p1", "n0"], ["y"], name="join", axis=2)],
        {"sizes": _i64(*split)} if split else {}, opset=opset)
    assert builtins(check_float(path, _xs(6)).output).count("STRIDED_SLICE") == 2
    check_int8(path, _xs(64), _xs(12), tmp_path)


def test_split_bad_sizes(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Split", ["h", "sizes"], ["p0", "y"],
                                              name="split", axis=2)], {"sizes": _i64(2, 2)})
    with pytest.raises(MicrolithError, match="split"):
        check_float(path, _xs(2))


@pytest.mark.parametrize("indices, axis", [((3, 0, -1), 2), ((2,), 1), (((1, 0), (0, 3)), 2)])
def test_gather(tmp_path: Path, indices: tuple, axis: int) -> None:
    path = _model(tmp_path, [helper.make_node("Gather", ["h", "i"], ["y"], name="gather",
                                              axis=axis)], {"i": np.array(indices, np.int64)})
    assert builtins(check_float(path, _xs(6)).output)[-1] == "GATHER"
    check_int8(path, _xs(64), _xs(12), tmp_path)


@pytest.mark.parametrize("op, axes, keepdims, builtin", [
    ("ReduceMax", (2,), 1, "REDUCE_MAX"), ("ReduceMin", (1,), 0, "REDUCE_MIN"),
    ("ReduceSum", (-1,), 1, "SUM"), ("ReduceSum", (1, 2), 0, "SUM"),
    ("ReduceMax", None, 1, "REDUCE_MAX")])
def test_reduce(tmp_path: Path, op: str, axes: tuple | None, keepdims: int, builtin: str
                ) -> None:
    extra = {}
    if op == "ReduceSum" and axes is not None:  # opset 13: axes as input 1
        node = helper.make_node(op, ["h", "axes"], ["y"], name="reduce", keepdims=keepdims)
        extra["axes"] = _i64(*axes)
    elif axes is not None:
        node = helper.make_node(op, ["h"], ["y"], name="reduce", axes=list(axes),
                                keepdims=keepdims)
    else:
        node = helper.make_node(op, ["h"], ["y"], name="reduce", keepdims=keepdims)
    path = _model(tmp_path, [node], extra)
    assert builtins(check_float(path, _xs(6)).output)[-1] == builtin
    check_int8(path, _xs(64), _xs(12), tmp_path)


def test_reduce_prod_is_float_only(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("ReduceProd", ["h"], ["y"], name="prod", axes=[2],
                                              keepdims=1)])
    assert builtins(check_float(path, _xs(6)).output)[-1] == "REDUCE_PROD"
    with pytest.raises(MicrolithError, match="no int8 kernel for: prod"):
        check_int8(path, _xs(16), _xs(2), tmp_path)


@pytest.mark.parametrize("op, axis, keepdims", [("ArgMax", 2, 0), ("ArgMin", 1, 1),
                                                 ("ArgMax", -1, 1)])
def test_arg(tmp_path: Path, op: str, axis: int, keepdims: int) -> None:
    path = _model(tmp_path, [helper.make_node(op, ["h"], ["y"], name="arg", axis=axis,
                                              keepdims=keepdims)], y_type=TensorProto.INT64)
    ops = builtins(check_float(path, _xs(6), tol=0).output)
    assert op.upper().replace("ARG", "ARG_") in ops
