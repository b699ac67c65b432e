"""Float C kernels of ``render_float_data`` (SPLIT / SPLIT_V, STRIDED_SLICE, GATHER,
ARG_MAX / ARG_MIN, REDUCE_MAX / REDUCE_MIN / SUM, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR /
RESIZE_BILINEAR, TRANSPOSE_CONV).

Each ONNX model below puts many of those ops side by side, every one a graph output; it is
compiled with ``--target c`` (float), built by gcc with ``-std=c99 -Wall -Wextra -Werror
-pedantic -Wdouble-promotion`` at ``-O2`` and once with AddressSanitizer + UBSan (same
bytes out), and run on 8 seeded uniform inputs, 4 of them rounded to integers (ties: the
arg kernels must take the first extremum). Every float output is within 1e-5 of our float
interpreter on the legalized graph and of onnxruntime on the ONNX model, relative to the
output's largest magnitude; the arg-max / arg-min indices are equal. The generated C has
no ``double``. A reduction the kernel's one [outer][reduce][inner] view cannot express is
refused, naming the node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.interpreter import run_graph
from tools.light_models import C_FLAGS, HARNESS
from tools.runtimes import ort_session, to_physical

TOLERANCE = 1e-5
SHAPE = [1, 4, 6, 6]
SANITIZE = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
            "-fno-sanitize-recover=all"]
RNG = np.random.default_rng(11)


def _const(name: str, values: object, dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype), name)


def _data_model() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """SPLIT_V, SPLIT, STRIDED_SLICE (steps 2), GATHER (a negative index), ARG_MAX / ARG_MIN,
    REDUCE_MAX / REDUCE_MIN / SUM, BATCH_MATMUL, both resizes (half pixel), TRANSPOSE_CONV."""
    nodes = [
        helper.make_node("Split", ["x", "sp"], ["split_v0", "split_v1"], axis=1),
        helper.make_node("Split", ["x"], ["split0", "split1", "split2"], axis=2),
        helper.make_node("Slice", ["x", "st", "en", "ax", "stp"], ["slice"]),
        helper.make_node("Slice", ["x", "st2", "en2", "ax2", "stp2"], ["slice_back"]),
        helper.make_node("Gather", ["x", "gi"], ["gather"], axis=3),
        helper.make_node("ArgMax", ["x"], ["argmax"], axis=1, keepdims=0),
        helper.make_node("ArgMin", ["x"], ["argmin"], axis=3, keepdims=1),
        helper.make_node("ReduceMax", ["x"], ["reduce_max"], axes=[2, 3], keepdims=1),
        helper.make_node("ReduceMin", ["x"], ["reduce_min"], axes=[1], keepdims=0),
        helper.make_node("ReduceSum", ["x", "rsa"], ["sum"], keepdims=1),
        helper.make_node("MatMul", ["x", "x"], ["matmul"]),
        helper.make_node("Resize", ["x", "", "", "sz"], ["nearest"], mode="nearest"),
        helper.make_node("Resize", ["x", "", "", "sz"], ["bilinear"], mode="linear"),
        helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["transpose_conv"],
                         strides=[2, 2]),
    ]
    inits = [_const("sp", [1, 3]), _const("st", [1, 0]), _const("en", [4, 6]),
             _const("ax", [1, 3]), _const("stp", [2, 2]), _const("st2", [5]),
             _const("en2", [-7]), _const("ax2", [2]), _const("stp2", [-2]),
             _const("gi", [2, 0, -1]), _const("rsa", [2, 3]), _const("sz", [1, 4, 12, 9]),
             _const("wt", RNG.uniform(-0.5, 0.5, (4, 3, 3, 3)), np.float32),
             _const("bt", RNG.uniform(-0.5, 0.5, 3), np.float32)]
    return nodes, inits


def _resize_model() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The other coordinate modes: align_corners (both), asymmetric + floor (nearest),
    downscaling; a matmul whose right operand is broadcast over the batch; a transposed
    convolution with unequal strides, no bias, a ReLU after it."""
    nodes = [
        helper.make_node("Resize", ["x", "", "", "up"], ["bilinear_align"], mode="linear",
                         coordinate_transformation_mode="align_corners"),
        helper.make_node("Resize", ["x", "", "", "up"], ["nearest_align"], mode="nearest",
                         coordinate_transformation_mode="align_corners",
                         nearest_mode="round_prefer_ceil"),
        helper.make_node("Resize", ["x", "", "", "up"], ["nearest_asym"], mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Resize", ["x", "", "", "down"], ["bilinear_down"], mode="linear"),
        helper.make_node("Slice", ["x", "s0", "s1", "s2"], ["row"]),
        helper.make_node("MatMul", ["x", "row"], ["matmul_broadcast"]),
        helper.make_node("ConvTranspose", ["x", "wt2"], ["deconv"], strides=[2, 1]),
        helper.make_node("Relu", ["deconv"], ["transpose_conv_relu"]),
    ]
    inits = [_const("up", [1, 4, 11, 8]), _const("down", [1, 4, 4, 3]),
             _const("s0", [0]), _const("s1", [1]), _const("s2", [1]),
             _const("wt2", RNG.uniform(-0.5, 0.5, (4, 2, 2, 3)), np.float32)]
    return nodes, inits


MODELS = {"data": _data_model, "resize": _resize_model}
INT_OUTPUTS = {"argmax", "argmin"}
HIDDEN = {"row", "deconv"}  # intermediate values, not graph outputs


def _save(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> Path:
    produced = [o for n in nodes for o in n.output if o not in HIDDEN]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info(
            o, TensorProto.INT64 if o in INT_OUTPUTS else TensorProto.FLOAT, None)
         for o in produced], inits)
    model = onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    onnx.save(model, path)
    return path


