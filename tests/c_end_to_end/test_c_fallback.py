"""The C target with ``--fallback float`` islands, the float LRN kernel, and the int8
SOFTMAX that TFLite-Micro and LiteRT abort on.

* Float C of ``Conv -> LRN -> Relu`` (``mlk_lrn_f32``, libm-free power): within 1e-5 of
  our float interpreter and of onnxruntime, relative to the largest output.
* int8 C of ``Gemm -> Softmax -> Relu`` over 512 classes with ``--fallback float`` (DEQUANTIZE,
  float SOFTMAX, QUANTIZE in C): the same bytes as TFLite-Micro on the int8 ``.tflite``,
  with inputs that make all 512 logits tie (the case that aborts the int8 kernel).
* int8 C of ``Conv -> LRN -> Conv`` (an LRN island; TFLite-Micro has no LRN kernel):
  within 1 LSB of our integer interpreter and of LiteRT (the float ``pow`` of each
  rounds differently, so a QUANTIZE after it can move by one step).
* The runtimes' fault, shown: an int8 SOFTMAX of 511 tied entries runs, the same model
  patched to 512 aborts TFLite-Micro and LiteRT (a child process each); microlith warns,
  naming the node, when it writes such a softmax in int8, and ``--fallback float`` keeps
  it in float.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.interpreter import run_graph
from tests.c_end_to_end.c_models import ZOO, samples
from tools.light_models import host_exe, run_host
from tools.runtimes import (
    input_perm,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
)

RNG = np.random.default_rng(5)


def _model(path: Path, nodes: list, inits: list, shape: list[int], out: list[int]) -> Path:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, out)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def _weights(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(
        RNG.uniform(-scale, scale, shape).astype(np.float32), name)


def _lrn_net(tmp: Path, tail_conv: bool) -> Path:
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("LRN", ["c1"], ["n1"], size=5, alpha=1e-2, beta=0.75, bias=1.0)]
    inits = [_weights("w1", 16, 3, 3, 3), _weights("b1", 16)]
    if tail_conv:
        nodes.append(helper.make_node("Conv", ["n1", "w2", "b2"], ["y"]))
        inits += [_weights("w2", 8, 16, 1, 1), _weights("b2", 8)]
        out = [1, 8, 12, 12]
    else:
        nodes.append(helper.make_node("Relu", ["n1"], ["y"]))
        out = [1, 16, 12, 12]
    return _model(tmp / "lrn.onnx", nodes, inits, [1, 3, 12, 12], out)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_float_c_lrn_matches_interpreter_and_onnxruntime(tmp_path: Path) -> None:
    path = _lrn_net(tmp_path, tail_conv=False)
    result = compile_onnx(path, CompileOptions(target="c", quiet=True))
    assert "mlk_lrn_f32(" in result.files["model.c"]
    x = RNG.uniform(-3, 3, (6, 3, 12, 12)).astype(np.float32)
    graph = result.graph
    feeds = to_physical(x, input_perm(graph))
    got = run_host(host_exe(result.files, tmp_path), feeds, np.float32)
    ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
    assert _rel(got, ours.reshape(len(x), -1)) <= 1e-5
    session = ort_session(path)
    ort = np.stack([session.run(None, {"x": row[None]})[0][0] for row in x])
    assert _rel(got, to_physical(ort, input_perm(graph)).reshape(len(x), -1)) <= 1e-5


def _softmax_net(tmp: Path, classes: int) -> Path:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
             helper.make_node("Softmax", ["g"], ["s"], axis=-1),
             helper.make_node("Relu", ["s"], ["y"])]  # int8 after the float island
    inits = [_weights("w", classes, 16), _weights("b", classes, scale=0.0)]
    return _model(tmp / "softmax.onnx", nodes, inits, [1, 16], [1, classes])


def test_int8_c_with_a_float_softmax_equals_tflm(tmp_path: Path) -> None:
    path = _softmax_net(tmp_path, 512)
    calib = RNG.uniform(-1, 1, (16, 16)).astype(np.float32)
    warnings: list[str] = []
    kept = compile_onnx(path, CompileOptions(quantize="int8", calibration_data=calib,
                                             quiet=True, warn=warnings.append))
    assert not kept.graph.meta["float_fallback"]  # int8 SOFTMAX kept, with a named warning
    assert [w for w in warnings if "'Softmax_2' (Softmax): int8 SOFTMAX over 512 >= 512 "
            "entries aborts" in w and "--fallback float" in w]
    options = {"quantize": "int8", "fallback": "float", "calibration_data": calib,
               "quiet": True}
    tflite = compile_onnx(path, CompileOptions(**options))  # type: ignore[arg-type]
    c = compile_onnx(path, CompileOptions(target="c", **options))  # type: ignore[arg-type]
    assert c.graph.meta["float_fallback"] == ["Softmax_2 (Softmax)"]
    assert "mlk_softmax_f32(" in c.files["model.c"]
    q = c.graph.inputs[0].quant
    x = np.concatenate([np.zeros((1, 16)), RNG.uniform(-1, 1, (7, 16))]).astype(np.float32)
    feeds = quantize_input(x, float(q.scale[0]), int(q.zero_point[0]))  # row 0: all tie
    got = run_host(host_exe(c.files, tmp_path), feeds, np.int8)
    want = run_tflm(tflite.output, feeds, flatten=True)
    assert want.dtype == np.int8 and np.array_equal(got, want)
    assert len(np.unique(got[0])) == 1  # the tied row: one probability everywhere


@pytest.mark.slow
def test_int8_c_with_an_lrn_island_within_one_step(tmp_path: Path) -> None:
    path = _lrn_net(tmp_path, tail_conv=True)
    calib = RNG.uniform(-1, 1, (8, 3, 12, 12)).astype(np.float32)
    options = {"quantize": "int8", "fallback": "float", "calibration_data": calib,
               "quiet": True}
    tflite = compile_onnx(path, CompileOptions(**options))  # type: ignore[arg-type]
    c = compile_onnx(path, CompileOptions(target="c", **options))  # type: ignore[arg-type]
    assert c.graph.meta["float_fallback"] == ["LRN_1 (LRN)"]
    text = c.files["model.c"]
    assert "mlk_lrn_f32(" in text and "mlk_dequantize_i8_f32(" in text
    graph = c.graph
    q = graph.inputs[0].quant
    x = RNG.uniform(-1, 1, (16, 3, 12, 12)).astype(np.float32)
    feeds = quantize_input(to_physical(x, input_perm(graph)), float(q.scale[0]),
                           int(q.zero_point[0]))
    got = run_host(host_exe(c.files, tmp_path), feeds, np.int8).astype(np.int32)
    ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
    litert = run_litert(tflite.output, feeds)
    assert np.abs(got - ours.reshape(len(x), -1).astype(np.int32)).max() <= 1
    assert np.abs(got - litert.reshape(len(x), -1).astype(np.int32)).max() <= 1
    assert np.mean(got == ours.reshape(len(x), -1)) > 0.99


@pytest.mark.parametrize(("name", "mode", "keep"), [
    ("helper_ops", "int8", None), ("helper_ops", "int16x8", None),
    ("lenet", "int8", ("MaxPool",))], ids=["helper_ops", "helper_ops-16x8", "lenet-keep"])
def test_zoo_float_islands_equal_tflm(tmp_path: Path, name: str, mode: str,
                                      keep: tuple[str, ...] | None) -> None:
    """--fallback float (and --keep-float) in C: the same bytes as TFLite-Micro."""
    calibration, test = samples(name)
    options = {"quantize": mode, "calibration_data": calibration[:100], "quiet": True,
               **({"keep_float": keep} if keep else {"fallback": "float"})}
    tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(**options))  # type: ignore[arg-type]
    c = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(target="c", **options))  # type: ignore[arg-type]
    assert c.graph.meta["float_fallback"] and "_f32(" in c.files["model.c"]
    graph = c.graph
    q = graph.inputs[0].quant
    feeds = quantize_input(to_physical(test[:60], input_perm(graph)), float(q.scale[0]),
                           int(q.zero_point[0]), graph.inputs[0].dtype.numpy.name)
    got = run_host(host_exe(c.files, tmp_path), feeds, graph.outputs[0].dtype.numpy)
    assert np.array_equal(got, run_tflm(tflite.output, feeds, flatten=True))


RUN = """
import sys
import numpy as np
data = open(sys.argv[1], "rb").read()
if sys.argv[2] == "tflm":
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    d = interp.get_input_details(0)
    print("shape", d["shape"].tolist(), flush=True)
    interp.set_input(np.full(d["shape"], 5, d["dtype"]), 0)
    interp.invoke()
else:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=data,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    d = interp.get_input_details()[0]
    print("shape", d["shape"].tolist(), flush=True)
    interp.set_tensor(d["index"], np.full(d["shape"], 5, d["dtype"]))
    interp.invoke()
print("ran")
"""


def test_tflm_and_litert_abort_on_512_tied_int8_softmax_entries(tmp_path: Path) -> None:
    path = _model(tmp_path / "s.onnx", [helper.make_node("Softmax", ["x"], ["y"])], [],
                  [1, 511], [1, 511])
    calib = RNG.uniform(-4, 4, (8, 511)).astype(np.float32)
    data = compile_onnx(path, CompileOptions(quantize="int8", calibration_data=calib,
                                             quiet=True)).output
    dims_511 = np.array([1, 511], "<i4").tobytes()
    assert data.count(dims_511) >= 1  # the input's and the output's shape (shared or not)
    patched = data.replace(dims_511, np.array([1, 512], "<i4").tobytes())
    for label, model in (("511", data), ("512", patched)):
        (tmp_path / f"{label}.tflite").write_bytes(model)
    for runtime in ("tflm", "litert"):
        ok = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "511.tflite"), runtime],
                            capture_output=True, text=True, check=False)
        assert ok.returncode == 0 and "shape [1, 511]\nran" in ok.stdout, ok.stderr[-500:]
        bad = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "512.tflite"),
                              runtime], capture_output=True, text=True, check=False)
        assert bad.returncode == -6 and bad.stdout == "shape [1, 512]\n"  # SIGABRT
