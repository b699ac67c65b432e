"""Tests for the low-level TFLite flatbuffer layer (writer, reader, schema, versions)."""

from __future__ import annotations

import copy
import inspect
import re
from importlib import resources

import numpy as np
import pytest

from microlith.backends.tflite.versions import default_op_version
from microlith.formats.tflite import schema
from microlith.formats.tflite.flatbuffer import (
    TflModel,
    TflOperator,
    TflQuant,
    TflTensor,
    normalize_model,
    normalize_options,
    parse_model,
    serialize_model,
)

litert = pytest.importorskip("ai_edge_litert.interpreter")
tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
Interpreter, OpResolverType = litert.Interpreter, litert.OpResolverType


# --------------------------------------------------------------------------- helpers


def const(name: str, arr: np.ndarray, quant: TflQuant | None = None) -> TflTensor:
    arr = np.ascontiguousarray(arr)
    dtype = "bool" if arr.dtype == np.bool_ else str(arr.dtype)
    return TflTensor(
        name, list(arr.shape), dtype, arr.astype(arr.dtype.newbyteorder("<")).tobytes(), quant
    )


def run_litert(data: bytes, inputs: list[np.ndarray], resolver=OpResolverType.BUILTIN_REF):
    interp = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    for detail, arr in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(detail["index"], arr)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def run_tflm(data: bytes, inputs: list[np.ndarray], n_outputs: int = 1) -> list[np.ndarray]:
    interp = tflm_runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    for i, arr in enumerate(inputs):
        interp.set_input(arr, i)
    interp.invoke()
    return [interp.get_output(i) for i in range(n_outputs)]


def conv_nhwc(x, w_ohwi, bias, stride=1, depthwise=False):
    """SAME-padded NHWC convolution (odd kernels), float64 reference."""
    kh, kw = w_ohwi.shape[1:3]
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    n, h, w, _ = x.shape
    cout = w_ohwi.shape[3] if depthwise else w_ohwi.shape[0]
    out = np.zeros((n, h, w, cout))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + h, j : j + w, :]
            if depthwise:
                out += patch * w_ohwi[0, i, j, :]
            else:
                out += np.einsum("nhwc,oc->nhwo", patch, w_ohwi[:, i, j, :])
    return (out + bias)[:, ::stride, ::stride, :]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- float model


