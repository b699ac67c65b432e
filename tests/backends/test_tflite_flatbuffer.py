"""Tests for the low-level TFLite flatbuffer layer (writer, reader, schema).

A float model run in LiteRT and TFLite-Micro, format conventions, round trips of every
op and tensor kind, error messages, and the schema tables against LiteRT's generated
schema; int8 models and op versions are in ``test_tflite_int8_versions.py``.
"""

from __future__ import annotations

import copy
import inspect
import re
from importlib import resources

import numpy as np
import pytest

from microlith.formats.tflite import schema
from microlith.formats.tflite.flatbuffer import (
    TflModel,
    TflOperator,
    TflTensor,
    normalize_model,
    normalize_options,
    parse_model,
    serialize_model,
)
from tests.backends.tflite_models import (
    ROUNDTRIP_CASES,
    OpResolverType,
    build_float_model,
    per_axis_int8_tensor,
    run_litert,
    run_tflm,
    structural_model,
)

# --------------------------------------------------------------------------- float model


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
