"""The float C target's element-wise maths (EXP, SQRT, RSQRT, ELU, GELU both forms, DIV):
``microlith_kernels_float_math.h``, libm-free single precision.

* One small ONNX model per op (RSQRT through LayerNormalization, the only importer that
  makes it; DIV with a broadcast constant and a second activation operand) is compiled with
  ``--target c``, built on the host with ``gcc -std=c99 -Wall -Wextra -Werror -pedantic
  -Wdouble-promotion`` (ASan/UBSan for four of them) and run on inputs spanning the float
  range: every output is within 1e-5 relative of our float interpreter and of onnxruntime
  (+ a 1e-37 floor for subnormal results; against onnxruntime also + 1e-6 absolute for
  GELU and 2e-7 for ELU: onnxruntime forms 1 + erf(x / sqrt 2) and exp(x) - 1 in float,
  which cancel (ELU(-1e-9) is 0 there), while ours and the interpreter do not), with the
  same infinities and NaNs.
* The scalar functions are swept directly (a C program over 2^17 values from 1e-44 to
  3e38 in magnitude, -120..120, and specials) against float64 numpy: relative error <= 1e-6
  (exp, sqrt, rsqrt, expm1), <= 2e-6 (gelu), <= 4e-6 for the tanh form where |y| >= 1e-10
  (2e-5 in its far tail, where 2u ~ -70 is rounded in float); subnormal results within a
  few of their ulps; the same infinities and NaNs.
* One model runs on the Cortex-M4 (qemu, ``-mfloat-abi=hard``) and equals the host's values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.interpreter import run_graph
from tests.c_end_to_end.c_models import (
    BUILDS,
    HOST_MAIN,
    WARNINGS,
    assert_no_libm_and_no_double,
    checked,
    host_outputs,
    write_files,
)

SHAPE = [4, 128]
RTOL = 1e-5
FLOOR = 1e-37
KERNELS = Path(__file__).resolve().parents[2] / "backends" / "c" / "kernels"


def _model(path: Path, nodes: list[onnx.NodeProto],
           inits: Sequence[onnx.TensorProto] = ()) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)
    graph = helper.make_graph(nodes, path.stem, [x], [y], initializer=list(inits))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    return path


def _wide(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """Signed values whose magnitudes are log-uniform in [lo, hi], plus +-0."""
    v = np.exp(rng.uniform(math.log(lo), math.log(hi), n)) * rng.choice([-1.0, 1.0], n)
    v[:2] = [0.0, -0.0]
    return v.astype(np.float32)


def _inputs(name: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    n = 8 * math.prod(SHAPE)
    if name == "exp":
        v = rng.uniform(-110.0, 95.0, n).astype(np.float32)
        v[:8] = [0.0, -0.0, 1e-30, -1e-30, 88.72, 88.73, -103.9, -104.0]
    elif name == "sqrt":
        v = np.abs(_wide(rng, n, 1e-44, 3e38))
        v[:4] = [np.inf, -1.0, 0.0, -0.0]
    elif name in ("elu", "gelu", "gelu_tanh"):
        v = np.concatenate([_wide(rng, n // 2, 1e-30, 1e30),
                            rng.uniform(-16.0, 16.0, n // 2).astype(np.float32)])
    elif name == "div":
        v = _wide(rng, n, 1e-18, 1e18)
        v[2] = -1.5  # x + 1.5 == 0: a / 0
    else:  # layer_norm: wide rows (the variance spans 1e-20 .. 1e20)
        v = (rng.standard_normal(n) * np.repeat(np.exp(rng.uniform(-23, 23, n // 128)), 128))
        v = v.astype(np.float32)
    return v.reshape(8, *SHAPE)


def _build(tmp_path: Path, name: str) -> Path:
    m = tmp_path / f"{name}.onnx"
    if name in ("exp", "sqrt", "elu"):
        return _model(m, [helper.make_node(name.capitalize(), ["x"], ["y"], name=name)])
    if name in ("gelu", "gelu_tanh"):
        approx = "tanh" if name == "gelu_tanh" else "none"
        return _model(m, [helper.make_node("Gelu", ["x"], ["y"], approximate=approx, name=name)])
    if name == "div":
        c = numpy_helper.from_array(np.linspace(-3.0, 5.0, SHAPE[1], dtype=np.float32)
                                    .reshape(1, -1), "c")
        k = numpy_helper.from_array(np.array([1.5], np.float32), "k")
        return _model(m, [helper.make_node("Div", ["x", "c"], ["q"], name="div_const"),
                          helper.make_node("Add", ["x", "k"], ["s"], name="shift"),
                          helper.make_node("Div", ["q", "s"], ["y"], name="div")], [c, k])
    gamma = numpy_helper.from_array(np.linspace(0.5, 2.0, SHAPE[1], dtype=np.float32), "g")
    beta = numpy_helper.from_array(np.linspace(-1.0, 1.0, SHAPE[1], dtype=np.float32), "b")
    return _model(m, [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1,
                                       epsilon=1e-30, name="ln")], [gamma, beta])


def _close(got: np.ndarray, ref: np.ndarray, atol: float = 0.0) -> bool:
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    if not np.array_equal(np.isnan(got), np.isnan(ref)):
        return False
    finite = np.isfinite(ref)
    if not np.array_equal(got[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)]):
        return False
    err = np.abs(got[finite] - ref[finite])
    return bool(np.all(err <= RTOL * np.abs(ref[finite]) + FLOOR + atol))


def _host(directory: Path, input_name: str, build: str) -> Path:
    main_c = directory / "main.c"
    main_c.write_text(HOST_MAIN.format(p="model", P="MODEL"))
    plan = json.loads((directory / "model_memory_plan.json").read_text())
    offset = plan["tensors"][input_name]["offset"]
    exe = directory / f"model_{build}"
    checked(["gcc", *WARNINGS, "-Wdouble-promotion", *BUILDS[build],
             f"-DML_INPUT_OFFSET={offset}", "-I", directory, directory / "model.c", main_c,
             "-o", exe])
    return exe


#: onnxruntime's own cancellation: exp(x) - 1 and 1 + erf(x / sqrt 2) formed in float
ORT_ATOL = {"elu": 2e-7, "gelu": 1e-6, "gelu_tanh": 1e-6}
#: the interpreter's 1 + erf / 1 + tanh in double is 0 below x ~ -8 / -7 (|GELU| < 1e-15)
OURS_ATOL = {"gelu": 1e-15, "gelu_tanh": 1e-15}
OPS = {"exp": "tfl.exp", "sqrt": "tfl.sqrt", "elu": "tfl.elu", "gelu": "tfl.gelu",
       "gelu_tanh": "tfl.gelu", "div": "tfl.div", "layer_norm": "tfl.rsqrt"}


@pytest.mark.parametrize("name", list(OPS))
def test_float_math_matches_interpreter_and_onnxruntime(tmp_path: Path, name: str) -> None:
    import onnxruntime as ort

    path = _build(tmp_path, name)
    result = compile_onnx(path, CompileOptions(target="c", quiet=True, warn=lambda m: None))
    graph = result.graph
    assert OPS[name] in [n.op for n in graph.nodes]
    text = result.files["model.c"]
    assert ("mlk_div_f32(" if name == "div" else "mlk_math_f32(") in text
    assert "double" not in text
    directory = write_files(tmp_path / "out", result.files)
    feeds = _inputs(name)
    build = "sanitize" if name in ("gelu", "div", "layer_norm", "sqrt") else "O2"
    got = host_outputs(_host(directory, graph.inputs[0].name, build), feeds, np.float32)
    got = got.reshape(feeds.shape)
    with np.errstate(all="ignore"):
        ours = np.stack([run_graph(graph, {graph.inputs[0].name: f})[graph.outputs[0].name]
                         for f in feeds])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = np.stack([session.run(None, {"x": f})[0] for f in feeds])
    # LayerNormalization's + beta cancels: relative to the largest output, as test_c_float
    scale = RTOL * float(np.abs(ours).max()) if name == "layer_norm" else 0.0
    assert _close(got, ours, OURS_ATOL.get(name, scale)), f"{name}: C vs interpreter"
    assert _close(got, onnx_out, ORT_ATOL.get(name, scale)), \
        f"{name}: C vs onnxruntime"
    if name == "exp":
        assert np.isposinf(got.reshape(-1)[5]) and got.reshape(-1)[7] == 0.0
    if name == "div":
        assert np.isinf(got.reshape(-1)[2])


SWEEP_MAIN = """\
#include <stdio.h>
#include <stdlib.h>
#include "microlith_kernels.h"

