"""``microlith.Converter``: ONNX from a path, a ModelProto or bytes; PyTorch modules;
TFLiteConverter-style attributes; ``compile_onnx`` is the same compile."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import microlith
from microlith import CompileOptions, Converter, compile_onnx
from microlith.diagnostics import MicrolithError, UsageError
from microlith.formats.tflite.flatbuffer import parse_model

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return np.load(CALIB)["input"]


def test_path_modelproto_and_bytes_give_the_same_file():
    proto = onnx.load(LENET)
    before = proto.SerializeToString()
    outputs = {Converter.from_onnx(source).convert()
               for source in (LENET, str(LENET), proto, LENET.read_bytes())}
    assert outputs == {compile_onnx(LENET).output}
    assert proto.SerializeToString() == before  # the caller's proto is not modified


@pytest.mark.parametrize("source, message", [
    (b"\x08\x07garbage" * 20000, "<onnx bytes>: not a valid ONNX model"),
    (b"", "<onnx bytes>: empty file"),
    (onnx.ModelProto(), "<onnx ModelProto>: not an ONNX model"),
    (42, "expected a path, bytes or an onnx.ModelProto, not int"),
])
def test_bad_sources_are_one_short_line(source, message):
    with pytest.raises(MicrolithError) as info:
        Converter.from_onnx(source).convert()
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text and len(text) < 200


def test_representative_dataset_callable_matches_the_npz(digits):
    expected = compile_onnx(LENET, CompileOptions(quantize="int8", quiet=True,
                                                  calibration_data=str(CALIB))).output
    conv = Converter.from_onnx(LENET, quiet=True)
    conv.quantize = "int8"
    conv.representative_dataset = lambda: ([sample[None]] for sample in digits)
    assert conv.convert() == expected


def test_inference_types_and_targets(digits):
    conv = Converter.from_onnx(LENET, quiet=True)
    conv.quantize, conv.representative_dataset = "int8", str(CALIB)
    conv.inference_input_type = conv.inference_output_type = np.uint8
    model = parse_model(conv.convert())
    assert {model.tensors[i].dtype for i in model.inputs + model.outputs} == {"uint8"}
    conv.inference_output_type = "int8"  # inference_input_type stays uint8
    model = parse_model(conv.convert())
    assert [model.tensors[i].dtype for i in model.inputs + model.outputs] == ["uint8", "int8"]
    conv.quantize = "int16x8"
    conv.inference_input_type = conv.inference_output_type = "int16"
    model = parse_model(conv.convert())
    assert {model.tensors[i].dtype for i in model.inputs + model.outputs} == {"int16"}
    conv.inference_input_type = "int4"
    with pytest.raises(UsageError, match="inference_input_type 'int4'"):
        conv.convert()
    conv.quantize = "int8"
    conv.inference_input_type = conv.inference_output_type = None
    conv.target = "c"
    files = conv.convert()
    assert isinstance(files, dict) and "model.c" in files and "model_invoke" in files["model.c"]
    with pytest.raises(UsageError, match="unknown target"):
        conv.target = "verilog"
        conv.convert()
    with pytest.raises(UsageError, match="unexpected keyword"):
        Converter.from_onnx(LENET, quantise="int8")


def test_public_names():
    assert microlith.Converter is Converter and "Converter" in microlith.__all__


def test_from_torch_matches_torch_in_litert():
    torch = pytest.importorskip("torch")
    from ai_edge_litert.interpreter import Interpreter

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    module[1].running_mean.uniform_(-0.5, 0.5)
    module[1].running_var.uniform_(0.5, 2.0)
    module.train()
    x = torch.randn(1, 2, 6, 6)
    data = Converter.from_torch(module, (x,), output_names=["y"]).convert()
    assert module.training  # put back as it was
    with torch.no_grad():
        expected = module.eval()(x).numpy()
    interp = Interpreter(model_content=data)
    runner = interp.get_signature_runner()
    got = runner(input=x.numpy().transpose(0, 2, 3, 1))["y"]  # the .tflite is NHWC
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 0.1


def test_from_torch_errors(monkeypatch):
    torch = pytest.importorskip("torch")
    with pytest.raises(UsageError, match="expects a torch.nn.Module"):
        Converter.from_torch(lambda x: x, torch.zeros(1))
    with pytest.raises(UsageError, match="example_inputs must be a tensor"):
        Converter.from_torch(torch.nn.ReLU(), [1, 2])
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UsageError, match=r"pip install 'microlith\[torch\]'"):
        Converter.from_torch(object(), None)