def build_float_model(rng: np.random.Generator):
    f32 = np.float32
    w_conv = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(f32)
    b_conv = (rng.standard_normal(4) * 0.1).astype(f32)
    w_dw = (rng.standard_normal((1, 3, 3, 4)) * 0.3).astype(f32)
    b_dw = (rng.standard_normal(4) * 0.1).astype(f32)
    w_fc = (rng.standard_normal((10, 64)) * 0.2).astype(f32)
    b_fc = (rng.standard_normal(10) * 0.1).astype(f32)
    tensors = [
        TflTensor("input", [1, 8, 8, 3], "float32"),  # 0
        const("conv/w", w_conv),  # 1
        const("conv/b", b_conv),  # 2
        TflTensor("conv", [1, 8, 8, 4], "float32"),  # 3
        const("dw/w", w_dw),  # 4
        const("dw/b", b_dw),  # 5
        TflTensor("dw", [1, 8, 8, 4], "float32"),  # 6
        TflTensor("pool", [1, 4, 4, 4], "float32"),  # 7
        const("reshape/shape", np.array([1, 64], np.int32)),  # 8
        TflTensor("flat", [1, 64], "float32"),  # 9
        const("fc/w", w_fc),  # 10
        const("fc/b", b_fc),  # 11
        TflTensor("logits", [1, 10], "float32"),  # 12
        TflTensor("probs", [1, 10], "float32"),  # 13
    ]
    conv_opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
    operators = [
        TflOperator("CONV_2D", [0, 1, 2], [3], {**conv_opts, "fused_activation_function": "RELU6"}),
        TflOperator("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {**conv_opts, "depth_multiplier": 1}),
        TflOperator(
            "AVERAGE_POOL_2D",
            [6],
            [7],
            {
                "padding": "VALID",
                "stride_w": 2,
                "stride_h": 2,
                "filter_width": 2,
                "filter_height": 2,
            },
        ),
        TflOperator("RESHAPE", [7, 8], [9], {"new_shape": [1, 64]}),
        TflOperator("FULLY_CONNECTED", [9, 10, 11], [12]),
        TflOperator("SOFTMAX", [12], [13], {"beta": 1.0}),
    ]
    model = TflModel(tensors, operators, inputs=[0], outputs=[13])

    def reference(x):
        y = np.clip(conv_nhwc(x.astype(np.float64), w_conv, b_conv), 0, 6)
        y = conv_nhwc(y, w_dw, b_dw, depthwise=True)
        y = y.reshape(1, 4, 2, 4, 2, 4).mean(axis=(2, 4))
        y = y.reshape(1, 64) @ w_fc.T.astype(np.float64) + b_fc
        return softmax(y)

    return model, reference


def test_float_model_runs_in_litert_and_tflm():
    rng = np.random.default_rng(0)
    model, reference = build_float_model(rng)
    data = serialize_model(model)
    x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
    expected = reference(x)
    (out_ref,) = run_litert(data, [x], OpResolverType.BUILTIN_REF)
    (out_opt,) = run_litert(data, [x], OpResolverType.BUILTIN)
    (out_tflm,) = run_tflm(data, [x])
    for out in (out_ref, out_opt, out_tflm):
        assert out.shape == (1, 10) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def test_float_model_format_conventions():
    gen = pytest.importorskip("ai_edge_litert.schema_py_generated")
    model, _ = build_float_model(np.random.default_rng(1))
    data = serialize_model(model)
    assert data[4:8] == b"TFL3"
    fb = gen.Model.GetRootAs(data, 0)
    assert fb.Version() == 3
    assert fb.Buffers(0).DataLength() == 0
    n_const = sum(t.data is not None for t in model.tensors)
    assert fb.BuffersLength() == 1 + n_const
    for i in range(1, fb.BuffersLength()):
        buf = fb.Buffers(i)
        start = buf._tab.Vector(buf._tab.Offset(4))
        assert start % 16 == 0, f"buffer {i} data not 16-byte aligned"
    sg = fb.Subgraphs(0)
    buffers = [sg.Tensors(i).Buffer() for i in range(sg.TensorsLength())]
    assert [b != 0 for b in buffers] == [t.data is not None for t in model.tensors]
    assert len(set(b for b in buffers if b)) == n_const  # each constant has its own buffer
    codes = [fb.OperatorCodes(i) for i in range(fb.OperatorCodesLength())]
    assert [c.BuiltinCode() for c in codes] == [3, 4, 1, 22, 9, 25]
    assert [c.DeprecatedBuiltinCode() for c in codes] == [3, 4, 1, 22, 9, 25]


# --------------------------------------------------------------------------- round trips

ROUNDTRIP_CASES: dict[str, dict] = {
    "CONV_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 3,
        "fused_activation_function": "RELU6",
        "dilation_w_factor": 2,
        "dilation_h_factor": 3,
        "quantized_bias_type": "int32",
    },
    "DEPTHWISE_CONV_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 1,
        "depth_multiplier": 2,
        "fused_activation_function": "RELU",
        "dilation_w_factor": 2,
        "dilation_h_factor": 4,
    },
    "TRANSPOSE_CONV": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 2,
        "fused_activation_function": "RELU",
        "quantized_bias_type": "int64",
    },
    "FULLY_CONNECTED": {
        "fused_activation_function": "TANH",
        "weights_format": "SHUFFLED4x16INT8",
        "keep_num_dims": True,
        "asymmetric_quantize_inputs": True,
    },
    "ADD": {"fused_activation_function": "RELU", "pot_scale_int16": False},
    "SUB": {"fused_activation_function": "RELU_N1_TO_1", "pot_scale_int16": False},
    "MUL": {"fused_activation_function": "RELU6"},
    "DIV": {"fused_activation_function": "RELU"},
    "AVERAGE_POOL_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 3,
        "filter_width": 4,
        "filter_height": 5,
        "fused_activation_function": "RELU",
    },
    "MAX_POOL_2D": {
        "padding": "SAME",
        "stride_w": 1,
        "stride_h": 2,
        "filter_width": 3,
        "filter_height": 1,
        "fused_activation_function": "RELU6",
    },
    "MEAN": {"keep_dims": True},
    "SUM": {"keep_dims": True},
    "REDUCE_MAX": {"keep_dims": True},
    "RESHAPE": {"new_shape": [1, -1, 7]},
    "SQUEEZE": {"squeeze_dims": [0, 2]},
    "CONCATENATION": {"axis": -1, "fused_activation_function": "TANH"},
    "SOFTMAX": {"beta": 0.3},
    "LEAKY_RELU": {"alpha": 0.1},
    "GATHER": {"axis": 2, "batch_dims": 1},
    "STRIDED_SLICE": {
        "begin_mask": 1,
        "end_mask": 2,
        "ellipsis_mask": 4,
        "new_axis_mask": 8,
        "shrink_axis_mask": 16,
        "offset": True,
    },
    "SPLIT": {"num_splits": 3},
    "CAST": {"in_data_type": "int8", "out_data_type": "int16"},
    "MIRROR_PAD": {"mode": "SYMMETRIC"},
    "RESIZE_BILINEAR": {"align_corners": True, "half_pixel_centers": True},
    "BATCH_MATMUL": {"adj_x": True, "adj_y": False, "asymmetric_quantize_inputs": True},
    **{
        op: {}
        for op in (
            "PAD PADV2 TRANSPOSE LOGISTIC TANH HARD_SWISH RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 "
            "QUANTIZE DEQUANTIZE MAXIMUM MINIMUM EXPAND_DIMS PRELU EXP SQRT RSQRT ABS NEG GELU"
        ).split()
    },
}


