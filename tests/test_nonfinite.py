"""Non-finite and huge constants (issue classes 9 and 10): onnxruntime's maths or a clear
refusal, never silently different maths; one ``warning:`` line instead of numpy noise.

* ``Clip(min=0, max=-inf)``: every output is -inf (the upper bound is not dropped);
* Gemm ``alpha`` = 3.4e38: onnxruntime scales the product, so we do too (not the
  weights, where 3.4e38 * B overflows); alpha = inf is refused at import; with
  ``beta`` = 0, C is not read (Inf in it does not become NaN);
* BatchNormalization whose scale overflows float32 is refused; one whose folded weights
  would overflow stays a multiply-add (onnxruntime's unfused maths); a negative variance
  is refused naming the node and channel -- no ``RuntimeWarning`` from ``np.sqrt``;
* a constant division by zero folds to Inf with one warning naming the node;
* calibration data beyond float32's range is refused naming the file and the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from microlith.formats.tflite.flatbuffer import parse_model
from tests.badinput import assert_one_error, cli_run, model, save, vi
from tools.runtimes import litert_interpreter, litert_invoke

X2 = [vi("x", [1, 4])]


def _ort(path: Path, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimize:  # the ONNX maths as written (no Conv+BN fusion of onnxruntime's own)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _compile(tmp_path: Path, proto: onnx.ModelProto) -> tuple[Path, bytes, list[str]]:
    path = save(proto, tmp_path / "m.onnx")
    run = cli_run("compile", "m.onnx", "-o", "m.tflite", "-q", cwd=tmp_path)
    assert run.status == 0, run.err
    assert run.runtime_warnings == [], run.runtime_warnings
    return path, (tmp_path / "m.tflite").read_bytes(), run.lines


def test_clip_max_minus_inf_is_not_a_relu(tmp_path: Path) -> None:
    proto = model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")], X2,
                  [vi("y", [1, 4])], {"lo": np.float32(0), "hi": np.float32(-np.inf)})
    path, tflite, _ = _compile(tmp_path, proto)
    assert [op.op for op in parse_model(tflite).operators] == ["MAXIMUM", "MINIMUM"]
    x = np.array([[-1.0, 0.0, 0.5, 3.0]], np.float32)
    got = litert_invoke(litert_interpreter(tflite), x)
    np.testing.assert_array_equal(got, _ort(path, x))
    assert (got == -np.inf).all()


def _gemm_tanh(alpha: float) -> onnx.ModelProto:
    weight = np.random.default_rng(3).uniform(-2, 2, (4, 6)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["g"], name="fc", alpha=alpha),
             helper.make_node("Tanh", ["g"], ["y"], name="tanh")]
    return model(nodes, X2, [vi("y", [1, 6])], {"w": weight,
                                                 "c": np.full(6, 0.5, np.float32)})


def test_gemm_huge_alpha_scales_the_product_like_onnxruntime(tmp_path: Path) -> None:
    path, tflite, _ = _compile(tmp_path, _gemm_tanh(3.4e38))
    ops = [op.op for op in parse_model(tflite).operators]
    assert ops == ["FULLY_CONNECTED", "MUL", "ADD", "TANH"], ops
    interp = litert_interpreter(tflite)
    for seed in range(5):
        x = np.random.default_rng(seed).uniform(-1e-38, 1e-38, (1, 4)).astype(np.float32)
        x[0, seed % 4] = 0.0
        want = _ort(path, x)
        got = litert_invoke(interp, x)
        assert np.isfinite(want).all()
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_gemm_ordinary_alpha_still_folds(tmp_path: Path) -> None:
    path, tflite, _ = _compile(tmp_path, _gemm_tanh(0.5))
    assert [op.op for op in parse_model(tflite).operators] == ["FULLY_CONNECTED", "TANH"]
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
    np.testing.assert_allclose(litert_invoke(litert_interpreter(tflite), x), _ort(path, x),
                               atol=1e-6)


def test_gemm_beta_zero_does_not_read_c(tmp_path: Path) -> None:
    """onnxruntime (BLAS) ignores C when beta is 0: Inf in C must not become 0 * Inf = NaN."""
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["y"], name="fc", beta=0.0)]
    c = np.array([np.inf, 1.0, -np.inf], np.float32)
    proto = model(nodes, X2, [vi("y", [1, 3])], {"w": np.ones((4, 3), np.float32), "c": c})
    path, tflite, lines = _compile(tmp_path, proto)
    assert len(lines) == 1 and "'c'" in lines[0], lines  # the import warning, nothing else
    x = np.arange(4, dtype=np.float32)[None]
    got = litert_invoke(litert_interpreter(tflite), x)
    np.testing.assert_array_equal(got, _ort(path, x))
    assert np.isfinite(got).all()


def _conv_bn(gamma: np.ndarray, var: np.ndarray, weight: np.ndarray,
             doubled: bool = False) -> onnx.ModelProto:
    """Conv (on x, or on concat(x, x)) -> BatchNormalization, one output channel."""
    nodes = [helper.make_node("Conv", ["xx" if doubled else "x", "w"], ["c"], name="conv"),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"],
                              name="bn")]
    if doubled:
        nodes.insert(0, helper.make_node("Concat", ["x", "x"], ["xx"], name="cat", axis=1))
    inits = {"w": weight, "g": gamma, "b": np.zeros(1, np.float32),
             "m": np.zeros(1, np.float32), "v": var}
    return model(nodes, [vi("x", [1, 1, 4, 4])], [vi("y", None)], inits)


def test_batchnorm_scale_overflow_is_refused(tmp_path: Path) -> None:
    proto = _conv_bn(np.full(1, 3e38, np.float32), np.zeros(1, np.float32),
                     np.ones((1, 1, 3, 3), np.float32))
    save(proto, tmp_path / "m.onnx")
    assert_one_error(cli_run("compile", "m.onnx", "-o", "m.tflite", cwd=tmp_path),
                     "fold-batchnorm", "'bn'", "overflows float32")


def test_batchnorm_fold_overflow_keeps_the_multiply_add(tmp_path: Path) -> None:
    """W * s overflows (1e10 * 1e29) although conv(x, W) * s does not: the two halves of
    the weights cancel on concat(x, x). Folding would give inf - inf = NaN."""
    weight = np.zeros((1, 2, 3, 3), np.float32)
    weight[0, 0, 1, 1], weight[0, 1, 1, 1] = 1e10, -1e10
    weight[0, 0, 0, 0] = 1.0
    proto = _conv_bn(np.full(1, 1e29, np.float32), np.ones(1, np.float32), weight,
                     doubled=True)
    path, tflite, _ = _compile(tmp_path, proto)
    ops = [op.op for op in parse_model(tflite).operators]
    assert "MUL" in ops and "ADD" in ops, ops
    x = np.random.default_rng(1).uniform(0, 1e-30, (1, 1, 4, 4)).astype(np.float32)
    want = _ort(path, x, optimize=False)
    got = litert_invoke(litert_interpreter(tflite), x.transpose(0, 2, 3, 1))
    assert np.isfinite(want).all() and np.isfinite(got).all()
    np.testing.assert_allclose(got, want.transpose(0, 2, 3, 1), rtol=1e-5)


def test_batchnorm_negative_variance_is_refused_without_numpy_noise(tmp_path: Path) -> None:
    proto = _conv_bn(np.ones(1, np.float32), np.full(1, -5, np.float32),
                     np.ones((1, 1, 3, 3), np.float32))
    save(proto, tmp_path / "m.onnx")
    assert_one_error(cli_run("compile", "m.onnx", "-o", "m.tflite", cwd=tmp_path),
                     "'bn'", "channel 0", "variance -5")


def test_constant_division_by_zero_is_one_warning(tmp_path: Path) -> None:
    nodes = [helper.make_node("Div", ["a", "z"], ["q"], name="div"),
             helper.make_node("Add", ["x", "q"], ["y"], name="add")]
    proto = model(nodes, X2, [vi("y", [1, 4])], {"a": np.ones(4, np.float32),
                                                  "z": np.array([0, 1, 0, 1], np.float32)})
    _, tflite, lines = _compile(tmp_path, proto)
    assert len(lines) == 1 and lines[0].startswith("warning: "), lines
    assert "'div'" in lines[0] and "2 NaN/Inf" in lines[0]


def test_nan_weights_through_batchnorm_folding_warn_once(tmp_path: Path) -> None:
    """A signalling NaN (a flipped bit in a weight) makes numpy warn on every cast."""
    weight = np.ones((1, 1, 3, 3), np.float32)
    weight.view(np.uint32)[0, 0, 0, 0] = 0x7FA00000  # signalling NaN
    _, _, lines = _compile(tmp_path, _conv_bn(np.ones(1, np.float32), np.ones(1, np.float32),
                                              weight))
    assert len(lines) == 1 and "'w'" in lines[0] and "NaN/Inf" in lines[0], lines


@pytest.mark.parametrize("value, dtype", [(1e39, np.float64), (-4e38, np.float64)])
def test_calibration_data_beyond_float32_is_refused(tmp_path: Path, value: float,
                                                    dtype: type) -> None:
    data = np.zeros((4, 1, 4), dtype)
    data[2, 0, 1] = value
    np.savez(tmp_path / "calib.npz", x=data)
    proto = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], X2, [vi("y", [1, 4])])
    save(proto, tmp_path / "m.onnx")
    run = cli_run("compile", "m.onnx", "-o", "m.tflite", "--quantize", "int8",
                  "--calibration-data", "calib.npz", cwd=tmp_path)
    assert_one_error(run, "calib.npz", "'x'", "sample 2", "float32")
