"""``to-nhwc`` on models as tf2onnx writes a Keras CNN: an NHWC graph input, a
Transpose(0, 3, 1, 2) to NCHW convolutions, Transpose(0, 2, 3, 1) back before Keras's
Flatten (or before an NHWC graph output). The compiled model keeps the Keras interface
(``[1, H, W, C]``) and has no TRANSPOSE at all; inverse pairs elsewhere cancel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from tools.runtimes import ort_outputs, ort_session, quantize_input, run_litert, run_tflm, top1

RNG = np.random.default_rng(11)
N = helper.make_node


def _init(name: str, shape: tuple[int, ...], scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) * scale).astype(np.float32),
                                   name)


def keras_cnn(nhwc_output: bool = False) -> onnx.ModelProto:
    """input_1 [1, 8, 8, 3] -> Transpose -> Conv+Relu -> Conv(stride 2)+Relu -> Transpose
    -> (Reshape -> MatMul -> Add -> Softmax) or the NHWC feature map as the output."""
    inits = [_init("w1", (8, 3, 3, 3)), _init("b1", (8,), 0.1), _init("w2", (8, 8, 3, 3)),
             _init("b2", (8,), 0.1), _init("dense", (128, 10), 0.1), _init("bias", (10,), 0.1),
             numpy_helper.from_array(np.array([-1, 128], np.int64), "flat_shape")]
    nodes = [N("Transpose", ["input_1"], ["t_in"], perm=[0, 3, 1, 2], name="transpose_in"),
             N("Conv", ["t_in", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             N("Relu", ["c1"], ["r1"], name="relu1"),
             N("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2],
               name="conv2"),
             N("Relu", ["c2"], ["r2"], name="relu2"),
             N("Transpose", ["r2"], ["t_out" if not nhwc_output else "features"],
               perm=[0, 2, 3, 1], name="transpose_out")]
    if nhwc_output:
        out = helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, 4, 4, 8])
    else:
        nodes += [N("Reshape", ["t_out", "flat_shape"], ["flat"], name="flatten"),
                  N("MatMul", ["flat", "dense"], ["mm"], name="dense_matmul"),
                  N("Add", ["mm", "bias"], ["logits"], name="dense_bias"),
                  N("Softmax", ["logits"], ["probs"], axis=-1, name="softmax")]
        out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph(nodes, "keras_cnn",
                              [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                                             [1, 8, 8, 3])], [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(params=[False, True], ids=["flatten-dense", "nhwc-output"])
def keras_model(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "keras.onnx"
    onnx.save(keras_cnn(request.param), path)
    return path


def _op_names(data: bytes) -> list[str]:
    return [op.op for op in parse_model(data).operators]


def test_float_keeps_keras_interface_and_has_no_transpose(keras_model: Path) -> None:
    result = compile_onnx(keras_model, CompileOptions(quiet=True))
    assert "TRANSPOSE" not in _op_names(result.output)
    assert result.graph.inputs[0].shape == (1, 8, 8, 3)
    assert not result.graph.meta["io_perms"]  # interface exactly as in the ONNX model
    xs = RNG.uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    reference = ort_outputs(ort_session(keras_model), xs)
    assert np.abs(run_litert(result.output, xs) - reference).max() <= 1e-4


def test_int8_has_no_transpose_and_runs_in_tflm(keras_model: Path) -> None:
    calib = RNG.uniform(-1, 1, (64, 8, 8, 3)).astype(np.float32)
    result = compile_onnx(keras_model, CompileOptions(quantize="int8", quiet=True,
                                                      calibration_data=calib))
    assert "TRANSPOSE" not in _op_names(result.output)
    q = result.graph.inputs[0].quant
    xs = RNG.uniform(-1, 1, (32, 8, 8, 3)).astype(np.float32)
    got = run_tflm(result.output, quantize_input(xs, q.scale[0], q.zero_point[0]))
    oq = result.graph.outputs[0].quant
    dequant = (got.astype(np.float32) - oq.zero_point[0]) * oq.scale[0]
    reference = ort_outputs(ort_session(keras_model), xs)
    if reference.ndim == 2:
        assert (top1(dequant) == top1(reference)).mean() >= 0.9
    else:  # the layout is right: int8 follows the float feature map closely
        assert np.abs(dequant - reference).mean() < 0.02 * np.abs(reference).max()


def test_inverse_transpose_pair_cancels(tmp_path: Path) -> None:
    """Transpose(0, 2, 1) twice on a rank-3 activation: both go, numerics unchanged."""
    nodes = [N("Transpose", ["x"], ["a"], perm=[0, 2, 1], name="t1"),
             N("Transpose", ["a"], ["b"], perm=[0, 2, 1], name="t2"),
             N("Relu", ["b"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "pair",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [1, 4, 6])])
    path = tmp_path / "pair.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = compile_onnx(path, CompileOptions(quiet=True))
    assert "TRANSPOSE" not in _op_names(result.output)
    xs = RNG.standard_normal((4, 4, 6)).astype(np.float32)
    assert np.array_equal(run_litert(result.output, xs), np.maximum(xs, 0))


def test_a_real_transpose_stays(tmp_path: Path) -> None:
    """Must not fire: one Transpose feeding a graph output really moves data."""
    nodes = [N("Transpose", ["x"], ["y"], perm=[0, 2, 1], name="t")]
    graph = helper.make_graph(nodes, "one",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 4, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             [1, 6, 4])])
    path = tmp_path / "one.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    result = compile_onnx(path, CompileOptions(quiet=True))
    assert _op_names(result.output) == ["TRANSPOSE"]
    xs = RNG.standard_normal((3, 4, 6)).astype(np.float32)
    assert np.array_equal(run_litert(result.output, xs), xs.transpose(0, 2, 1))
