"""Div (by a constant and of two activations), Pow (2, 0.5), Neg, Exp and Elu end to end.

Each model goes through ``tests/ops_harness.py``: float ``.tflite`` in LiteRT vs
onnxruntime, int8 ``.tflite`` in TFLite-Micro vs our integer interpreter (EXP: LiteRT
within 1 LSB, TFLite-Micro has no int8 EXP), C vs our interpreter. One-op DIV / ELU
models with random scales and zero points pin the integer kernels against TFLite-Micro.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError as CompileError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(11)
W = (RNG.standard_normal((6, 16)) * 0.3).astype(np.float32)



def _xs(n: int, shape: tuple[int, ...] = (1, 16), lo: float = -1.0, hi: float = 1.0
        ) -> np.ndarray:
    return RNG.uniform(lo, hi, (n, *shape[1:])).astype(np.float32)


def _model(tmp_path: Path, tail: list, extra: dict | None = None, name: str = "m") -> Path:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"), *tail]
    return save_model(tmp_path / f"{name}.onnx", nodes, (1, 16), {"w": W.T.copy(), **(extra or {})})


def test_div_by_constant_is_mul(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Div", ["h", "d"], ["y"], name="div")],
                  {"d": np.array([2.0, -4.0, 0.5, 3.0, 1.5, 10.0], np.float32)})
    result = check_float(path, _xs(8))
    assert "DIV" not in builtins(result.output) and "MUL" in builtins(result.output)
    check_int8(path, _xs(64), _xs(16), tmp_path)


def test_pow_two_and_half(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Pow", ["h", "two"], ["y"], name="square")],
                  {"two": np.array(2.0, np.float32)}, "pow2")
    assert builtins(check_float(path, _xs(8)).output) == ["FULLY_CONNECTED", "MUL"]
    check_int8(path, _xs(64), _xs(16), tmp_path)
    half = save_model(tmp_path / "sqrt.onnx", [
        helper.make_node("Pow", ["x", "half"], ["y"], name="root")], (1, 16),
        {"half": np.array(0.5, np.float32)})
    assert builtins(check_float(half, _xs(8, lo=0.0)).output) == ["SQRT"]
    with pytest.raises(CompileError, match="no int8 kernel for: root"):
        check_int8(half, _xs(64, lo=0.0), _xs(4, lo=0.0), tmp_path)
    cube = save_model(tmp_path / "cube.onnx", [
        helper.make_node("Pow", ["x", "three"], ["y"], name="cube")], (1, 16),
        {"three": np.array(3.0, np.float32)})
    with pytest.raises(CompileError, match="exponent 3.0 is not supported"):
        check_float(cube, _xs(2))


def test_neg(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Neg", ["h"], ["y"], name="neg")])
    assert builtins(check_float(path, _xs(8)).output)[-1] == "NEG"
    int8 = check_int8(path, _xs(64), _xs(16), tmp_path)
    assert builtins(int8.output)[-1] == "MUL"


def test_exp(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Exp", ["h"], ["y"], name="exp")])
    assert builtins(check_float(path, _xs(8)).output)[-1] == "EXP"
    check_int8(path, _xs(64), _xs(16), tmp_path, tflm=False)


def test_elu(tmp_path: Path) -> None:
    path = _model(tmp_path, [helper.make_node("Elu", ["h"], ["y"], name="elu")])
    assert builtins(check_float(path, _xs(8), reference_kernels=False).output)[-1] == "ELU"
    check_int8(path, _xs(64), _xs(16), tmp_path)
    other = _model(tmp_path, [helper.make_node("Elu", ["h"], ["y"], name="elu", alpha=0.5)],
                   name="elu_half")
    with pytest.raises(CompileError, match="alpha=0.5"):
        check_float(other, _xs(2))


def test_div_of_activations(tmp_path: Path) -> None:
    """y = h / (sigmoid(h) + 1): the divisor stays in [1, 2], away from its zero point."""
    path = _model(tmp_path, [helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
                             helper.make_node("Add", ["s", "one"], ["d"], name="add"),
                             helper.make_node("Div", ["h", "d"], ["y"], name="div")],
                  {"one": np.array(1.0, np.float32)})
    assert "DIV" in builtins(check_float(path, _xs(8)).output)
    int8 = check_int8(path, _xs(64), _xs(16), tmp_path)
    assert "DIV" in builtins(int8.output)


@pytest.mark.parametrize("op", ["DIV", "ELU"])
def test_one_op_matches_tflm(op: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.quant.activation import float_table, run_table
    from microlith.quant.elementwise import div_params, run_div

    for trial in range(12):
        rng = np.random.default_rng(trial)
        sa, sb, sy = (float(np.float32(rng.uniform(1e-3, 0.2))) for _ in range(3))
        za, zb, zy = (int(rng.integers(-100, 100)) for _ in range(3))
        a = rng.integers(-128, 128, (4, 9)).astype(np.int8)
        b = rng.integers(-128, 128, (4, 9)).astype(np.int8)
        b[b == zb] = np.int8(zb + 1)  # TFLite-Micro's division by zero is undefined
        tensor = lambda n, s, z: TflTensor(n, [4, 9], "int8", None, TflQuant([s], [z]))  # noqa: E731
        if op == "DIV":
            tensors, feeds = [tensor("a", sa, za), tensor("b", sb, zb), tensor("y", sy, zy)], [a, b]
            ours = run_div(div_params(a_scale=sa, a_zp=za, b_scale=sb, b_zp=zb, y_scale=sy,
                                      y_zp=zy, activation="NONE"), [a, b])[0]
        else:
            tensors, feeds = [tensor("a", sa, za), tensor("y", sy, zy)], [a]
            ours = run_table(float_table("elu", x_scale=sa, x_zp=za, y_scale=sy, y_zp=zy),
                             [a])[0]
        n = len(feeds)
        data = serialize_model(TflModel(tensors, [TflOperator(op, list(range(n)), [n], {}, 1)],
                                        list(range(n)), [n]))
        interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
        for k, feed in enumerate(feeds):
            interp.set_input(feed, k)
        interp.invoke()
        assert np.array_equal(interp.get_output(0), ours), (op, trial)


@pytest.mark.parametrize("alpha, beta", [(1e38, 0.5), (-3e38, 0.25), (0.2, 1e38)])
def test_hard_sigmoid_huge_parameters(tmp_path: Path, alpha: float, beta: float) -> None:
    """``6 alpha`` (or ``6 beta``) beyond float32 would make RELU6's constant inf and
    ``inf * 0`` NaN: such a HardSigmoid is MUL, ADD(RELU), MINIMUM(1), equal to onnxruntime
    to the last bit (zeros and denormals included); int8 is refused naming the node."""
    path = save_model(tmp_path / "hs.onnx", [
        helper.make_node("HardSigmoid", ["x"], ["y"], name="hs", alpha=alpha, beta=beta)],
        (1, 16))
    xs = _xs(6)
    xs[0, :4] = 0.0
    xs[1, 0] = 1e-39
    with np.errstate(over="raise"):
        result = check_float(path, xs, tol=0)
    assert builtins(result.output) == ["MUL", "ADD", "MINIMUM"]
    with pytest.raises(CompileError, match=r"no int8 kernel for: hs \(HardSigmoid\)"):
        check_int8(path, _xs(8), _xs(2), tmp_path)
