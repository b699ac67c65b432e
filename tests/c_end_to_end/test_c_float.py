"""The float C target (``--target c`` without ``--quantize``, or with ``dynamic`` / ``float16``).

Every trained zoo model and ``helper_matmul``, in the three weight forms (float32, int8
per-channel, float16), is compiled to C, built on the host with ``gcc -std=c99 -Wall
-Wextra -Werror -pedantic -Wdouble-promotion`` (single precision only) and run on the 450
held-out images (seeded noise for the helper). Its outputs are within 1e-5 of our float
interpreter on the same legalized graph, relative to the largest output magnitude
(``max |c - ours| <= 1e-5 max |ours|``: the sums run in another order); float32 and float16
also equal LiteRT on the corresponding ``.tflite`` to the same tolerance, and dynamic range
is within 5% of LiteRT's hybrid kernels, which quantize the activations as well. The arena
is the liveness lower bound; ``--ram-limit`` / ``--flash-limit`` still refuse. One model per
weight form runs on the Cortex-M4 (qemu, ``-mfloat-abi=hard``) and gives the host's values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import UsageError
from microlith.interpreter import run_graph
from tests.c_end_to_end.c_models import (
    HOST_MAIN,
    MODELS,
    WARNINGS,
    ZOO,
    assert_no_libm_and_no_double,
    checked,
    host_outputs,
    samples,
    write_files,
)
from tools.runtimes import input_perm, run_litert, to_physical

MODES = (None, "dynamic", "float16")
TOLERANCE = 1e-5


def _compile(name: str, mode: str | None, target: str = "c", **options: object):  # noqa: ANN202
    return compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        target=target, quantize=mode, quiet=True, warn=lambda m: None, **options))


def _dequantizing(name: str, mode: str | None, target: str = "c", **options: object):  # noqa: ANN202
    """Like ``_compile``, the int8 weights run by the dequantizing kernels (``*_w8``; the
    integer-dot hybrid kernels, the default, are tested in test_c_hybrid.py)."""
    if mode == "dynamic" and target == "c":
        options.setdefault("hybrid", "dequantize")
    return _compile(name, mode, target, **options)


def _host_exe(directory: Path, input_name: str) -> Path:
    main_c = directory / "main.c"
    main_c.write_text(HOST_MAIN.format(p="model", P="MODEL"))
    plan = json.loads((directory / "model_memory_plan.json").read_text())
    offset = plan["tensors"][input_name]["offset"]
    exe = directory / "model_host"
    checked(["gcc", *WARNINGS, "-Wdouble-promotion", "-O2", f"-DML_INPUT_OFFSET={offset}",
             "-I", directory, directory / "model.c", main_c, "-o", exe])
    return exe


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m or "float32")
@pytest.mark.parametrize("name", MODELS)
def test_float_c_matches_interpreter_and_litert(tmp_path: Path, name: str,
                                                mode: str | None) -> None:
    result = _dequantizing(name, mode)
    directory = write_files(tmp_path / "out", result.files)
    graph = result.graph
    _, x = samples(name)
    feeds = to_physical(x, input_perm(graph)).astype(np.float32)
    got = host_outputs(_host_exe(directory, graph.inputs[0].name), feeds, np.float32)
    ours = run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name]
    ours = ours.reshape(len(feeds), -1)
    scale = float(np.abs(ours).max())
    assert np.abs(got - ours).max() <= TOLERANCE * scale
    litert = run_litert(_compile(name, mode, "tflite").output, feeds).reshape(len(feeds), -1)
    bound = 0.05 if mode == "dynamic" else TOLERANCE
    assert np.abs(got - litert).max() <= bound * scale
    plan = graph.meta["memory_plan"]
    assert result.sizes["arena"] == plan.arena_size == plan.lower_bound
    text = result.files["model.c"]
    kernel = {None: "_f32(", "dynamic": "_f32_w8(", "float16": "_f32_w16("}[mode]
    assert kernel in text and "double" not in text


def test_float_c_size_limits() -> None:
    with pytest.raises(UsageError, match="--ram-limit"):
        _compile("lenet", None, ram_limit=1024)
    with pytest.raises(UsageError, match="--flash-limit"):
        _compile("lenet", "dynamic", flash_limit=4096)


def test_float_c_weight_bytes() -> None:
    """int8 weights are about a quarter, float16 about half of the float32 tables."""
    sizes = {mode: _compile("resnet8", mode).sizes["weights"] for mode in MODES}
    assert sizes["dynamic"] <= 0.3 * sizes[None]
    assert sizes["float16"] <= 0.52 * sizes[None]


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m or "float32")
def test_float_c_on_cortex_m4(tmp_path: Path, mode: str | None) -> None:
    from tools.mcu import run as board

    try:
        board.check_toolchain()
    except board.ToolchainMissing as exc:
        pytest.skip(str(exc))
    result = _dequantizing("lenet", mode)
    directory = write_files(tmp_path / "out", result.files)
    _, x = samples("lenet")
    feeds = to_physical(x[:6], input_perm(result.graph)).astype(np.float32)
    run = board.build_and_run(directory, [f.tobytes() for f in feeds])
    got = np.stack([np.frombuffer(o, np.float32) for o in run.outputs])
    host = host_outputs(_host_exe(directory, result.graph.inputs[0].name), feeds, np.float32)
    assert np.abs(got - host).max() <= TOLERANCE * float(np.abs(host).max())


def test_float_c_needs_no_libm_and_no_double(tmp_path: Path) -> None:
    """Only memcpy/memset/memmove may be undefined (no libm); no f64 instruction on the M4."""
    result = _compile("mlp_sigmoid", "float16")
    directory = write_files(tmp_path / "out", result.files)
    assert_no_libm_and_no_double(directory, tmp_path)


def test_float_op_without_a_c_kernel_is_refused_by_name(tmp_path: Path) -> None:
    """Abs has a float .tflite lowering (ABS) but no C kernel, float or int8: the float C target
    names it."""
    import onnx
    from onnx import TensorProto, helper

    from microlith.diagnostics import MicrolithError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])
    graph = helper.make_graph([helper.make_node("Abs", ["x"], ["y"], name="root")],
                              "abs", [x], [y])
    path = tmp_path / "abs.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert compile_onnx(path, CompileOptions()).output  # the float .tflite exists
    with pytest.raises(MicrolithError, match=r"root \(Abs\): no C kernel for "
                                             r"tfl\.abs"):
        compile_onnx(path, CompileOptions(target="c"))
