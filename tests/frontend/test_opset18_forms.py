"""Opset 18+ forms and exporter idioms: Reshape ``allowzero``, n-ary Sum/Max/Min/Mean,
``ConstantOfShape``, ``Expand``, Dropout's unread mask, a static Shape chain.

Numerics against onnxruntime (float ``.tflite`` in LiteRT), the IR the frontend builds,
and the refusals that must stay: a zero-size dimension asked for with ``allowzero=1``,
a Dropout mask that is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.frontend.onnx_import import load_onnx
from tests.badinput import model, save, vi
from tools.runtimes import input_perm, ort_outputs, ort_session, run_litert, to_physical

RNG = np.random.default_rng(3)
N = helper.make_node


def _chain_model() -> onnx.ModelProto:
    """Conv, Dropout (mask unread), ConstantOfShape + Expand, Sum/Max of three, Mean of
    two, then a flatten through Shape -> Gather -> Unsqueeze -> Concat -> Reshape with a
    dynamic batch (static once it is pinned to 1)."""
    inits = {"w": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
             "fc": RNG.standard_normal((10, 144)).astype(np.float32) * 0.1,
             "i0": np.array(0, np.int64), "m1": np.array([-1], np.int64),
             "z": np.array([0], np.int64), "bshape": np.array([1, 4, 1, 1], np.int64)}
    half = numpy_helper.from_array(np.array([0.5], np.float32))
    nodes = [N("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             N("Relu", ["c"], ["r"], name="relu"),
             N("Dropout", ["r"], ["d", "mask"], name="drop"),
             N("ConstantOfShape", ["bshape"], ["cs"], value=half, name="fill"),
             N("Expand", ["cs", "bshape"], ["ex"], name="expand"),
             N("Sum", ["d", "ex", "r"], ["s"], name="sum"),
             N("Max", ["s", "d", "r"], ["mx"], name="max3"),
             N("Min", ["mx"], ["mn1"], name="min1"),
             N("Mean", ["mn1", "s"], ["mn"], name="mean"),
             N("Shape", ["mn"], ["shp"], name="shape"),
             N("Gather", ["shp", "i0"], ["b"], name="gather"),
             N("Unsqueeze", ["b", "z"], ["bu"], name="unsq"),
             N("Concat", ["bu", "m1"], ["tgt"], axis=0, name="concat"),
             N("Reshape", ["mn", "tgt"], ["fl"], name="reshape", allowzero=1),
             N("Gemm", ["fl", "fc"], ["y"], transB=1, name="gemm")]
    return model(nodes, [vi("x", ["N", 3, 6, 6])], [vi("y", ["N", 10])], inits, opset=18)


def test_forms_compile_and_match_onnxruntime(tmp_path: Path) -> None:
    path = save(_chain_model(), tmp_path / "chain.onnx")
    graph = load_onnx(path)
    ops = [n.op for n in graph.nodes]
    assert ops.count("Add") == 3 and ops.count("Max") == 2 and "Mul" in ops  # Sum, Max, Mean
    assert "Sum" not in ops and "Mean" not in ops
    result = compile_onnx(path, CompileOptions(quiet=True))
    names = [op.op for op in parse_model(result.output).operators]
    assert not {"SHAPE", "GATHER", "CONCATENATION", "TRANSPOSE"} & set(names), names
    xs = RNG.standard_normal((16, 3, 6, 6)).astype(np.float32)
    reference = ort_outputs(ort_session(path), xs)
    got = run_litert(result.output, to_physical(xs, input_perm(result.graph)))
    assert np.abs(got - reference).max() <= 1e-4


@pytest.mark.parametrize("op, expected", [("Sum", "Identity"), ("Max", "Identity")])
def test_one_input_variadic_is_identity(tmp_path: Path, op: str, expected: str) -> None:
    proto = model([N(op, ["x"], ["y"], name="v")], [vi("x", [1, 4])], [vi("y", [1, 4])])
    graph = load_onnx(save(proto, tmp_path / "m.onnx"))
    assert [n.op for n in graph.nodes] == [expected]


def test_reshape_allowzero_without_zero_is_a_reshape(tmp_path: Path) -> None:
    proto = model([N("Reshape", ["x", "s"], ["y"], allowzero=1, name="r")],
                  [vi("x", [1, 2, 3])], [vi("y", [1, 6])], {"s": np.array([1, -1], np.int64)},
                  opset=18)
    path = save(proto, tmp_path / "m.onnx")
    xs = RNG.standard_normal((3, 2, 3)).astype(np.float32)
    out = run_litert(compile_onnx(path, CompileOptions(quiet=True)).output, xs)
    assert np.array_equal(out, xs.reshape(3, 6))


def test_reshape_allowzero_zero_message(tmp_path: Path) -> None:
    proto = model([N("Reshape", ["x", "s"], ["y"], allowzero=1, name="r0")],
                  [vi("x", [1, 4])], [vi("y", None)], {"s": np.array([1, 0, 4], np.int64)},
                  opset=18)
    with pytest.raises(Exception, match=r"'r0' \(Reshape\): allowzero=1 with a 0 in the "
                                        r"shape asks for a zero-size dimension"):
        load_onnx(save(proto, tmp_path / "m.onnx"))


def test_dropout_mask_that_is_read_is_still_refused(tmp_path: Path) -> None:
    proto = model([N("Dropout", ["x"], ["y", "mask"], name="drop")], [vi("x", [1, 4])],
                  [vi("y", [1, 4]), vi("mask", [1, 4], TensorProto.BOOL)])
    with pytest.raises(Exception, match="mask output of Dropout"):
        load_onnx(save(proto, tmp_path / "m.onnx"))
