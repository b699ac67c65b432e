"""The int8 DSP ADD / SUB / MUL (``microlith_kernels_dsp_elementwise.h``: the requantization
as one SMLAL with the shift split once per layer) and MAX_POOL_2D
(``microlith_kernels_dsp_pool.h``: SSUB8 + SEL, four channels a word) give the portable
kernels' bytes and TFLite-Micro's on the Cortex-M4, with and without broadcasting, and are
faster.

resnet8 (three residual ADDs) and a model of ADD, SUB, MUL with broadcast operands and a
fused ReLU are built three ways -- DSP, ``-DMLK_PORTABLE_ELEMENTWISE`` (the portable ADD /
MUL on the M4), ``-DMLK_PORTABLE`` -- and all equal TFLite-Micro on saturated and random
inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx, write_directory
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro")

FLAGS = {"dsp": [], "portable-elementwise": ["-DMLK_PORTABLE_ELEMENTWISE", "-DMLK_PORTABLE_POOL"],
         "portable": ["-DMLK_PORTABLE"]}


def _elementwise_model(path: Path) -> Path:
    rng = np.random.default_rng(3)
    c = numpy_helper.from_array(rng.uniform(-2, 2, (1, 6, 1, 1)).astype(np.float32), "c")
    nodes = [
        helper.make_node("Mul", ["x", "c"], ["m"]),          # broadcast over H, W
        helper.make_node("Add", ["m", "x"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Sub", ["r", "m"], ["s"]),
        helper.make_node("Mul", ["s", "x"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "elementwise",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 6, 5, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [c])
    file = path / "elementwise.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), file)
    return file


def _check(file: Path, calibration: np.ndarray, x: np.ndarray, tmp: Path) -> dict[str, int]:
    common = {"quantize": "int8", "calibration_data": calibration, "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(x, input_perm(tflite.graph)), q.scale[0],
                           q.zero_point[0])
    feeds[0], feeds[1] = -128, 127
    want = run_tflm(tflite.output, feeds, flatten=True)
    write_directory(tmp / "c", compile_onnx(file, CompileOptions(target="c", **common)).files)
    counts = {}
    for label, flags in FLAGS.items():
        run = board.build_and_run(tmp / "c", [f.tobytes() for f in feeds], cflags=flags,
                                  workdir=tmp / label)
        got = np.stack([np.frombuffer(o, np.int8) for o in run.outputs])
        assert np.array_equal(got, want.reshape(got.shape)), label
        counts[label] = run.instructions[2]
    return counts


@pytest.mark.slow
def test_elementwise_layers_equal_tflm(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    file = _elementwise_model(tmp_path)
    counts = _check(file, rng.uniform(-1, 1, (16, 6, 5, 7)).astype(np.float32),
                    rng.uniform(-1.2, 1.2, (4, 6, 5, 7)).astype(np.float32), tmp_path)
    assert counts["dsp"] < 0.8 * counts["portable-elementwise"], counts


@pytest.mark.slow
def test_resnet8_residual_adds(tmp_path: Path) -> None:
    from tests.c_end_to_end.c_models import ZOO, samples

    calibration, test = samples("resnet8")
    counts = _check(ZOO / "resnet8.onnx", calibration, test[:3], tmp_path)
    # measured 1,739,053 vs 1,824,502 (the three ADDs 0.6x)
    assert counts["dsp"] < 0.97 * counts["portable-elementwise"], counts


def _pool_model(path: Path) -> Path:
    """Conv (so the pools see a quantized tensor with a fused ReLU6 range), then two max
    pools: 3x3 stride 2 with padding over 10 channels (a word group and a tail), 2x2."""
    rng = np.random.default_rng(11)
    w = numpy_helper.from_array(rng.uniform(-1, 1, (10, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[2, 2], strides=[1, 1]),
    ]
    inits = [w, numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    graph = helper.make_graph(nodes, "pools",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 3, 9, 11])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    file = path / "pools.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), file)
    return file


@pytest.mark.slow
def test_max_pools_equal_tflm(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    file = _pool_model(tmp_path)
    counts = _check(file, rng.uniform(-3, 3, (16, 3, 9, 11)).astype(np.float32),
                    rng.uniform(-3, 3, (4, 3, 9, 11)).astype(np.float32), tmp_path)
    assert counts["dsp"] < counts["portable-elementwise"], counts