def _build(directory: Path, files: dict[str, str], flags: list[str], name: str) -> Path:
    for file_name, text in files.items():
        (directory / file_name).write_text(text)
    (directory / "main.c").write_text(HARNESS)
    exe = directory / name
    proc = subprocess.run(["gcc", *C_FLAGS, *flags, "-I", str(directory),
                           str(directory / "model.c"), str(directory / "main.c"), "-o",
                           str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return exe


def _run(exe: Path, feeds: np.ndarray) -> bytes:
    in_file, out_file = exe.with_suffix(".in"), exe.with_suffix(".out")
    np.ascontiguousarray(feeds).tofile(in_file)
    proc = subprocess.run([str(exe), str(in_file), str(out_file)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return out_file.read_bytes()


def _split_outputs(raw: bytes, graph_outputs: list, count: int) -> dict[str, np.ndarray]:
    """The harness writes every output of one record, then the next record."""
    sizes = [v.type.nbytes for v in graph_outputs]
    records = np.frombuffer(raw, np.uint8).reshape(count, sum(sizes))
    out, start = {}, 0
    for v, size in zip(graph_outputs, sizes, strict=True):
        dtype = np.int64 if v.name in INT_OUTPUTS else np.float32
        chunk = np.ascontiguousarray(records[:, start:start + size])
        out[v.name] = chunk.view(dtype).reshape(count, *v.shape[1:])
        start += size
    return out


def _check(name: str, got: np.ndarray, want: np.ndarray, oracle: str) -> None:
    assert got.shape == want.shape, f"{name}: {got.shape} vs {oracle} {want.shape}"
    if name in INT_OUTPUTS:
        assert np.array_equal(got, want.astype(np.int64)), f"{name} differs from {oracle}"
        return
    error = float(np.abs(got - want).max())
    assert error <= TOLERANCE * float(np.abs(want).max()), f"{name}: {error} from {oracle}"


@pytest.mark.parametrize(("model", "mode"), [("data", None), ("resize", None),
                                             ("data", "float16")])
def test_float_data_kernels_match_interpreter_and_onnxruntime(tmp_path: Path, model: str,
                                                              mode: str | None) -> None:
    """float16 (the transposed convolution's weights rounded, widened in C): against our
    interpreter only, onnxruntime runs the float32 weights."""
    path = _save(tmp_path / f"{model}.onnx", *MODELS[model]())
    result = compile_onnx(path, CompileOptions(target="c", quantize=mode, quiet=True,
                                               warn=lambda m: None))
    graph, text = result.graph, result.files["model.c"]
    assert "double" not in text
    kernels = {"data": ["mlk_split_f32(", "mlk_strided_copy_f32(", "mlk_gather_f32(",
                        "mlk_arg_f32_i64(", "mlk_reduce_f32(", "mlk_batch_matmul_f32(",
                        "mlk_resize_f32(", "mlk_transpose_conv_f32("],
               "resize": ["mlk_resize_f32(", "mlk_batch_matmul_f32(",
                          "mlk_transpose_conv_f32("]}[model]
    assert all(k in text for k in kernels), [k for k in kernels if k not in text]
    perms = graph.meta.get("io_perms", {})
    x = RNG.uniform(-2, 2, (8, *SHAPE[1:])).astype(np.float32)
    x[4:] = np.round(x[4:])  # ties: arg-max / arg-min take the first extremum
    feeds = to_physical(x, perms.get("x"))
    (tmp_path / "o2").mkdir()
    (tmp_path / "san").mkdir()
    raw = _run(_build(tmp_path / "o2", result.files, [], "host"), feeds)
    assert _run(_build(tmp_path / "san", result.files, SANITIZE, "host_san"), feeds) == raw
    got = _split_outputs(raw, graph.outputs, len(x))
    rows = [run_graph(graph, {graph.inputs[0].name: row[None]}) for row in feeds]
    ours = {v.name: np.concatenate([r[v.name] for r in rows]) for v in graph.outputs}
    session = ort_session(path)
    names = [o.name for o in session.get_outputs()]
    ort = [session.run(None, {"x": row[None]}) for row in x]
    assert set(got) == set(names)
    for i, out in enumerate(names):
        _check(out, got[out], np.asarray(ours[out]), "our interpreter")
        if mode is not None:
            continue
        want = to_physical(np.concatenate([r[i] for r in ort]), perms.get(out))
        _check(out, got[out], want, "onnxruntime")


def test_float_reduction_over_non_adjacent_axes_is_refused_by_name(tmp_path: Path) -> None:
    """The reduce kernel runs one [outer][reduce][inner] view: axes 0 and 2 of a 3-D
    tensor do not fit one, and the float C target names the node before writing files."""
    from microlith.diagnostics import MicrolithError

    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[0, 2], keepdims=0, name="rmax")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    path = tmp_path / "reduce.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(MicrolithError, match="rmax.*non-adjacent"):
        compile_onnx(path, CompileOptions(target="c", quiet=True, warn=lambda m: None))


def test_float_data_kernels_need_no_libm_and_no_double(tmp_path: Path) -> None:
    """Only memcpy / memset / memmove are undefined (no libm); no f64 instruction on the
    Cortex-M4 (hard float) when its toolchain is installed."""
    import shutil

    nodes, inits = _data_model()
    extra, extra_inits = _resize_model()
    path = _save(tmp_path / "all.onnx", nodes + extra, inits + extra_inits)
    result = compile_onnx(path, CompileOptions(target="c", quiet=True, warn=lambda m: None))
    for file_name, text in result.files.items():
        (tmp_path / file_name).write_text(text)
    obj = tmp_path / "model.o"
    subprocess.run(["gcc", *C_FLAGS, "-c", str(tmp_path / "model.c"), "-o", str(obj)],
                   check=True, capture_output=True)
    nm = subprocess.run(["nm", "-u", str(obj)], check=True, capture_output=True, text=True)
    assert {line.split()[-1] for line in nm.stdout.splitlines()} <= {"memcpy", "memset",
                                                                     "memmove"}
    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-objdump")):
        pytest.skip("arm-none-eabi-gcc is not installed")
    arm = tmp_path / "model_m4.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                    "-mfpu=fpv4-sp-d16", *C_FLAGS, "-c", str(tmp_path / "model.c"), "-o",
                    str(arm)], check=True, capture_output=True)
    dump = subprocess.run(["arm-none-eabi-objdump", "-d", str(arm)], check=True,
                          capture_output=True, text=True)
    assert "vmul.f32" in dump.stdout
    assert ".f64" not in dump.stdout
