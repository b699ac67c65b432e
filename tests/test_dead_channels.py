"""Dead channels: a conv output channel whose float weights are ~1e-33 (as in trained
MobileNets) keeps an exact bias in int8.

Its naive per-channel weight scale (~1e-35) times the input scale is far too small for
its bias in int32; the TF converter's rule raises that channel's weight scale so the
bias quantizes to about 2^30 and the channel's weights to 0. The model then compiles to
int8 ``.tflite`` and to C (whose accumulator bound check used to refuse it), both give
TFLite-Micro's bytes, and every dequantized bias equals the float bias.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.app.integer_run import executable
from microlith.interpreter import run_graph
from microlith.quant.params import quantize_weights, saturated_biases
from tools.runtimes import NCHW_TO_NHWC, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(5)
BIAS = np.array([0.1, -0.2, 0.3, 0.05], np.float32)
DEAD = 2


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = (RNG.standard_normal((4, 1, 3, 3)) * 0.5).astype(np.float32)
    w[DEAD] = np.float32(1e-33) * np.sign(RNG.standard_normal((1, 3, 3)))
    fc = (RNG.standard_normal((3, 64)) * 0.2).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(BIAS, "b"),
             numpy_helper.from_array(fc, "fc")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1],
                              strides=[2, 2], name="conv"),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1, name="gemm")]
    graph = helper.make_graph(nodes, "dead", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 1, 8, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 3])], inits)
    path = tmp_path_factory.mktemp("dead") / "dead.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def inputs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 1, 8, 8)).astype(np.float32)


def test_weight_scale_is_raised_only_for_the_dead_channel() -> None:
    w = (RNG.standard_normal((4, 9)) * 0.5).astype(np.float32)
    w[DEAD] = 1e-33
    naive = quantize_weights(w, 0)[1].scale
    assert saturated_biases(BIAS, 0.01, naive) == 1  # the problem, without the rule
    q, qp = quantize_weights(w, 0, bias=BIAS, input_scale=0.01)
    assert [i for i in range(4) if qp.scale[i] != naive[i]] == [DEAD]
    assert not q[DEAD].any() and saturated_biases(BIAS, 0.01, qp.scale) == 0


@pytest.fixture(scope="module")
def compiled(model: Path):  # noqa: ANN201
    calib = inputs(64)
    warnings: list[str] = []
    tflite = compile_onnx(model, CompileOptions(quantize="int8", calibration_data=calib,
                                                quiet=True, warn=warnings.append))
    c = compile_onnx(model, CompileOptions(quantize="int8", calibration_data=calib,
                                           target="c", quiet=True, warn=warnings.append))
    assert not warnings
    q = tflite.graph.inputs[0].quant
    xq = quantize_input(to_physical(inputs(40), NCHW_TO_NHWC), q.scale[0], q.zero_point[0])
    return tflite, c, xq


def test_biases_are_exact(compiled) -> None:  # noqa: ANN001
    tflite, _, _ = compiled
    conv = next(n for n in tflite.graph.nodes if n.op == "tfl.conv_2d")
    bias = conv.inputs[2]
    scale = np.asarray(bias.quant.scale, np.float64)
    real = bias.constant.astype(np.float64) * scale
    assert abs(real[DEAD] - BIAS[DEAD]) <= 1e-6 * abs(BIAS[DEAD])  # ~2^30 steps: exact
    assert (np.abs(real - BIAS) <= 0.5 * scale * (1 + 1e-6)).all()  # every bias rounds
    assert np.abs(bias.constant.astype(np.int64)).max() < 2**31 - 1  # nothing saturated
    assert not conv.inputs[1].constant[DEAD].any()


def test_int8_tflite_is_tflm_exact(compiled) -> None:  # noqa: ANN001
    tflite, _, xq = compiled
    ours = run_graph(executable(tflite.graph), {"x": xq})["y"]
    assert np.array_equal(run_tflm(tflite.output, xq), ours)


def test_c_is_tflm_exact(compiled, tmp_path: Path) -> None:  # noqa: ANN001
    tflite, c, xq = compiled
    for name, text in c.files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include <string.h>\n#include "model.h"\n'
        "int main(void) {\n    static signed char x[MODEL_INPUT0_BYTES];\n"
        "    while (fread(x, 1, sizeof x, stdin) == sizeof x) {\n"
        "        memcpy(model_input(0), x, sizeof x);\n"
        "        if (model_invoke() != 0) return 1;\n"
        "        fwrite(model_output(0), 1, model_output_bytes(0), stdout);\n    }\n"
        "    return 0;\n}\n")
    exe = tmp_path / "dead"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    str(tmp_path / "model.c"), str(tmp_path / "main.c"), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], input=xq.tobytes(), capture_output=True, check=True).stdout
    got = np.frombuffer(out, np.int8).reshape(len(xq), 3)
    assert np.array_equal(got, run_tflm(tflite.output, xq))