int main(int argc, char **argv)
{
    static float x[1 << 18], y[6][1 << 18];
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    size_t n, i;
    int32_t op;
    if (argc != 3 || in == NULL || out == NULL) return 2;
    n = fread(x, sizeof(float), 1 << 18, in);
    for (op = 0; op < 6; ++op)
        for (i = 0; i < n; ++i) y[op][i] = op == MLK_FM_ELU ? mlk_fm_expm1(x[i])
                                                           : mlk_math_f(op, x[i]);
    for (op = 0; op < 6; ++op) fwrite(y[op], sizeof(float), n, out);
    fclose(in);
    return fclose(out) == 0 ? 0 : 3;
}
"""


def _reference(x: np.ndarray) -> list[np.ndarray]:
    """float64 references; GELU without cancellation: x erfc(-x / sqrt 2) / 2 and
    x / (1 + exp(-2u)) (= 0.5 x (1 + tanh u))."""
    v = x.astype(np.float64)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    with np.errstate(all="ignore"):
        phi = 0.5 * np.asarray(erfc(-v / math.sqrt(2.0)), np.float64)
        u = math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)
        tanh_form = np.where(np.abs(v) > 20, np.where(v > 0, v, -0.0), v / (1 + np.exp(-2 * u)))
        return [np.exp(v), np.sqrt(v), 1 / np.sqrt(v), np.expm1(v),
                np.where(np.isinf(v), np.maximum(v, -0.0), v * phi), tanh_form]


def test_float_math_scalar_functions_over_the_float_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 1 << 17
    wide = _wide(rng, n // 2, 1e-44, 3e38)
    near = rng.uniform(-120.0, 120.0, n // 2 - 8).astype(np.float32)
    special = np.array([np.inf, -np.inf, np.nan, 1e-45, 1.17549435e-38, 3.4028235e38,
                        -0.3, 0.35], np.float32)
    x = np.concatenate([wide, near, special])
    exe, src = tmp_path / "sweep", tmp_path / "sweep.c"
    src.write_text(SWEEP_MAIN)
    checked(["gcc", *WARNINGS, "-Wdouble-promotion", "-O2", "-I", KERNELS, src, "-o", exe])
    x.tofile(tmp_path / "x.bin")
    checked([exe, tmp_path / "x.bin", tmp_path / "y.bin"])
    got = np.fromfile(tmp_path / "y.bin", np.float32).reshape(6, -1).astype(np.float64)
    # (relative bound where |y| >= 1e-10, relative bound below, absolute on subnormal y)
    bounds = {"exp": (1e-6, 1e-6, 3e-45), "sqrt": (1e-6, 1e-6, 3e-45),
              "rsqrt": (1e-6, 1e-6, 3e-45), "expm1": (1e-6, 1e-6, 3e-45),
              "gelu": (2e-6, 2e-6, 1e-43), "gelu_tanh": (4e-6, 2e-5, 3e-43)}
    for (name, (bound, tail, tiny_abs)), g, ref in zip(bounds.items(), got, _reference(x),
                                                        strict=True):
        with np.errstate(over="ignore"):
            ref32 = ref.astype(np.float32).astype(np.float64)  # +-inf where float overflows
        normal = np.isfinite(ref32) & (np.abs(ref32) >= 1.17549435e-38)
        assert np.array_equal(np.isnan(g), np.isnan(ref32)), name
        assert np.array_equal(g[np.isinf(ref32)], ref32[np.isinf(ref32)]), name
        rel = np.abs(g[normal] - ref[normal]) / np.abs(ref[normal])
        limit = np.where(np.abs(ref[normal]) >= 1e-10, bound, tail)
        assert np.all(rel <= limit), (name, float(rel.max()), float(x[normal][rel.argmax()]))
        tiny = np.isfinite(ref32) & ~normal  # subnormal results: a few of their ulps
        assert np.all(np.abs(g[tiny] - ref[tiny]) <= tiny_abs), name


def _chain(tmp_path: Path) -> Path:
    """Every kernel of the header in one model: GELU, ELU, EXP, SQRT, DIV (by x)."""
    return _model(tmp_path / "chain.onnx", [
        helper.make_node("Gelu", ["x"], ["g"], name="gelu"),
        helper.make_node("Elu", ["g"], ["e"], name="elu"),
        helper.make_node("Exp", ["e"], ["p"], name="exp"),
        helper.make_node("Sqrt", ["p"], ["r"], name="sqrt"),
        helper.make_node("Div", ["r", "x"], ["y"], name="div")])


def test_float_math_needs_no_libm_and_no_double(tmp_path: Path) -> None:
    """Only memcpy/memset/memmove may be undefined (no sqrtf / expf); no f64 on the M4."""
    result = compile_onnx(_chain(tmp_path), CompileOptions(target="c", quiet=True,
                                                           warn=lambda m: None))
    directory = write_files(tmp_path / "out", result.files)
    assert_no_libm_and_no_double(directory, tmp_path)


def test_float_math_on_cortex_m4(tmp_path: Path) -> None:
    from tools.mcu import run as board

    try:
        board.check_toolchain()
    except board.ToolchainMissing as exc:
        pytest.skip(str(exc))
    result = compile_onnx(_chain(tmp_path), CompileOptions(target="c", quiet=True,
                                                           warn=lambda m: None))
    directory = write_files(tmp_path / "out", result.files)
    feeds = _inputs("elu")[:3]
    run = board.build_and_run(directory, [f.tobytes() for f in feeds])
    got = np.stack([np.frombuffer(o, np.float32) for o in run.outputs]).reshape(feeds.shape)
    host = host_outputs(_host(directory, result.graph.inputs[0].name, "O2"), feeds,
                        np.float32).reshape(feeds.shape)
    assert np.isfinite(host).mean() > 0.5  # the chain is not all inf / NaN
    assert _close(got, host)
