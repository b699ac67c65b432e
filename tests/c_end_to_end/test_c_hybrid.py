"""The integer-dot hybrid kernels of the float C target (``--quantize dynamic --target c``,
``select-kernels{hybrid=integer}``, the default): each layer's input quantized to int8 per
batch, an int8 dot product, one float scale per output.

The oracle is LiteRT's hybrid kernels (reference op resolver) on our dynamic ``.tflite``,
which quantize the inputs the same way (asymmetric, per batch):

- one layer (CONV_2D with padding and stride, grouped CONV_2D, DEPTHWISE_CONV_2D with depth
  multiplier 1 and 2, FULLY_CONNECTED over a batch of rows), host gcc build: within 1e-5
  of LiteRT relative to the largest output (measured 0 to 1.2e-7; only a value on a
  rounding edge of the input quantization, whose scale LiteRT computes in double, can move);
  the grouped convolution within 2% (LiteRT runs SPLIT + a CONV_2D per group, each
  quantizing its own slice; the C kernel quantizes the whole input once);
- the zoo models: argmax agreement with LiteRT >= 99.5% and within 6% of the largest output
  (one step of a quantized activation moves the next layers; measured 1.3e-7 on the
  fully-connected models, 4e-4 to 5.5e-2 on the convolutional ones);
- Cortex-M4 (qemu, ``-mfloat-abi=hard``: the SMLAD paths) gives the host's values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import MicrolithError
from microlith.interpreter import run_graph
from microlith.passes.pipelines import mode_passes
from microlith.passes.select_kernels import HybridParams
from microlith.pipeline import format_pipeline
from tests.c_end_to_end.c_models import (
    MODELS,
    host_build,
    host_outputs,
    samples,
    write_files,
)
from tests.c_end_to_end.test_c_float import _compile, _host_exe
from tools.runtimes import input_perm, litert_interpreter, litert_invoke, run_litert, to_physical

LAYER_TOLERANCE = 1e-5
MODEL_TOLERANCE = 0.06


def _quiet(**options: object) -> CompileOptions:
    return CompileOptions(quiet=True, warn=lambda m: None, **options)  # type: ignore[arg-type]


def _layer_model(path: Path, kind: str, seed: int) -> np.ndarray:
    """A one-layer ONNX model; returns 12 inputs (shifted noise, so the zero point moves)."""
    rng = np.random.default_rng(seed)
    inits, attrs = [], {}
    if kind == "fc":
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 37])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 13])
        w = rng.normal(size=(37, 13)).astype(np.float32)
        inits = [numpy_helper.from_array(w, "w"),
                 numpy_helper.from_array(rng.normal(size=13).astype(np.float32), "b")]
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"])
        xs = rng.normal(size=(12, 3, 37)).astype(np.float32) + 0.4
    else:
        c, out, group, stride = {"conv": (6, 10, 1, 2), "grouped": (6, 4, 2, 1),
                                 "dw": (8, 8, 8, 1), "dw2": (4, 8, 4, 1)}[kind]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 7, 7])
        size = (7 + 2 - 3) // stride + 1
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out, size, size])
        w = rng.normal(size=(out, c // group, 3, 3)).astype(np.float32)
        inits = [numpy_helper.from_array(w, "w"),
                 numpy_helper.from_array(rng.normal(size=out).astype(np.float32), "b")]
        attrs = {"group": group, "pads": [1, 1, 1, 1], "strides": [stride, stride],
                 "kernel_shape": [3, 3]}
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
        xs = rng.normal(size=(12, 1, c, 7, 7)).astype(np.float32) + 0.3
        xs[0] = np.abs(xs[0])  # all >= 0: the zero point at -128
        xs[1] = 0.0  # all zero: scale 1, zero point 0
    graph = helper.make_graph([node], kind, [x], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return xs


@pytest.mark.parametrize("kind", ["fc", "conv", "grouped", "dw", "dw2"])
def test_one_hybrid_layer_equals_litert(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.onnx"
    xs = _layer_model(path, kind, seed=len(kind))
    result = compile_onnx(path, _quiet(target="c", quantize="dynamic"))
    assert "_f32_hybrid(" in result.files["model.c"]
    assert any(isinstance(n.params, HybridParams) for n in result.graph.nodes)
    directory = write_files(tmp_path / "out", result.files)
    exe = _host_exe(directory, result.graph.inputs[0].name)
    tflite = compile_onnx(path, _quiet(quantize="dynamic")).output
    feeds = np.stack([to_physical(x, input_perm(result.graph)) for x in xs]).astype(np.float32)
    got = np.stack([host_outputs(exe, f[None], np.float32)[0] for f in feeds])
    interp = litert_interpreter(tflite)
    want = np.stack([litert_invoke(interp, f) for f in feeds]).reshape(got.shape)
    # a grouped convolution is SPLIT + one CONV_2D per group in the .tflite, each quantizing
    # its own slice of the input; the C kernel quantizes the whole input once (measured 0.8%)
    bound = 0.02 if kind == "grouped" else LAYER_TOLERANCE
    assert np.abs(got - want).max() <= bound * float(np.abs(want).max())
    if kind in ("fc", "conv", "dw"):  # ASan + UBSan (the arena poisoned): the same values
        sanitized = host_build(directory, result.graph.inputs[0].name, "sanitize",
                               tmp_path / "san")
        assert np.array_equal(np.stack([host_outputs(sanitized, f[None], np.float32)[0]
                                        for f in feeds]), got)
    ours = np.stack([run_graph(result.graph, {result.graph.inputs[0].name: f})[
        result.graph.outputs[0].name] for f in feeds]).reshape(got.shape)
    # against the float interpreter (weights dequantized, inputs not quantized): within
    # the input quantization's error, and exact on the all-zero input
    assert np.abs(got - ours).max() <= 0.05 * float(np.abs(ours).max())


FAST = ("lenet", "mlp_sigmoid")


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MODELS])
def test_hybrid_zoo_model_agrees_with_litert(tmp_path: Path, name: str) -> None:
    result = _compile(name, "dynamic")
    text = result.files["model.c"]
    assert "_f32_hybrid(" in text and "_f32_w8(" not in text and "double" not in text
    directory = write_files(tmp_path / "out", result.files)
    graph = result.graph
    _, x = samples(name)
    feeds = to_physical(x, input_perm(graph)).astype(np.float32)
    got = host_outputs(_host_exe(directory, graph.inputs[0].name), feeds, np.float32)
    litert = run_litert(_compile(name, "dynamic", "tflite").output, feeds).reshape(got.shape)
    scale = float(np.abs(litert).max())
    assert np.abs(got - litert).max() <= MODEL_TOLERANCE * scale
    assert (got.argmax(1) == litert.argmax(1)).mean() >= 0.995
    plan = graph.meta["memory_plan"]
    assert result.sizes["arena"] == plan.arena_size == plan.lower_bound
    assert result.sizes["scratch"] == sum(size for _, size in plan.scratch.values()) > 0


@pytest.mark.parametrize("name", ["lenet", pytest.param("mobilenet_v1",
                                                          marks=pytest.mark.slow)])
def test_hybrid_on_cortex_m4_equals_host(tmp_path: Path, name: str) -> None:
    """The M4 build runs the SMLAD dot products (DSP im2col for convolutions)."""
    from tools.mcu import run as board

    try:
        board.check_toolchain()
    except board.ToolchainMissing as exc:
        pytest.skip(str(exc))
    result = _compile(name, "dynamic")
    directory = write_files(tmp_path / "out", result.files)
    _, x = samples(name)
    feeds = to_physical(x[:4], input_perm(result.graph)).astype(np.float32)
    run = board.build_and_run(directory, [f.tobytes() for f in feeds])
    got = np.stack([np.frombuffer(o, np.float32) for o in run.outputs])
    host = host_outputs(_host_exe(directory, result.graph.inputs[0].name), feeds, np.float32)
    assert np.abs(got - host).max() <= 1e-6 * float(np.abs(host).max())


def test_symmetric_inputs_and_dequantize_choice(tmp_path: Path) -> None:
    """hybrid-inputs=symmetric runs (near the float interpreter); hybrid=dequantize and a
    float32 model give no hybrid record (must not fire)."""
    path = tmp_path / "fc.onnx"
    xs = _layer_model(path, "fc", seed=3)
    spec = (format_pipeline(mode_passes("dynamic")) + ",legalize-c,prepare,"
            "select-kernels{hybrid-inputs=symmetric},plan-memory")
    result = compile_onnx(path, _quiet(target="c", pipeline=spec))
    assert ".symmetric = 1," in result.files["model.c"]
    directory = write_files(tmp_path / "out", result.files)
    exe = _host_exe(directory, result.graph.inputs[0].name)
    got = host_outputs(exe, xs[:1].astype(np.float32), np.float32).reshape(3, 13)
    ours = run_graph(result.graph, {result.graph.inputs[0].name: xs[0]})[
        result.graph.outputs[0].name]
    assert 0 < np.abs(got - ours).max() <= 0.03 * float(np.abs(ours).max())
    for options in (_quiet(target="c", quantize="dynamic", hybrid="dequantize"),
                    _quiet(target="c")):
        plain = compile_onnx(path, options)
        assert not any(isinstance(n.params, HybridParams) for n in plain.graph.nodes)
        assert "_hybrid(" not in plain.files["model.c"]
    with pytest.raises(MicrolithError, match="hybrid"):
        compile_onnx(path, _quiet(target="c", quantize="dynamic", hybrid="fast"))


def test_accumulator_overflow_keeps_the_dequantizing_kernel(tmp_path: Path) -> None:
    """Must not fire: 70,000 weights of 127 per unit could wrap the int32 accumulator
    (255 * 127 * 70000 > 2^31), so that layer runs the dequantizing kernel, with a remark."""
    depth = 70_000
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, depth])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    w = np.full((depth, 2), 0.01, np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "wide", [x],
                              [y], [numpy_helper.from_array(w, "w")])
    path = tmp_path / "wide.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = compile_onnx(path, _quiet(target="c", quantize="dynamic"))
    text = result.files["model.c"]
    assert "mlk_fully_connected_f32_w8(" in text and "_hybrid(" not in text
    assert any("overflow" in str(r) for r in result.remarks)


def test_cli_hybrid_flag(tmp_path: Path) -> None:
    from tests.cli.clikit import ZOO as CLI_ZOO
    from tests.cli.clikit import run

    out = tmp_path / "out"
    proc = run("compile", CLI_ZOO / "lenet.onnx", "--target", "c", "--quantize", "dynamic",
               "--hybrid", "dequantize", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (out / "model.c").read_text()
    assert "mlk_conv2d_f32_w8(" in text and "_hybrid(" not in text
    bad = run("compile", CLI_ZOO / "lenet.onnx", "--target", "c", "--quantize", "dynamic",
              "--hybrid", "fast", "-o", tmp_path / "bad", cwd=tmp_path)
    assert bad.returncode == 2 and "--hybrid" in bad.stderr and "Traceback" not in bad.stderr
