"""PRelu end to end: the worked example of adding an op (see CONTRIBUTING.md).

A small CNN with ``PRelu`` twice -- a per-channel slope ``[C, 1, 1]`` after a convolution
(broadcast over H and W) and a scalar slope after the fully-connected layer -- is compiled
three ways:

* float ``.tflite``: LiteRT and TFLite-Micro agree with onnxruntime within 1e-5;
* int8 ``.tflite``: TFLite-Micro's bytes equal our integer interpreter's on every input,
  and TFLite-Micro runs one-op PRELU models with random scales, zero points and broadcast
  shapes exactly as ``microlith.quant`` does;
* C: the same int8 graph lowered with ``legalize-c``, built with gcc, gives TFLite-Micro's
  bytes.
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
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tools.runtimes import (
    NCHW_TO_NHWC,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
)

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    w = RNG.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5
    slope = np.array([0.25, -0.5, 0.1, 1.5], np.float32).reshape(4, 1, 1)
    fc = RNG.standard_normal((5, 64)).astype(np.float32) * 0.2
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(slope, "slope"),
             numpy_helper.from_array(fc, "fc"),
             numpy_helper.from_array(np.array([0.2], np.float32), "slope2")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("PRelu", ["c", "slope"], ["p"], name="prelu"),
             helper.make_node("MaxPool", ["p"], ["m"], kernel_shape=[2, 2], strides=[2, 2],
                              name="pool"),
             helper.make_node("Flatten", ["m"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc"], ["g"], transB=1, name="gemm"),
             helper.make_node("PRelu", ["g", "slope2"], ["y"], name="prelu2")]
    graph = helper.make_graph(nodes, "prelu_net",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              inits)
    path = tmp_path_factory.mktemp("prelu") / "prelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def inputs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 1, 8, 8)).astype(np.float32)


def test_float_tflite_matches_onnxruntime(model: Path) -> None:
    result = compile_onnx(model, CompileOptions(quiet=True))
    assert [op.op for op in parse_model(result.output).operators].count("PRELU") == 2
    xs = inputs(20)
    reference = ort_outputs(ort_session(model), xs)
    physical = to_physical(xs, NCHW_TO_NHWC)
    assert np.abs(run_litert(result.output, physical) - reference).max() < 1e-5
    assert np.abs(run_tflm(result.output, physical) - reference).max() < 1e-5


@pytest.fixture(scope="module")
def int8(model: Path):  # noqa: ANN201
    calib = inputs(64)
    tflite = compile_onnx(model, CompileOptions(quantize="int8", calibration_data=calib,
                                                quiet=True))
    c = compile_onnx(model, CompileOptions(quantize="int8", calibration_data=calib,
                                           target="c", quiet=True))
    q = tflite.graph.inputs[0].quant
    xq = quantize_input(to_physical(inputs(40), NCHW_TO_NHWC), q.scale[0], q.zero_point[0])
    return tflite, c, xq


def test_int8_tflite_is_tflm_exact(int8) -> None:  # noqa: ANN001
    tflite, _, xq = int8
    assert "PRELU" in [op.op for op in parse_model(tflite.output).operators]
    ours = run_graph(executable(tflite.graph), {"x": xq})["y"]
    assert np.array_equal(run_tflm(tflite.output, xq), ours)


def test_int8_c_is_tflm_exact(int8, tmp_path: Path) -> None:  # noqa: ANN001
    tflite, c, xq = int8
    assert [n.op for n in c.graph.nodes].count("tfl.prelu") == 2
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
    exe = tmp_path / "prelu"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    str(tmp_path / "model.c"), str(tmp_path / "main.c"), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], input=xq.tobytes(), capture_output=True, check=True).stdout
    got = np.frombuffer(out, np.int8).reshape(len(xq), 5)
    assert np.array_equal(got, run_tflm(tflite.output, xq))


@pytest.mark.parametrize("shape, alpha_shape", [((1, 6, 6, 4), (1, 1, 1, 4)),
                                                ((2, 3, 5, 3), (1, 1, 1, 1)),
                                                ((1, 16), (16,))])
def test_one_op_prelu_matches_tflm(shape: tuple[int, ...], alpha_shape: tuple[int, ...]
                                   ) -> None:
    from tflite_micro.python.tflite_micro import runtime

    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.quant.elementwise import prelu_params, run_prelu

    for trial in range(4):
        rng = np.random.default_rng(trial)
        x = rng.integers(-128, 128, shape).astype(np.int8)
        alpha = rng.integers(-128, 128, alpha_shape).astype(np.int8)
        sx, sa, sy = (float(np.float32(rng.uniform(1e-3, 0.1))) for _ in range(3))
        zx, za, zy = (int(rng.integers(-60, 60)) for _ in range(3))
        tensors = [TflTensor("x", list(shape), "int8", None, TflQuant([sx], [zx])),
                   TflTensor("alpha", list(alpha_shape), "int8", alpha.tobytes(),
                             TflQuant([sa], [za])),
                   TflTensor("y", list(shape), "int8", None, TflQuant([sy], [zy]))]
        data = serialize_model(TflModel(tensors, [TflOperator("PRELU", [0, 1], [2], {}, 1)],
                                        [0], [2]))
        ours = run_prelu(prelu_params(x_scale=sx, x_zp=zx, alpha_scale=sa, alpha_zp=za,
                                      y_scale=sy, y_zp=zy), [x, alpha])[0]
        interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
        interp.set_input(x, 0)
        interp.invoke()
        assert np.array_equal(interp.get_output(0), ours), (trial, shape)