def per_axis_int8_tensor() -> TflTensor:
    scales = np.array([0.0123, 0.5, 3.25e-4, 7.0], np.float32)
    quant = TflQuant(
        scale=[float(s) for s in scales],
        zero_point=[0, -3, 5, 127],
        quantized_dimension=3,
        min=[-1.0, -2.5, -0.125, 0.0],
        max=[1.0, 2.5, 0.125, 100.0],
    )
    data = np.arange(2 * 3 * 1 * 4, dtype=np.int8).reshape(2, 3, 1, 4)
    return const("weights/per_axis", data, quant)


def structural_model(ops: list[tuple[str, dict]]) -> TflModel:
    tensors = [
        TflTensor("a", [1, 4, 4, 8], "float32"),
        const("b", np.linspace(-1, 1, 8, dtype=np.float32)),
        per_axis_int8_tensor(),
        TflTensor("state", [1, 8], "int16", is_variable=True),
        TflTensor("q", [1, 8], "int8", quant=TflQuant([0.05], [-7])),  # 0.05 -> float32
        const("scalar", np.array(3, np.int64)),
        const("empty", np.zeros((0, 2), np.float32)),
        TflTensor("flags", [2], "bool"),
        TflTensor("half", [2, 2], "float16"),
        TflTensor("u8", [3], "uint8"),
    ]
    operators = [
        TflOperator(op, [0, 1, -1], [4 + k % 4], opts, version=1 + k % 3)
        for k, (op, opts) in enumerate(ops)
    ]
    return TflModel(
        tensors,
        operators,
        inputs=[0, 3],
        outputs=[4, 7],
        description="round trip",
        subgraph_name="sg",
        metadata={"min_runtime_version": b"1.14.0\0\0\0\0\0\0\0\0\0\0", "x": b"\x01\x02"},
    )


