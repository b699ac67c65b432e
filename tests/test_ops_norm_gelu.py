"""LayerNormalization (decomposed, RSQRT; float and int8 TFLite-Micro-exact), Gelu (GELU; int8 as a
float table: LiteRT within 1 LSB, TFLite-Micro has no GELU; C), and PyTorch's erf form of
GELU folded by ``fuse-gelu`` -- end to end (``tests/ops_harness.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(12)
W = (RNG.standard_normal((8, 8)) * 0.6).astype(np.float32)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 3, 8)).astype(np.float32)


def _model(tmp_path: Path, tail: list, extra: dict | None = None, name: str = "m",
           opset: int = 17) -> Path:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"), *tail]
    return save_model(tmp_path / f"{name}.onnx", nodes, (1, 3, 8), {"w": W, **(extra or {})},
                      opset=opset)


def test_layer_norm(tmp_path: Path) -> None:
    extra = {"g": RNG.uniform(0.5, 1.5, 8).astype(np.float32),
             "b": RNG.uniform(-0.5, 0.5, 8).astype(np.float32)}
    path = _model(tmp_path, [helper.make_node("LayerNormalization", ["h", "g", "b"], ["y"],
                                              name="ln", axis=-1, epsilon=1e-5)], extra)
    ops = builtins(check_float(path, _xs(8)).output)
    assert ops == ["FULLY_CONNECTED", "MEAN", "SUB", "MUL", "MEAN", "ADD", "RSQRT", "MUL",
                   "MUL", "ADD"], ops
    # int8: every piece is a TFLite-Micro int8 kernel, RSQRT included (bytes == ours == C)
    _xs(18)  # the module RNG's later draws stay as before (the GELU tests' data)
    local = np.random.default_rng(1)
    int8 = check_int8(path, local.uniform(-1, 1, (64, 3, 8)).astype(np.float32),
                      local.uniform(-1, 1, (16, 3, 8)).astype(np.float32), tmp_path)
    assert "RSQRT" in builtins(int8.output)
    assert "DEQUANTIZE" not in builtins(int8.output)


def test_rsqrt_one_op_matches_tflm() -> None:
    """int8 RSQRT on all 256 inputs against TFLite-Micro, random scales and zero points
    (inputs below the zero point are refused by TFLite-Micro at run time: left out)."""
    from tflite_micro.python.tflite_micro import runtime

    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.quant.rsqrt import rsqrt_params, run_rsqrt

    for trial in range(16):
        rng = np.random.default_rng(trial)
        sx, sy = (float(np.float32(10.0 ** rng.uniform(-4, 0))) for _ in range(2))
        zx, zy = int(rng.integers(-128, 100)), int(rng.integers(-128, 127))
        x = np.arange(zx, 128, dtype=np.int8)
        tensors = [TflTensor(n, [x.size], "int8", None, TflQuant([s], [z]))
                   for n, s, z in (("x", sx, zx), ("y", sy, zy))]
        data = serialize_model(TflModel(tensors, [TflOperator("RSQRT", [0], [1], {}, 2)],
                                        [0], [1]))
        interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
        interp.set_input(x, 0)
        interp.invoke()
        ours = run_rsqrt(rsqrt_params(x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy), [x])[0]
        assert np.array_equal(interp.get_output(0), ours), trial


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(tmp_path: Path, approximate: str) -> None:
    path = _model(tmp_path, [helper.make_node("Gelu", ["h"], ["y"], name="gelu",
                                              approximate=approximate)], opset=20)
    assert builtins(check_float(path, _xs(8)).output)[-1] == "GELU"
    check_int8(path, _xs(64), _xs(16), tmp_path, tflm=False)


def test_gelu_reference_is_accurate_in_the_far_left_tail() -> None:
    """x Phi(x) at x = -10 is -10 Phi(-10) = -7.6198530241605e-23 (Phi(-10) from the normal
    table); the form 0.5 x (1 + erf(x / sqrt 2)) cancels to 0 there. The tanh form
    x / (1 + exp(-2u)) is checked against its own definition where that does not cancel."""
    from microlith.ops.activation import gelu
    far = gelu(np.array([-10.0]), approximate=False)[0]
    assert far == pytest.approx(-7.6198530241605e-23, rel=1e-9)
    xs = np.linspace(-4, 4, 81)
    u = math.sqrt(2 / math.pi) * (xs + 0.044715 * xs ** 3)
    np.testing.assert_allclose(gelu(xs, approximate=True), 0.5 * xs * (1 + np.tanh(u)),
                               rtol=1e-12, atol=1e-15)
    assert gelu(np.array([-10.0]), approximate=True)[0] < 0


@pytest.mark.parametrize("half_first", [False, True])
def test_erf_gelu_is_fused(tmp_path: Path, half_first: bool) -> None:
    """torch.nn.GELU as the pre-opset-20 exporters write it."""
    extra = {"sqrt2": np.array(math.sqrt(2), np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Div", ["h", "sqrt2"], ["a"], name="div"),
             helper.make_node("Erf", ["a"], ["e"], name="erf"),
             helper.make_node("Add", ["e", "one"], ["p"], name="add")]
    if half_first:
        nodes += [helper.make_node("Mul", ["h", "half"], ["hh"], name="half"),
                  helper.make_node("Mul", ["hh", "p"], ["y"], name="mul")]
    else:
        nodes += [helper.make_node("Mul", ["h", "p"], ["m"], name="mul"),
                  helper.make_node("Mul", ["m", "half"], ["y"], name="half")]
    path = _model(tmp_path, nodes, extra, opset=13)
    assert builtins(check_float(path, _xs(8)).output) == ["FULLY_CONNECTED", "GELU"]
    check_int8(path, _xs(64), _xs(16), tmp_path, tflm=False)


def test_lone_erf_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Erf", ["h"], ["y"], name="erf")], opset=13)
    with pytest.raises(MicrolithError, match="Erf"):
        check_float(path, _xs(2))


@pytest.mark.parametrize("op, fn, options", [("EXP", "exp", {}),
                                             ("GELU", "gelu", {"approximate": False}),
                                             ("GELU", "gelu_tanh", {"approximate": True})])
def test_one_op_tables_match_litert(op: str, fn: str, options: dict) -> None:
    """All 256 int8 inputs, random scales: our EXP / GELU tables are LiteRT's (TFLite-Micro
    has neither kernel)."""
    from ai_edge_litert.interpreter import Interpreter

    from microlith.backends.tflite.versions import default_op_version
    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.quant.activation import float_table, run_table

    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    for trial in range(10):
        rng = np.random.default_rng(trial)
        sx, sy = (float(np.float32(rng.uniform(lo, hi))) for lo, hi in ((5e-3, 0.05), (0.01, 0.2)))
        zx, zy = int(rng.integers(-100, 100)), int(rng.integers(-128, 0))
        tensors = [TflTensor("x", [1, 256], "int8", None, TflQuant([sx], [zx])),
                   TflTensor("y", [1, 256], "int8", None, TflQuant([sy], [zy]))]
        version = default_op_version(op, ["int8"], ["int8"], options=options)
        data = serialize_model(TflModel(tensors, [TflOperator(op, [0], [1], options, version)],
                                        [0], [1]))
        interp = Interpreter(model_content=data)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        got = interp.get_tensor(interp.get_output_details()[0]["index"])
        ours = run_table(float_table(fn, x_scale=sx, x_zp=zx, y_scale=sy, y_zp=zy), [x])[0]
        assert np.array_equal(got, ours), (op, fn, trial)
