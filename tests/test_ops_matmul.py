"""MatMul of two activations (BATCH_MATMUL) in an attention block, end to end
(``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs onnxruntime, int8 in
TFLite-Micro vs our integer interpreter, C vs our interpreter; one-op BATCH_MATMUL models
with random scales and zero points against TFLite-Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(8)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 4, 8)).astype(np.float32)


def test_attention(tmp_path: Path) -> None:
    """softmax(q k^T / sqrt(d)) v with q, k, v projections of x [1, 4, 8]."""
    inits = {f"w{n}": (RNG.standard_normal((8, 8)) * 0.4).astype(np.float32) for n in "qkv"}
    inits["scale"] = np.array(1 / np.sqrt(8), np.float32)
    nodes = [helper.make_node("MatMul", ["x", f"w{n}"], [n], name=f"proj_{n}") for n in "qkv"]
    nodes += [helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
              helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
              helper.make_node("Mul", ["s", "scale"], ["ss"], name="scaled"),
              helper.make_node("Softmax", ["ss"], ["p"], name="softmax", axis=-1),
              helper.make_node("MatMul", ["p", "v"], ["y"], name="mix")]
    path = save_model(tmp_path / "attention.onnx", nodes, (1, 4, 8), inits)
    ops = builtins(check_float(path, _xs(8)).output)
    assert ops.count("BATCH_MATMUL") == 2 and ops.count("FULLY_CONNECTED") == 3, ops
    check_int8(path, _xs(64), _xs(16), tmp_path)


def test_one_op_batch_matmul_matches_tflm() -> None:
    from tflite_micro.python.tflite_micro import runtime

    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.quant.select import batch_matmul_params, run_batch_matmul

    for trial in range(10):
        rng = np.random.default_rng(trial)
        sa, sb, sy = (float(np.float32(rng.uniform(1e-3, 0.1))) for _ in range(3))
        sy *= 8
        za, zb, zy = (int(rng.integers(-50, 50)) for _ in range(3))
        a = rng.integers(-128, 128, (2, 3, 5)).astype(np.int8)
        b = rng.integers(-128, 128, (2, 5, 4)).astype(np.int8)
        tensors = [TflTensor("a", [2, 3, 5], "int8", None, TflQuant([sa], [za])),
                   TflTensor("b", [2, 5, 4], "int8", None, TflQuant([sb], [zb])),
                   TflTensor("y", [2, 3, 4], "int8", None, TflQuant([sy], [zy]))]
        data = serialize_model(TflModel(tensors, [TflOperator("BATCH_MATMUL", [0, 1], [2], {}, 1)],
                                        [0, 1], [2]))
        interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
        interp.set_input(a, 0)
        interp.set_input(b, 1)
        interp.invoke()
        ours = run_batch_matmul(batch_matmul_params(a_scale=sa, a_zp=za, b_scale=sb, b_zp=zb,
                                                    y_scale=sy, y_zp=zy), [a, b])[0]
        assert np.array_equal(interp.get_output(0), ours), trial
