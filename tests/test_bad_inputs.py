"""Invalid models and user mistakes: one ``error:`` line naming the file and culprit, exit 2.

Covers the reliability issue's classes 7 (internal errors for user mistakes: missing
inputs and attributes, initializer data that does not match its dims, sizes that
overflow int32/int64, a kernel larger than its padded input, an out-of-range Gather
index, a non-finite LeakyRelu alpha) and 8 (invalid models accepted: no outputs, an
input listed twice, Relu with three inputs, a ``kernel_shape`` that disagrees with the
weights, opset 99, IR version 99, negative dims) -- onnx's checker now runs at load,
and our own checks cover what it misses. Each case runs ``microlith compile``
in-process and checks nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tests.badinput import ZOO, fails_cleanly, model, save, vi

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
X = [vi("x", [1, 3, 8, 8])]
X2 = [vi("x", [1, 4])]


def _conv(**attrs: object) -> onnx.ModelProto:
    return model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)], X,
                 [vi("y", None)], {"w": W})


def _with_init(tensor: onnx.TensorProto, shape: list[int]) -> onnx.ModelProto:
    proto = model([helper.make_node("Add", ["x", tensor.name], ["y"], name="add")],
                  [vi("x", shape)], [vi("y", shape)])
    proto.graph.initializer.append(tensor)
    return proto


def _raw(dims: list[int], data: bytes, dtype: int = onnx.TensorProto.FLOAT
         ) -> onnx.TensorProto:
    tensor = helper.make_tensor("b", dtype, [0], [])
    tensor.dims[:] = dims
    tensor.raw_data = data
    return tensor


def _typed(dims: list[int], values: list[float]) -> onnx.TensorProto:
    tensor = helper.make_tensor("b", onnx.TensorProto.FLOAT, [len(values)], values)
    tensor.dims[:] = dims
    return tensor


def _gather(indices: list[int], constant_data: bool) -> onnx.ModelProto:
    nodes = [helper.make_node("Gather", ["d", "i"], ["g"], name="gather", axis=1),
             helper.make_node("Add", ["x", "g"], ["y"], name="add")]
    inits = {"i": np.array(indices, np.int64)}
    if constant_data:
        inits["d"] = np.ones((1, 4), np.float32)
        return model(nodes, [vi("x", [1, len(indices)])], [vi("y", None)], inits)
    nodes[0].input[0] = "x"
    nodes[1].input[:] = ["g", "g"]
    return model(nodes, X2, [vi("y", None)], inits)


def _unary(op: str, inputs: list[str], **attrs: object) -> onnx.ModelProto:
    return model([helper.make_node(op, inputs, ["y"], name="act", **attrs)], X2,
                 [vi("y", [1, 4])])


def _versions(opset: int = 13, ir_version: int = 8) -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], X2, [vi("y", [1, 4])],
                 opset=opset, ir_version=ir_version)


def _no_outputs() -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], X2, [])


def _input_twice() -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], X2 + X2,
                 [vi("y", [1, 4])])


def _output_twice() -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], X2,
                 [vi("y", [1, 4]), vi("y", [1, 4])])


def _negative_dims() -> onnx.ModelProto:
    tensor = numpy_helper.from_array(np.ones(4, np.float32), "b")
    tensor.dims[:] = [-4]
    return _with_init(tensor, [1, 4])


CASES: dict[str, tuple[Callable[[], onnx.ModelProto], list[str], list[str]]] = {
    # class 7: the importers index missing inputs / attributes
    "conv-without-weights": (lambda: model([helper.make_node("Conv", ["x"], ["y"], name="conv")],
                                           X, [vi("y", None)]), [], ["Conv", "conv"]),
    "conv-empty-weight-name": (lambda: model([helper.make_node("Conv", ["x", ""], ["y"],
                                                               name="conv")], X,
                                             [vi("y", None)]), [], ["conv", "input 1"]),
    "conv-transpose-without-weights": (
        lambda: model([helper.make_node("ConvTranspose", ["x"], ["y"], name="deconv")], X,
                      [vi("y", None)]), [], ["ConvTranspose", "deconv"]),
    "pool-without-kernel": (lambda: model([helper.make_node("MaxPool", ["x"], ["y"],
                                                            name="pool")], X, [vi("y", None)]),
                            [], ["'pool'", "kernel_shape"]),
    "batchnorm-two-inputs": (
        lambda: model([helper.make_node("BatchNormalization", ["x", "s"], ["y"], name="bn")], X,
                      [vi("y", None)], {"s": np.ones(3, np.float32)}), [], ["bn", "input"]),
    "batchnorm-wrong-channels": (
        lambda: model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                        name="bn")], X, [vi("y", None)],
                      {n: np.ones(5, np.float32) for n in "sbmv"}), [], ["'bn'", "[3]"]),
    "clip-vector-bound": (lambda: model([helper.make_node("Clip", ["x", "lo"], ["y"],
                                                          name="clip")], X2, [vi("y", [1, 4])],
                                        {"lo": np.zeros(4, np.float32)}),
                          [], ["'clip'", "scalar"]),
    "clip-nan-bound": (lambda: model([helper.make_node("Clip", ["x", "lo"], ["y"], name="clip")],
                                     X2, [vi("y", [1, 4])], {"lo": np.float32(np.nan)}),
                       [], ["'clip'", "NaN"]),
    "gemm-one-input": (lambda: model([helper.make_node("Gemm", ["x"], ["y"], name="fc")], X2,
                                     [vi("y", None)]), [], ["Gemm", "fc"]),
    # class 7: initializer data that does not match its dims or dtype
    "raw-data-short": (lambda: _with_init(_raw([5], bytes(16)), [1, 5]), [],
                       ["'b'", "16 bytes", "need 20"]),
    "raw-data-long": (lambda: _with_init(_raw([3], bytes(16)), [1, 3]), [],
                      ["'b'", "16 bytes", "need 12"]),
    "raw-data-wrong-dtype": (lambda: _with_init(_raw([4], bytes(16), onnx.TensorProto.DOUBLE),
                                                [1, 4]), [], ["'b'", "DOUBLE", "need 32"]),
    "float-data-count": (lambda: _with_init(_typed([5], [1.0] * 4), [1, 5]), [],
                         ["'b'", "float_data", "need 5"]),
    # class 7: sizes that overflow int32 / int64
    "input-dim-2-40": (lambda: model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                     [vi("x", [1, 2**40])], [vi("y", None)]), [],
                       ["input 'x'", "1099511627776"]),
    "tensor-over-2-gib": (lambda: model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                                        [vi("x", [1, 2**16, 2**15])], [vi("y", None)]), [],
                          ["input 'x'", "8,589,934,592 bytes"]),
    "pads-2-40": (lambda: _conv(pads=[2**40] * 4), [], ["'conv'", "2199023255558"]),
    "strides-zero": (lambda: _conv(strides=[0, 1]), [], ["conv", "strides"]),
    "strides-beyond-int16": (lambda: _conv(strides=[40000, 1]), [],
                             ["'conv'", "strides [40000, 1]", "1..32,767"]),
    # class 7: a kernel larger than its padded input; Gather index; LeakyRelu alpha
    "kernel-larger-than-input": (
        lambda: model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
                      [vi("x", [1, 3, 2, 2])], [vi("y", None)], {"w": W}),
        [], ["'conv'", "larger than the padded input"]),
    "gather-index-constant-data": (lambda: _gather([0, 7], True), [],
                                   ["'gather'", "index 7", "size 4"]),
    "gather-index-negative": (lambda: _gather([-5], False), [], ["'gather'", "index -5"]),
    "leaky-relu-alpha-nan": (lambda: _unary("LeakyRelu", ["x"], alpha=float("nan")), [],
                             ["'act'", "alpha=nan"]),
    "leaky-relu-alpha-inf": (lambda: _unary("LeakyRelu", ["x"], alpha=float("inf")), [],
                             ["'act'", "alpha=inf"]),
    "hard-sigmoid-beta-inf": (lambda: _unary("HardSigmoid", ["x"], beta=float("-inf")), [],
                              ["'act'", "beta=-inf"]),
    "gemm-alpha-inf": (lambda: model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc",
                                                       alpha=float("inf"), transB=1)], X2,
                                     [vi("y", None)], {"w": np.ones((3, 4), np.float32)}),
                       [], ["'fc'", "alpha=inf"]),
    # class 8: invalid models that used to be accepted
    "no-outputs": (_no_outputs, [], ["no outputs"]),
    "input-listed-twice": (_input_twice, [], ["'x'", "graph input names multiple times"]),
    "output-listed-twice": (_output_twice, [], ["graph output 'y' is listed twice"]),
    "relu-three-inputs": (lambda: _unary("Relu", ["x", "x", "x"]), [],
                          ["act", "input size 3"]),
    "kernel-shape-disagrees": (lambda: _conv(kernel_shape=[5, 5]), [],
                               ["'conv'", "kernel_shape [5, 5]", "[3, 3]"]),
    "opset-99": (lambda: _versions(opset=99), [], ["opset 99"]),
    "ir-version-99": (lambda: _versions(ir_version=99), [], ["ir_version 99"]),
    "negative-initializer-dims": (_negative_dims, [], ["'b'", "dimension -4"]),
    "required-attribute-missing": (
        lambda: model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat")], X2,
                      [vi("y", None)]), [], ["'cat'", "axis"]),
    "unknown-attribute": (lambda: _unary("Relu", ["x"], alpha=1.0), [], ["act", "alpha"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_model_is_one_line_error(tmp_path: Path, case: str) -> None:
    build, extra, needles = CASES[case]
    save(build(), tmp_path / "bad.onnx")
    line = fails_cleanly(tmp_path, "compile", "bad.onnx", "-o", "out.tflite", *extra)
    assert line.startswith("error: bad.onnx: "), line
    for needle in needles:
        assert needle in line, (needle, line)


@pytest.mark.parametrize("case", ["relu-three-inputs", "no-outputs", "tensor-over-2-gib"])
def test_inspect_refuses_the_same_models(tmp_path: Path, case: str) -> None:
    build, _, needles = CASES[case]
    save(build(), tmp_path / "bad.onnx")
    line = fails_cleanly(tmp_path, "inspect", "bad.onnx")
    assert line.startswith("error: bad.onnx: ") and all(n in line for n in needles), line


@pytest.mark.parametrize("spec, needle", [
    ("input=1,1,16,99999999999999999999", "at most 2,147,483,647"),
    ("input=1,1,16," + "9" * 5000, "positive dims"),
])
def test_input_shape_dims_beyond_int32(tmp_path: Path, spec: str, needle: str) -> None:
    line = fails_cleanly(tmp_path, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                         "--input-shape", spec)
    assert "--input-shape" in line and needle in line


def test_input_shape_given_twice_for_one_input(tmp_path: Path) -> None:
    line = fails_cleanly(tmp_path, "compile", ZOO / "lenet.onnx", "-o", "out.tflite",
                         "--input-shape", "input=1,1,16,16", "--input-shape", "input=1,1,8,8")
    assert "given twice" in line and "'input'" in line and "1,1,8,8" in line


def test_api_input_shape_beyond_int32(tmp_path: Path) -> None:
    """The Python API (no CLI parsing) refuses the dim before protobuf overflows on it."""
    from microlith.diagnostics import FrontendError
    from microlith.frontend.onnx_import import load_onnx

    with pytest.raises(FrontendError, match="each must be 1..2,147,483,647"):
        load_onnx(ZOO / "lenet.onnx", {"input": (1, 1, 16, 10**20)})
