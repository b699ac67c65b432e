"""The three checks every op of ``tests/test_ops_*.py`` goes through, on a small ONNX model:

* float ``.tflite``: LiteRT (reference kernels) agrees with onnxruntime within ``tol``;
* int8 ``.tflite``: TFLite-Micro's bytes equal our integer interpreter's (when
  TFLite-Micro has every kernel; otherwise LiteRT within ``litert_lsb`` steps);
* C (``legalize-c``, gcc on the host): the bytes of our integer interpreter.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, CompileResult, compile_onnx
from microlith.app.integer_run import executable
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tools.runtimes import (
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
)

_MAIN_C = (
    '#include <stdio.h>\n#include <string.h>\n#include "model.h"\n'
    "int main(void) {\n    static signed char x[MODEL_INPUT0_BYTES];\n"
    "    while (fread(x, 1, sizeof x, stdin) == sizeof x) {\n"
    "        memcpy(model_input(0), x, sizeof x);\n"
    "        if (model_invoke() != 0) return 1;\n"
    "        fwrite(model_output(0), 1, model_output_bytes(0), stdout);\n    }\n"
    "    return 0;\n}\n")


def save_model(path: Path, nodes: list[onnx.NodeProto], x_shape: Sequence[int],
               inits: dict[str, np.ndarray] | None = None, opset: int = 13,
               y_type: int = TensorProto.FLOAT) -> Path:
    """A one-input ``x`` / one-output ``y`` model of ``nodes`` (output shape inferred)."""
    graph = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", y_type, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def builtins(data: bytes) -> list[str]:
    return [op.op for op in parse_model(data).operators]


def _litert_builtin(data: bytes, feeds: np.ndarray) -> np.ndarray:
    """LiteRT with its default (optimized) kernels, for ops its reference resolver lacks."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    outs = []
    for x in feeds:
        interp.set_tensor(interp.get_input_details()[0]["index"], x[None])
        interp.invoke()
        outs.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0].copy())
    return np.stack(outs)


def check_float(path: Path, xs: np.ndarray, tol: float = 1e-4, reference_kernels: bool = True
                ) -> CompileResult:
    """Float ``.tflite``: LiteRT vs onnxruntime within ``tol`` (absolute, on every output);
    ``reference_kernels=False`` runs LiteRT's default kernels (its reference resolver has
    no ELU)."""
    result = compile_onnx(path, CompileOptions(quiet=True))
    reference = ort_outputs(ort_session(path), xs)
    perm = input_perm(result.graph)
    run = run_litert if reference_kernels else _litert_builtin
    got = run(result.output, to_physical(xs, perm))
    out_perm = result.graph.meta.get("io_perms", {}).get(result.graph.outputs[0].name)
    reference = to_physical(reference, out_perm)
    assert got.shape[1:] == reference.shape[1:] or got.size == reference.size
    err = float(np.abs(got.reshape(reference.shape).astype(np.float64) - reference).max())
    assert err <= tol, f"LiteRT vs onnxruntime: {err}"
    return result


def _ours(result: CompileResult, xq: np.ndarray, lowered: bool = False) -> np.ndarray:
    graph = result.graph if lowered else executable(result.graph)
    name = graph.inputs[0].name
    out = graph.outputs[0].name
    return np.stack([np.asarray(run_graph(graph, {name: x[None]})[out])[0] for x in xq])


def _run_c(c: CompileResult, xq: np.ndarray, out_shape: tuple[int, ...], where: Path,
           dtype: np.dtype | type = np.int8) -> np.ndarray:
    for name, text in c.files.items():
        (where / name).write_text(text)
    (where / "main.c").write_text(_MAIN_C)
    exe = where / "model"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    str(where / "model.c"), str(where / "main.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], input=xq.tobytes(), capture_output=True,
                         check=True).stdout
    return np.frombuffer(out, dtype).reshape(len(xq), *out_shape)


def check_int8(path: Path, calib: np.ndarray, xs: np.ndarray, where: Path, *,
               tflm: bool = True, litert_lsb: int = 1, c: bool = True,
               c_as_tflite: bool = True) -> CompileResult:
    """int8 ``.tflite`` vs TFLite-Micro (or LiteRT), and C vs our integer interpreter on
    the C graph -- and on the ``.tflite`` graph unless ``c_as_tflite=False`` (ops that
    ``legalize-c`` lowers differently, e.g. an average pool with explicit pads)."""
    tflite = compile_onnx(path, CompileOptions(quantize="int8", calibration_data=calib,
                                               quiet=True))
    q = tflite.graph.inputs[0].quant
    xq = quantize_input(to_physical(xs, input_perm(tflite.graph)), q.scale[0],
                        q.zero_point[0])
    ours = _ours(tflite, xq)
    if tflm:
        assert np.array_equal(run_tflm(tflite.output, xq).reshape(ours.shape), ours)
    else:
        litert = run_litert(tflite.output, xq).reshape(ours.shape)
        assert np.abs(litert.astype(np.int32) - ours).max() <= litert_lsb
    if c:
        compiled = compile_onnx(path, CompileOptions(quantize="int8", calibration_data=calib,
                                                     target="c", quiet=True))
        got = _run_c(compiled, xq, ours.shape[1:], where, ours.dtype)
        assert np.array_equal(got, _ours(compiled, xq, lowered=True).reshape(got.shape))
        if c_as_tflite:
            assert np.array_equal(got, ours)
    return tflite
