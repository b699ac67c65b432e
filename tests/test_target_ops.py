"""After ``legalize-tflite`` the IR is the ``.tflite``: the same operators in the same order
and the same tensors.

For every zoo model and every mode (float; int8 with int8, uint8 and float32 I/O; int8
with float fallback; dynamic range; float16), the IR printed by
``--print-ir-after=legalize-tflite`` is parsed back: its ``tfl.*`` operations, in order,
are the written flatbuffer's operators (builtin names), with the same number of operands
and results; its values (graph inputs, constants and node results, with their printed
types) are the flatbuffer's tensors.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model

ZOO = Path(__file__).resolve().parent / "zoo"
MODELS = sorted(p.stem for p in ZOO.glob("*.onnx"))
MODES = {"float": {}, "int8": {"quantize": "int8"},
         "int8-uint8-io": {"quantize": "int8", "io_dtype": "uint8"},
         "int8-float-io": {"quantize": "int8", "io_dtype": "float32"},
         "int8-fallback": {"quantize": "int8", "fallback": "float"},
         "dynamic": {"quantize": "dynamic"}, "float16": {"quantize": "float16"}}
OP_LINE = re.compile(r"^\s+(%\S.*?) = (tfl\.\w+)\((.*?)\)(?: \{.*\})? : (.*?)  # ")
VALUE_DEF = re.compile(r"^\s+%(?:arg|c)?\d+ = const (tensor<[^>]*>)|%arg\d+: (tensor<[^>]*>)")
DTYPES = {"float32": "f32", "int8": "i8", "uint8": "u8", "int32": "i32", "int64": "i64",
          "int16": "i16", "float16": "f16"}


def _calibration(name: str) -> np.ndarray:
    model = onnx.load(str(ZOO / f"{name}.onnx"))
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(0).uniform(0, 1, (16, *shape[1:])).astype(np.float32)


def _type_text(shape: list[int], dtype: str) -> str:
    dims = "x".join(str(d) for d in shape)
    return f"{dims}x{DTYPES[dtype]}" if dims else DTYPES[dtype]


# helper_ops has ops without int8 kernels: in int8 it compiles only with --fallback float
CASES = [(name, mode) for name in MODELS for mode in MODES
         if not (name == "helper_ops" and mode.startswith("int8") and mode != "int8-fallback")]


@pytest.mark.parametrize("name, mode", CASES)
def test_ir_after_legalize_tflite_is_the_flatbuffer(name: str, mode: str) -> None:
    kwargs = dict(MODES[mode])
    if kwargs.get("quantize") == "int8":
        kwargs["calibration_data"] = _calibration(name)
    stream = io.StringIO()
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        print_ir_after=("legalize-tflite",), ir_stream=stream, quiet=True,
        warn=lambda m: None, **kwargs))
    text = stream.getvalue()
    model = parse_model(result.output)

    printed = [OP_LINE.match(line) for line in text.splitlines()]
    ops = [m for m in printed if m]
    assert [m.group(2) for m in ops] == [f"tfl.{op.op.lower()}" for op in model.operators]
    for match, op in zip(ops, model.operators, strict=True):
        operands = [a for a in match.group(3).split(", ") if a]
        assert len(operands) == len(op.inputs)
        assert [a == "none" for a in operands] == [i < 0 for i in op.inputs]
        assert len(match.group(1).split(", ")) == len(op.outputs)

    types: list[str] = []
    for line in text.splitlines():
        for m in VALUE_DEF.finditer(line):
            types.append(m.group(1) or m.group(2))
        hit = OP_LINE.match(line)
        if hit:
            types += re.findall(r"tensor<[^>]*>", hit.group(4))
    ir_tensors = Counter(t.split(",")[0].removeprefix("tensor<").rstrip(">") for t in types)
    tfl_tensors = Counter(_type_text(t.shape, t.dtype) for t in model.tensors)
    assert ir_tensors == tfl_tensors