@pytest.mark.parametrize("op", sorted(ROUNDTRIP_CASES))
def test_roundtrip_each_op(op):
    model = structural_model([(op, ROUNDTRIP_CASES[op])])
    parsed = parse_model(serialize_model(model))
    assert parsed == normalize_model(model)
    # every non-default option value survives (not just defaults)
    for key, value in ROUNDTRIP_CASES[op].items():
        expected = np.float32(value).item() if isinstance(value, float) else value
        assert parsed.operators[0].options[key] == expected


def test_roundtrip_all_ops_in_one_model():
    model = structural_model(sorted(ROUNDTRIP_CASES.items()))
    data = serialize_model(model)
    parsed = parse_model(data)
    assert parsed == normalize_model(model)
    assert serialize_model(parsed) == data


def test_parser_fills_defaults():
    model = structural_model([("CONV_2D", {}), ("RESHAPE", {}), ("ADD", {})])
    parsed = parse_model(serialize_model(model))
    assert parsed.operators[0].options == {
        "padding": "SAME",
        "stride_w": 0,
        "stride_h": 0,
        "fused_activation_function": "NONE",
        "dilation_w_factor": 1,
        "dilation_h_factor": 1,
        "quantized_bias_type": "float32",
    }
    assert parsed.operators[1].options == {"new_shape": None}
    assert parsed.operators[2].options["pot_scale_int16"] is True


def test_per_axis_quantization_roundtrips_exactly():
    tensor = per_axis_int8_tensor()
    parsed = parse_model(serialize_model(structural_model([])))
    got = parsed.tensors[2]
    assert got == tensor
    assert got.quant.quantized_dimension == 3
    assert got.quant.scale == tensor.quant.scale  # float32 values, bit-exact
    assert got.quant.zero_point == [0, -3, 5, 127]


def test_serialization_is_deterministic():
    model = structural_model(sorted(ROUNDTRIP_CASES.items()))
    first = serialize_model(model)
    assert serialize_model(model) == first
    shuffled = copy.deepcopy(model)
    shuffled.metadata = dict(reversed(list(model.metadata.items())))
    for op in shuffled.operators:
        op.options = dict(reversed(list(op.options.items())))
    assert serialize_model(shuffled) == first
    float_a, _ = build_float_model(np.random.default_rng(5))
    float_b, _ = build_float_model(np.random.default_rng(5))
    assert serialize_model(float_a) == serialize_model(float_b)


def test_opcodes_dedup_in_first_use_order_and_extended_codes():
    gen = pytest.importorskip("ai_edge_litert.schema_py_generated")
    ops = [("RELU_0_TO_1", {}), ("ADD", {}), ("RELU_0_TO_1", {}), ("GELU", {"approximate": True})]
    model = structural_model(ops)
    for op in model.operators:
        op.version = 1
    fb = gen.Model.GetRootAs(serialize_model(model), 0)
    codes = [fb.OperatorCodes(i) for i in range(fb.OperatorCodesLength())]
    assert [(c.BuiltinCode(), c.DeprecatedBuiltinCode(), c.Version()) for c in codes] == [
        (152, 127, 1),
        (0, 0, 1),
        (150, 127, 1),
    ]
    sg = fb.Subgraphs(0)
    assert [sg.Operators(i).OpcodeIndex() for i in range(sg.OperatorsLength())] == [0, 1, 0, 2]


def test_extended_opcode_runs_in_litert():
    model = TflModel(
        [TflTensor("x", [1, 5], "float32"), TflTensor("y", [1, 5], "float32")],
        [TflOperator("RELU_0_TO_1", [0], [1])],
        inputs=[0],
        outputs=[1],
    )
    x = np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]], np.float32)
    (y,) = run_litert(serialize_model(model), [x])
    np.testing.assert_array_equal(y, np.clip(x, 0, 1))


def test_reads_converter_produced_model():
    ref = resources.files("tflite_micro.python.tflite_micro").joinpath("sine_float.tflite")
    original = ref.read_bytes()
    model = parse_model(original)
    assert [op.op for op in model.operators] == ["FULLY_CONNECTED"] * 3
    assert model.operators[0].options["fused_activation_function"] == "RELU"
    assert "min_runtime_version" in model.metadata
    rewritten = serialize_model(model)
    x = np.array([[1.3]], np.float32)
    np.testing.assert_array_equal(run_tflm(rewritten, [x])[0], run_tflm(original, [x])[0])


