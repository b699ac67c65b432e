"""16x8 quantization (``--quantize int16x8``) of every zoo model, against real runtimes.

* bit-exactness: TFLite-Micro running our 16x8 ``.tflite`` gives the same bytes as our
  integer interpreter for every integer activation tensor (float tensors of ops kept in
  float by ``--fallback float`` within 1e-5 relative: TFLite-Micro's float kernels);
* LiteRT's reference kernels within 1 LSB of TFLite-Micro on >= 99% of the outputs;
* the 16x8 spec in the file: int16 activations with zero point 0, int8 weights, int64
  biases; int16 interface by default, float32 with ``--io-dtype float32``;
* accuracy on the digits (trained models): argmax agreement with float >= int8's (one
  image of 450 of slack), output SQNR above int8's by >= 1.5 dB (measured 2.1 to 5.1 dB:
  the int8 weights bound it -- float with only the weights rounded to int8 per channel
  scores 47.9 / 37.1 / 41.6 dB on lenet / dscnn / resnet8, so the issue's "+20 dB" is out
  of reach of any 16x8 model); size <= 1.1x the int8 file (models without float
  fallbacks).

Downstream of an op kept in float the integer tensors may differ by 1 LSB (TFLite-Micro's
float kernels round differently from numpy's); elsewhere they are identical.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from microlith.interpreter import run_graph
from tests.test_int8_end_to_end import (
    ZOO,
    Int8Model,
    digits,
    float_outputs,
    helper_data,
)
from tools.runtimes import run_litert, run_tflm, tflm_interpreter, top1

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

#: model -> needs --fallback float (HARD_SWISH / HARD_SIGMOID have no 16x8 kernel)
ZOO_MODELS = {"lenet": False, "dscnn": False, "resnet8": False, "helper_matmul": False,
              "mobilenet_v1": False, "mlp_sigmoid": False, "helper_ops": True}
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
N_FAST = 20


def data(name: str) -> tuple[np.ndarray, np.ndarray]:
    return helper_data(name) if name.startswith("helper") else digits(name)[:2]


@functools.cache
def compiled(name: str, mode: str = "int16x8", **options: object) -> Int8Model:
    if mode == "int16x8" and ZOO_MODELS[name]:
        options.setdefault("fallback", "float")
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        quantize=mode, calibration_data=data(name)[0], quiet=True, **options))
    return Int8Model(name, result, parse_model(result.output))


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - got) ** 2))
    return 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / max(noise, 1e-30))


def dequantized(m: Int8Model, out: np.ndarray) -> np.ndarray:
    q = m.out_quant
    return out.astype(np.float64) if q is None else \
        (out.astype(np.float64) - q.zero_point[0]) * q.scale[0]


def check_tensors(m: Int8Model, xs: np.ndarray, lsb: int = 0) -> int:
    """Every activation tensor with an IR value: TFLite-Micro == our interpreter (within
    ``lsb`` for integer tensors)."""
    graph, tfl = m.result.graph, m.tfl
    feeds = m.feed(xs)
    ours = run_graph(graph, {graph.inputs[0].name: feeds}, keep_all=True)
    tensors = {i: t for i, t in enumerate(tfl.tensors) if t.data is None and t.name in ours}
    interp = tflm_interpreter(m.data, preserve_all_tensors=True)
    for k in range(len(xs)):
        interp.set_input(feeds[k:k + 1], 0)
        interp.invoke()
        for i, t in tensors.items():
            got = np.asarray(interp.GetTensor(i, 0)["tensor_data"]).reshape(t.shape)
            want = ours[t.name][k:k + 1].reshape(t.shape)
            assert got.dtype == want.dtype, (m.name, t.name, got.dtype, want.dtype)
            if got.dtype == np.float32:
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
            else:
                diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
                assert int(diff.max(initial=0)) <= lsb, \
                    f"{m.name}: {t.name!r} image {k}: {int(np.sum(diff > 0))} differ"
    return len(tensors)


@pytest.mark.parametrize("name", list(ZOO_MODELS))
def test_16x8_interpreter_bit_exact_with_tflm(name: str) -> None:
    lsb = 1 if ZOO_MODELS[name] else 0
    assert check_tensors(compiled(name), data(name)[1][:N_FAST], lsb) >= 3


@pytest.mark.parametrize("name", list(ZOO_MODELS))
def test_16x8_litert_within_one_lsb(name: str, record_property) -> None:
    m = compiled(name)
    feeds = m.feed(data(name)[1])
    ref, got = run_tflm(m.data, feeds), run_litert(m.data, feeds)
    assert ref.dtype == got.dtype
    if ref.dtype == np.float32:  # a float (fallback) output: within 1 LSB of its input
        np.testing.assert_allclose(got, ref, atol=1e-3)
        return
    diff = np.abs(got.astype(np.int64) - ref.astype(np.int64))
    within = float(np.mean(diff <= 1))
    record_property("litert_within_1lsb", within)
    assert within >= 0.99, f"{name}: {within:.4%} within 1 LSB (max {int(diff.max())})"


@pytest.mark.parametrize("name", ["lenet", "dscnn", "resnet8"])
def test_16x8_spec_in_the_file(name: str) -> None:
    tfl = compiled(name).tfl
    ins, outs = tfl.tensors[tfl.inputs[0]], tfl.tensors[tfl.outputs[0]]
    assert ins.dtype == outs.dtype == "int16" and ins.quant.zero_point[0] == 0
    convs = [op for op in tfl.operators if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D",
                                                     "FULLY_CONNECTED")]
    assert convs
    for op in convs:
        x, w = tfl.tensors[op.inputs[0]], tfl.tensors[op.inputs[1]]
        assert x.dtype == "int16" and w.dtype == "int8" and set(x.quant.zero_point) == {0}
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            assert tfl.tensors[op.inputs[2]].dtype == "int64"


def test_16x8_float_io() -> None:
    m = compiled("lenet", io_dtype="float32")
    ops = [op.op for op in m.tfl.operators]
    assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
    assert ops[1:-1] == [op.op for op in compiled("lenet").tfl.operators]
    xs = data("lenet")[1][:50]
    got = run_tflm(m.data, m.feed(xs))
    base = compiled("lenet")
    want = dequantized(base, run_tflm(base.data, base.feed(xs)))
    assert float(np.abs(got - want).max()) <= base.out_quant.scale[0] + 1e-6


@pytest.mark.parametrize("name", TRAINED)
def test_16x8_accuracy_beats_int8(name: str) -> None:
    xs, labels = digits(name)[1], digits(name)[2]
    ref = float_outputs(name)
    m16, m8 = compiled(name), compiled(name, "int8")
    out16 = dequantized(m16, run_tflm(m16.data, m16.feed(xs)))
    out8 = dequantized(m8, run_tflm(m8.data, m8.feed(xs)))
    agree16, agree8 = (float(np.mean(top1(ref) == top1(o))) for o in (out16, out8))
    s16, s8 = sqnr_db(ref, out16), sqnr_db(ref, out8)
    summary = (f"{name}: agreement 16x8 {agree16:.4f} int8 {agree8:.4f}; SQNR 16x8 {s16:.1f} dB "
               f"int8 {s8:.1f} dB; top-1 16x8 {np.mean(top1(out16) == labels):.4f}")
    assert agree16 >= agree8 - 1.5 / len(xs), summary
    assert s16 >= s8 + 1.5, summary
    if not ZOO_MODELS[name]:  # float fallbacks add DEQUANTIZE/QUANTIZE pairs (mlp: 1.11x)
        assert len(m16.data) <= 1.1 * len(m8.data), (len(m16.data), len(m8.data))


def test_16x8_refuses_ops_without_kernel_unless_fallback() -> None:
    from microlith.diagnostics import MicrolithError

    with pytest.raises(MicrolithError, match="no 16x8 kernel for"):
        compile_onnx(ZOO / "helper_ops.onnx", CompileOptions(
            quantize="int16x8", calibration_data=data("helper_ops")[0], quiet=True))


def test_16x8_is_deterministic() -> None:
    a = compile_onnx(ZOO / "dscnn.onnx", CompileOptions(
        quantize="int16x8", calibration_data=data("dscnn")[0], quiet=True)).output
    assert a == compiled("dscnn").data


def test_16x8_calibration_is_16_bit() -> None:
    """Entropy / mse sized for int16 land on (or next to) min-max; at int8 they clip."""
    m = compiled("dscnn", calibration_method="entropy")
    assert "calibrate{method=entropy,bits=16}" in m.result.pipeline
    ranges = {v.name: v.meta.get("calibration_range") for v in m.result.graph.values.values()}
    base = {v.name: v.meta.get("calibration_range")
            for v in compiled("dscnn").result.graph.values.values()}
    common = [k for k, r in ranges.items() if r is not None and base.get(k) is not None]
    assert common
    for k in common:
        bound, ref = max(map(abs, ranges[k])), max(map(abs, base[k]))
        assert bound >= 0.97 * ref, (k, ranges[k], base[k])


def test_calibrate_bits_option_is_checked() -> None:
    from microlith.pipeline import parse_pipeline

    with pytest.raises(Exception, match="bits=12 must be 8 or 16"):
        parse_pipeline("calibrate{bits=12}")


@pytest.mark.slow
def test_16x8_recovers_an_offset_regression() -> None:
    """The benchmark's regression head: int8's output step (~1.1 units, the range holds 0)
    loses; 16x8 stays within 2x of float's error (measured 0.30 vs 0.011 vs 0.0057)."""
    pytest.importorskip("torch")
    from tools.bench_int16 import regression_row

    row = regression_row()
    assert row["int8_rmse"] > 10 * row["16x8_rmse"], row
    assert row["16x8_rmse"] < 3 * row["float_rmse"] + 0.01, row
