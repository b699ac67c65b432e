"""External tensor data (issue class 7): every bad reference is one line naming the model
and the tensor, exit 2 -- onnx's own ``ValidationError`` / ``ValueError`` never escapes --
and good external data still loads (numbers checked against onnxruntime)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.badinput import cli_run, fails_cleanly, model, save, vi

WEIGHT = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def _external_model(tmp_path: Path, **fields: str) -> Path:
    """x[1,4] @ w[4,3] with ``w`` stored outside the model (``fields``: location, ...)."""
    proto = model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                  [vi("x", [1, 4])], [vi("y", [1, 3])], {"w": WEIGHT})
    tensor = proto.graph.initializer[0]
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in fields.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    (tmp_path / "weights.bin").write_bytes(bytes(16) + WEIGHT.tobytes())
    return save(proto, tmp_path / "m.onnx")


def test_good_external_data_loads_and_matches_onnxruntime(tmp_path: Path) -> None:
    import onnxruntime as ort

    from tools.runtimes import litert_interpreter, litert_invoke

    path = _external_model(tmp_path, location="weights.bin", offset="16", length="48")
    run = cli_run("compile", "m.onnx", "-o", "m.tflite", "-q", cwd=tmp_path)
    assert run.status == 0 and run.err == "", run.err
    x = np.ones((1, 4), np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        litert_invoke(litert_interpreter((tmp_path / "m.tflite").read_bytes()), x),
        session.run(None, {"x": x})[0], rtol=1e-6)


def _link(tmp_path: Path) -> dict[str, str]:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.bin"
    outside.write_bytes(WEIGHT.tobytes())
    (tmp_path / "link.bin").symlink_to(outside)
    return {"location": "link.bin"}


def _fifo(tmp_path: Path) -> dict[str, str]:
    os.mkfifo(tmp_path / "fifo.bin")
    return {"location": "fifo.bin"}


CASES = {
    "missing-file": (lambda p: {"location": "missing.bin"}, ["'missing.bin'", "no such file"]),
    "path-traversal": (lambda p: {"location": "../weights.bin"}, ["outside the model's"]),
    "traversal-inside-path": (lambda p: {"location": "sub/../../x.bin"}, ["outside"]),
    "absolute-path": (lambda p: {"location": "/dev/zero"}, ["relative"]),
    "symlink": (_link, ["'link.bin'", "symbolic link"]),
    "fifo": (_fifo, ["'fifo.bin'", "FIFO"]),
    "no-location": (lambda p: {"offset": "0"}, ["no location"]),
    "offset-past-end": (lambda p: {"location": "weights.bin", "offset": "4096"},
                        ["offset 4,096", "past the end"]),
    "length-past-end": (lambda p: {"location": "weights.bin", "offset": "16",
                                   "length": "4000"}, ["past the end"]),
    "negative-offset": (lambda p: {"location": "weights.bin", "offset": "-1"},
                        ["offset '-1'"]),
    "offset-not-a-number": (lambda p: {"location": "weights.bin", "offset": "abc"},
                            ["offset 'abc'"]),
    "length-disagrees-with-dims": (lambda p: {"location": "weights.bin", "length": "40"},
                                   ["40 bytes", "need 48"]),
    "rest-of-file-disagrees": (lambda p: {"location": "weights.bin"}, ["64 bytes", "need 48"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_external_data_is_one_line_error(tmp_path: Path, case: str) -> None:
    fields, needles = CASES[case]
    _external_model(tmp_path, **fields(tmp_path))
    line = fails_cleanly(tmp_path, "compile", "m.onnx", "-o", "m.tflite")
    assert line.startswith("error: m.onnx: external data of tensor 'w'"), line
    for needle in needles:
        assert needle in line, (needle, line)


def test_external_data_of_a_constant_node_is_checked_too(tmp_path: Path) -> None:
    value = onnx.numpy_helper.from_array(WEIGHT, "w")
    value.ClearField("raw_data")
    value.data_location = TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "../elsewhere.bin"
    proto = model([helper.make_node("Constant", [], ["w"], name="const", value=value),
                   helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                  [vi("x", [1, 4])], [vi("y", [1, 3])])
    save(proto, tmp_path / "m.onnx")
    line = fails_cleanly(tmp_path, "compile", "m.onnx", "-o", "m.tflite")
    assert "'w'" in line and "outside the model's directory" in line