# --------------------------------------------------------------------------- errors


def test_errors_name_the_op():
    def one_op(op: str, options: dict) -> TflModel:
        return structural_model([(op, options)])

    with pytest.raises(ValueError, match=r"CONV_2D.*'stride'"):
        serialize_model(one_op("CONV_2D", {"stride": 1}))
    with pytest.raises(ValueError, match=r"RELU.*'alpha'"):
        serialize_model(one_op("RELU", {"alpha": 0.1}))
    with pytest.raises(ValueError, match=r"CONV_2D.*padding.*'FULL'"):
        serialize_model(one_op("CONV_2D", {"padding": "FULL"}))
    with pytest.raises(ValueError, match=r"SOFTMAX.*beta"):
        serialize_model(one_op("SOFTMAX", {"beta": "big"}))
    with pytest.raises(ValueError, match="FANCY_OP"):
        serialize_model(one_op("FANCY_OP", {}))
    with pytest.raises(ValueError, match="LSTM"):
        serialize_model(one_op("LSTM", {}))
    with pytest.raises(ValueError, match="FANCY_OP"):
        normalize_options("FANCY_OP", {})
    with pytest.raises(ValueError, match=r"MEAN.*'keepdims'"):
        normalize_options("MEAN", {"keepdims": True})


def test_structural_errors():
    bad_data = structural_model([])
    bad_data.tensors[1].data = b"\0" * 3
    with pytest.raises(ValueError, match="'b'.*bytes"):
        serialize_model(bad_data)
    bad_index = structural_model([("ADD", {})])
    bad_index.operators[0].inputs = [0, 99]
    with pytest.raises(ValueError, match="ADD.*99"):
        serialize_model(bad_index)
    bad_quant = structural_model([])
    bad_quant.tensors[2].quant.quantized_dimension = 0
    with pytest.raises(ValueError, match="per-axis"):
        serialize_model(bad_quant)
    with pytest.raises(ValueError, match="TFL3"):
        parse_model(b"\0" * 16)


# --------------------------------------------------------------------------- schema facts


def test_schema_matches_generated_litert_schema():
    gen = pytest.importorskip("ai_edge_litert.schema_py_generated")
    for name, code in schema.BUILTIN_CODES.items():
        assert getattr(gen.BuiltinOperator, name) == code, name
    for name, index in schema.BUILTIN_OPTIONS_TYPES.items():
        assert getattr(gen.BuiltinOptions, name) == index, name
    for member in schema.TensorType:
        assert getattr(gen.TensorType, member.name) == member.value
    for member in schema.ActivationFunctionType:
        assert getattr(gen.ActivationFunctionType, member.name) == member.value
    assert (gen.Padding.SAME, gen.Padding.VALID) == (0, 1)
    for table in schema.OPTIONS_TABLES.values():
        for slot, f in enumerate(table.fields):
            if f is None:
                continue
            camel = "".join(p[:1].upper() + p[1:] for p in f.name.split("_"))
            source = inspect.getsource(getattr(gen, f"{table.name}Add{camel}"))
            m = re.search(r"Prepend(\w+)Slot\((\d+), *[^,]+, *([^)]+)\)", source)
            assert m is not None, (table.name, f.name)
            kind, gen_slot, gen_default = m.groups()
            assert int(gen_slot) == slot, (table.name, f.name)
            expected_kind = {
                "bool": "Bool",
                "byte": "Int8",
                "int32": "Int32",
                "uint32": "Uint32",
                "float32": "Float32",
                "int32_vector": "UOffsetTRelative",
            }[f.kind]
            assert kind == expected_kind, (table.name, f.name)
            default = schema.ENUMS[f.enum][f.default] if f.enum else f.default
            if f.kind != "int32_vector":
                assert float(gen_default) == float(default), (table.name, f.name)


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
