"""Slice, Split (SPLIT / SPLIT_V), Gather (constant indices), ReduceMax / ReduceMin /
ReduceSum / ReduceProd and ArgMax / ArgMin end to end (``tests/ops_harness.py``): float
``.tflite`` in LiteRT vs onnxruntime; int8 ``.tflite`` in TFLite-Micro vs our integer
interpreter and C (REDUCE_PROD: float only -- TFLite-Micro has no int8 REDUCE_PROD)."""

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
    want = "SPLIT_V" if split else "SPLIT"  # (2, 4) unequal; num_outputs=2 of 6: 3 + 3
    ops = builtins(check_float(path, _xs(6)).output)
    assert want in ops and "STRIDED_SLICE" not in ops
    assert want in builtins(check_int8(path, _xs(64), _xs(12), tmp_path).output)


def test_split_channels_nchw(tmp_path: Path) -> None:
    """A channel Split after a convolution: to-nhwc moves it to axis 3, one SPLIT_V of three
    parts (the int8 outputs keep the input's scale), C copies slices (``mlk_split_i8``)."""
    inits = {"w": (RNG.standard_normal((7, 2, 3, 3)) * 0.4).astype(np.float32),
             "sizes": _i64(2, 4, 1)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Split", ["c", "sizes"], ["p0", "p1", "p2"], name="split",
                              axis=1),
             helper.make_node("ReduceMax", ["p1"], ["m"], name="max", axes=[1], keepdims=1),
             helper.make_node("Mul", ["p0", "m"], ["q"], name="mul"),
             helper.make_node("Concat", ["q", "p2", "p0"], ["y"], name="join", axis=1)]
    path = save_model(tmp_path / "chan.onnx", nodes, (1, 2, 5, 4), inits)
    xs = RNG.uniform(-1, 1, (12, 2, 5, 4)).astype(np.float32)
    ops = builtins(check_float(path, xs[:4]).output)
    assert ops.count("SPLIT_V") == 1 and "STRIDED_SLICE" not in ops
    int8 = check_int8(path, RNG.uniform(-1, 1, (64, 2, 5, 4)).astype(np.float32), xs, tmp_path)
    split = next(n for n in int8.graph.nodes if n.op == "tfl.split_v")
    assert {v.quant for v in split.outputs} == {split.arg(0).quant}
    assert "mlk_split_i8(" in (tmp_path / "model.c").read_text()


def test_split_not_fused(tmp_path: Path) -> None:
    """Must not fire: a Split output nobody reads leaves a gap, overlapping Slices are no
    split -- both stay STRIDED_SLICE (and still run exactly)."""
    gap = _model(tmp_path, [
        helper.make_node("Split", ["h", "sizes"], ["p0", "p1", "p2"], name="split", axis=2),
        helper.make_node("Concat", ["p2", "p0"], ["y"], name="join", axis=2)],
        {"sizes": _i64(2, 3, 1)}, name="gap")
    overlap = _model(tmp_path, [
        helper.make_node("Slice", ["h", "s0", "e0", "a"], ["p0"], name="left"),
        helper.make_node("Slice", ["h", "s1", "e1", "a"], ["p1"], name="right"),
        helper.make_node("Add", ["p0", "p1"], ["y"], name="add")],
        {"s0": _i64(0), "e0": _i64(4), "s1": _i64(2), "e1": _i64(6), "a": _i64(2)},
        name="overlap")
    for path in (gap, overlap):
        ops = builtins(check_float(path, _xs(4)).output)
        assert ops.count("STRIDED_SLICE") == 2 and "SPLIT" not in ops and "SPLIT_V" not in ops
    check_int8(gap, _xs(32), _xs(6), tmp_path)


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
    builtin = op.upper().replace("ARG", "ARG_")
    assert builtin in ops
    # int8: coarse inputs make ties (the first index wins in TFLite-Micro, ours and C);
    # the index is int32, the only type TFLite-Micro's int8 kernels write
    coarse = np.round(_xs(12) * 2) / 2
    int8 = check_int8(path, _xs(64), coarse, tmp_path)
    assert builtin in builtins(int8.output)
    assert int8.graph.outputs[0].dtype.value == "i32"
    assert "mlk_arg_i8(" in (tmp_path / "model.c").read_text()


def test_arg_channels_nchw(tmp_path: Path) -> None:
    """ArgMax over the channels of a convolution's output (NHWC inside: axis 3)."""
    w = (RNG.standard_normal((5, 4, 1, 1)) * 0.5).astype(np.float32)
    path = save_model(tmp_path / "argc.onnx", [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("ArgMax", ["c"], ["y"], name="arg", axis=1, keepdims=0)],
        (1, 4, 3, 3), {"w": w}, y_type=TensorProto.INT64)
    xs = RNG.uniform(-1, 1, (12, 4, 3, 3)).astype(np.float32)
    check_float(path, xs[:4], tol=0)
    int8 = check_int8(path, RNG.uniform(-1, 1, (64, 4, 3, 3)).astype(np.float32), xs,
                      tmp_path)
    assert "TRANSPOSE" not in builtins(int8.output)


@pytest.mark.slow  # the dynamo export takes seconds
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_split_torch_export(tmp_path: Path, dynamo: bool) -> None:
    """PyTorch's default exporter: ``torch.chunk`` is an opset-18 Split with
    ``num_outputs``, ``torch.split`` one with sizes; both channel splits of a convolution
    become SPLIT, with no TRANSPOSE (the slices' axes follow to-nhwc's layout). The
    TorchScript exporter (``dynamo=False``) writes ``torch.chunk`` as Slices whose ends are
    ``Shape -> Gather -> Add -> Div -> Mul`` arithmetic, folded at import."""
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 6, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a, b, c = torch.chunk(self.conv(x), 3, dim=1)
            d, e = torch.split(c, [1, 1], dim=1)
            return torch.cat([a * torch.sigmoid(b), d, e * 2], dim=1)

    path = tmp_path / "split.onnx"
    torch.manual_seed(0)
    torch.onnx.export(Net().eval(), (torch.zeros(1, 2, 5, 5),), str(path), dynamo=dynamo)
    xs = RNG.uniform(-1, 1, (8, 2, 5, 5)).astype(np.float32)
    want = ["CONV_2D", "SPLIT", "SPLIT", "LOGISTIC", "MUL", "MUL", "CONCATENATION"]
    assert builtins(check_float(path, xs).output) == want
    int8 = check_int8(path, RNG.uniform(-1, 1, (32, 2, 5, 5)).astype(np.float32), xs, tmp_path)
    assert builtins(int8.output) == want
