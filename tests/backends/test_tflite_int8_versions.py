"""The TFLite flatbuffer layer with int8: a quantized model in TFLite-Micro and LiteRT,
and the op versions ``default_op_version`` gives (accepted by both runtimes).
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.backends.tflite.versions import default_op_version
from microlith.formats.tflite.flatbuffer import (
    TflModel,
    TflOperator,
    TflQuant,
    TflTensor,
    serialize_model,
)
from tests.backends.tflite_models import (
    Interpreter,
    OpResolverType,
    const,
    run_litert,
    run_tflm,
)

# --------------------------------------------------------------------------- int8


def quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def build_int8_fc_model(rng: np.random.Generator):
    s_in, zp_in, s_w, s_out, zp_out = 0.02, 3, 0.01, 0.05, -5
    w = rng.integers(-127, 128, size=(8, 16)).astype(np.int8)
    bias = rng.integers(-500, 500, size=8).astype(np.int32)
    tensors = [
        TflTensor("x", [1, 16], "float32"),
        TflTensor("xq", [1, 16], "int8", quant=TflQuant([s_in], [zp_in])),
        const("w", w, TflQuant([s_w], [0])),
        const("bias", bias, TflQuant([np.float32(s_in * s_w).item()], [0])),
        TflTensor("yq", [1, 8], "int8", quant=TflQuant([s_out], [zp_out])),
        TflTensor("y", [1, 8], "float32"),
    ]
    dt = [t.dtype for t in tensors]
    operators = [
        TflOperator("QUANTIZE", [0], [1], version=default_op_version("QUANTIZE", [dt[0]], [dt[1]])),
        TflOperator(
            "FULLY_CONNECTED",
            [1, 2, 3],
            [4],
            version=default_op_version("FULLY_CONNECTED", dt[1:4]),
        ),
        TflOperator(
            "DEQUANTIZE", [4], [5], version=default_op_version("DEQUANTIZE", [dt[4]], [dt[5]])
        ),
    ]
    assert [op.version for op in operators] == [1, 4, 2]

    def reference(x):
        xq = quantize(x, s_in, zp_in).astype(np.int64)
        acc = (xq - zp_in) @ w.T.astype(np.int64) + bias
        yq = np.clip(np.round(acc * (s_in * s_w / s_out)) + zp_out, -128, 127)
        return (yq - zp_out) * s_out

    return TflModel(tensors, operators, inputs=[0], outputs=[5]), reference, s_out


def test_int8_model_runs_in_tflm_and_litert():
    rng = np.random.default_rng(7)
    model, reference, s_out = build_int8_fc_model(rng)
    data = serialize_model(model)
    x = rng.uniform(-2, 2, size=(1, 16)).astype(np.float32)
    (y_tflm,) = run_tflm(data, [x])
    (y_litert,) = run_litert(data, [x], OpResolverType.BUILTIN)
    (y_ref,) = run_litert(data, [x], OpResolverType.BUILTIN_REF)
    np.testing.assert_allclose(y_tflm, reference(x), atol=s_out * 1.01, rtol=0)
    np.testing.assert_array_equal(y_tflm, y_litert)
    np.testing.assert_array_equal(y_tflm, y_ref)


# --------------------------------------------------------------------------- versions


def test_default_op_versions():
    f, i8 = "float32", "int8"
    assert default_op_version("CONV_2D", [f, f, f]) == 1
    assert default_op_version("CONV_2D", [i8, i8, "int32"]) == 3
    assert default_op_version("CONV_2D", [f, i8, f]) == 2
    assert default_op_version("DEPTHWISE_CONV_2D", [i8, i8, "int32"]) == 3
    assert default_op_version("DEPTHWISE_CONV_2D", [f, f, f], options={"dilation_w_factor": 2}) == 2
    assert default_op_version("FULLY_CONNECTED", [f, f, f]) == 1
    assert default_op_version("FULLY_CONNECTED", [i8, i8, "int32"]) == 4
    assert default_op_version("FULLY_CONNECTED", [i8, i8, None]) == 4
    assert default_op_version("FULLY_CONNECTED", [i8, i8]) == 6
    assert default_op_version("FULLY_CONNECTED", [f, f, f], options={"keep_num_dims": True}) == 5
    assert default_op_version("TRANSPOSE_CONV", ["int32", i8, i8, "int32"]) == 3
    assert default_op_version("TRANSPOSE_CONV", ["int32", f, f]) == 1
    assert default_op_version("QUANTIZE", [f], [i8]) == 1
    assert default_op_version("QUANTIZE", [f], ["int16"]) == 2
    assert default_op_version("DEQUANTIZE", [i8], [f]) == 2
    assert default_op_version("SPLIT", ["int32", i8]) == 2
    assert default_op_version("TRANSPOSE", [i8, "int32"], input_ranks=[5, 1]) == 4
    assert default_op_version("GATHER", [f, "int32"], options={"batch_dims": 1}) == 5
    for op in ("SOFTMAX", "MEAN", "REDUCE_MAX", "RELU6", "ADD", "AVERAGE_POOL_2D", "TANH"):
        assert default_op_version(op, [f, f]) == 1
        assert default_op_version(op, [i8, i8]) == 2
    for op in ("HARD_SWISH", "RESHAPE", "PRELU", "LEAKY_RELU", "EXPAND_DIMS", "NEG"):
        assert default_op_version(op, [i8, i8]) == 1
    with pytest.raises(ValueError, match="FANCY"):
        default_op_version("FANCY", [f])


def _q(name: str, shape: list[int], scale: float = 0.05, zp: int = 0) -> TflTensor:
    return TflTensor(name, shape, "int8", quant=TflQuant([scale], [zp]))


def _int8_single_op(op: str) -> tuple[TflModel, list[str]]:
    """A one-operator int8 model exercising ``op`` (input tensors first)."""
    x = _q("x", [1, 4, 4, 8])

    def i32(name: str, value) -> TflTensor:
        return const(name, np.array(value, np.int32))

    per_chan = TflQuant([0.01 * (k + 1) for k in range(8)], [0] * 8, 0)
    opts: dict = {}
    if op in ("CONV_2D", "TRANSPOSE_CONV"):
        w = const("w", np.ones((8, 3, 3, 8), np.int8), per_chan)
        b = const("b", np.zeros(8, np.int32), TflQuant([5e-4 * (k + 1) for k in range(8)], [0] * 8))
        if op == "CONV_2D":
            ins, outs, opts = [x, w, b], [_q("y", [1, 4, 4, 8])], {"stride_w": 1, "stride_h": 1}
        else:
            shape = i32("shape", [1, 8, 8, 8])
            ins, outs = [shape, w, x, b], [_q("y", [1, 8, 8, 8])]
            opts = {"stride_w": 2, "stride_h": 2}
    elif op == "DEPTHWISE_CONV_2D":
        w = const("w", np.ones((1, 3, 3, 8), np.int8), TflQuant(per_chan.scale, [0] * 8, 3))
        b = const("b", np.zeros(8, np.int32), TflQuant([5e-4 * (k + 1) for k in range(8)], [0] * 8))
        ins, outs = [x, w, b], [_q("y", [1, 4, 4, 8])]
        opts = {"stride_w": 1, "stride_h": 1, "depth_multiplier": 1}
    elif op == "FULLY_CONNECTED":
        w = const("w", np.ones((4, 8), np.int8), TflQuant([0.01], [0]))
        b = const("b", np.zeros(4, np.int32), TflQuant([5e-4], [0]))
        ins, outs = [_q("x", [1, 8]), w, b], [_q("y", [1, 4])]
    elif op in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM"):
        ins, outs = [x, _q("x2", [1, 4, 4, 8], 0.04, 2)], [_q("y", [1, 4, 4, 8], 0.1, 1)]
    elif op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        ins, outs = [x], [_q("y", [1, 2, 2, 8])]
        opts = {"stride_w": 2, "stride_h": 2, "filter_width": 2, "filter_height": 2}
    elif op in ("MEAN", "SUM", "REDUCE_MAX"):
        ins, outs, opts = [x, i32("axes", [1, 2])], [_q("y", [1, 1, 1, 8])], {"keep_dims": True}
    elif op == "RESHAPE":
        ins, outs, opts = [x, i32("s", [1, 128])], [_q("y", [1, 128])], {"new_shape": [1, 128]}
    elif op == "SQUEEZE":
        ins, outs, opts = [_q("x", [1, 1, 1, 8])], [_q("y", [1, 8])], {"squeeze_dims": [1, 2]}
    elif op == "CONCATENATION":
        ins, outs, opts = [x, _q("x2", [1, 4, 4, 8])], [_q("y", [1, 4, 4, 16])], {"axis": 3}
    elif op in ("SOFTMAX", "LOGISTIC"):
        ins, outs = [_q("x", [1, 8])], [_q("y", [1, 8], 1 / 256, -128)]
        opts = {"beta": 1.0} if op == "SOFTMAX" else {}
    elif op == "TANH":
        ins, outs = [_q("x", [1, 8])], [_q("y", [1, 8], 1 / 128, 0)]
    elif op in ("PAD", "PADV2"):
        ins = [x, i32("pads", [[0, 0], [1, 1], [1, 1], [0, 0]])]
        if op == "PADV2":
            ins.append(const("value", np.array(0, np.int8), TflQuant([0.05], [0])))
        outs = [_q("y", [1, 6, 6, 8])]
    elif op == "TRANSPOSE":
        ins, outs = [x, i32("perm", [0, 2, 1, 3])], [_q("y", [1, 4, 4, 8])]
    elif op == "QUANTIZE":
        ins, outs = [TflTensor("x", [1, 8], "float32")], [_q("y", [1, 8])]
    elif op == "DEQUANTIZE":
        ins, outs = [_q("x", [1, 8])], [TflTensor("y", [1, 8], "float32")]
    elif op == "GATHER":
        ins, outs, opts = [x, i32("idx", [0, 3])], [_q("y", [1, 2, 4, 8])], {"axis": 1}
    elif op == "EXPAND_DIMS":
        ins, outs = [_q("x", [1, 8]), i32("axis", 1)], [_q("y", [1, 1, 8])]
    elif op == "STRIDED_SLICE":
        ins = [x, i32("begin", [0, 0, 0, 0]), i32("end", [1, 2, 4, 8]), i32("st", [1, 1, 1, 1])]
        outs = [_q("y", [1, 2, 4, 8])]
    elif op == "SPLIT":
        ins, outs = [i32("axis", 3), x], [_q("y0", [1, 4, 4, 4]), _q("y1", [1, 4, 4, 4])]
        opts = {"num_splits": 2}
    elif op == "PRELU":
        alpha = const("alpha", np.full((1, 1, 8), 20, np.int8), TflQuant([0.01], [0]))
        ins, outs = [x, alpha], [_q("y", [1, 4, 4, 8])]
    else:  # elementwise unary
        ins, outs = [x], [_q("y", [1, 4, 4, 8])]
        opts = {"alpha": 0.2} if op == "LEAKY_RELU" else {}
    tensors = ins + outs
    n_in = len(ins)
    dtypes = [t.dtype for t in tensors]
    version = default_op_version(
        op, dtypes[:n_in], dtypes[n_in:], options=opts, input_ranks=[len(t.shape) for t in ins]
    )
    operator = TflOperator(op, list(range(n_in)), list(range(n_in, len(tensors))), opts, version)
    inputs = [k for k, t in enumerate(ins) if t.data is None]
    model = TflModel(tensors, [operator], inputs=inputs, outputs=operator.outputs)
    return model, [dtypes[k] for k in inputs]


INT8_OPS = (
    "CONV_2D DEPTHWISE_CONV_2D TRANSPOSE_CONV FULLY_CONNECTED ADD SUB MUL AVERAGE_POOL_2D "
    "MAX_POOL_2D MEAN SUM REDUCE_MAX RESHAPE SQUEEZE CONCATENATION SOFTMAX LEAKY_RELU PAD PADV2 "
    "TRANSPOSE LOGISTIC TANH HARD_SWISH RELU RELU6 RELU_N1_TO_1 QUANTIZE DEQUANTIZE MAXIMUM "
    "MINIMUM GATHER EXPAND_DIMS STRIDED_SLICE SPLIT PRELU EXP SQRT RSQRT ABS NEG"
).split()
# TFLite-Micro has no RELU_N1_TO_1 kernel and no int8 EXP / SQRT / NEG kernels.
TFLM_INT8_UNSUPPORTED = {"RELU_N1_TO_1", "EXP", "SQRT", "NEG"}


@pytest.mark.parametrize("op", INT8_OPS)
def test_int8_ops_load_and_run(op):
    """The converter's int8 versions are accepted by LiteRT's resolvers; TFLM agrees."""
    model, input_dtypes = _int8_single_op(op)
    data = serialize_model(model)
    rng = np.random.default_rng(3)
    inputs = []
    for k, dtype in zip(model.inputs, input_dtypes, strict=True):
        shape = model.tensors[k].shape
        if dtype == "float32":
            inputs.append(rng.uniform(-1, 1, shape).astype(np.float32))
        else:
            inputs.append(rng.integers(1, 100, shape).astype(np.int8))
    shapes = [tuple(model.tensors[k].shape) for k in model.outputs]
    results = {}
    for resolver in (OpResolverType.BUILTIN, OpResolverType.BUILTIN_REF):
        results[resolver] = run_litert(data, inputs, resolver)
        assert [o.shape for o in results[resolver]] == shapes
    if op not in TFLM_INT8_UNSUPPORTED:
        tflm = run_tflm(data, inputs, len(model.outputs))
        for got, want in zip(tflm, results[OpResolverType.BUILTIN], strict=True):
            assert got.shape == want.shape and got.dtype == want.dtype
            atol = 1.0 if got.dtype == np.int8 else 1e-6  # at most one int8 step apart
            np.testing.assert_allclose(got.astype(float), want, atol=atol, rtol=0)


def test_litert_rejects_unregistered_versions():
    model, _ = _int8_single_op("FULLY_CONNECTED")
    model.operators[0].version = 99
    with pytest.raises(Exception, match="version '99'"):
        Interpreter(model_content=serialize_model(model))
