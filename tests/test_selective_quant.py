"""Selective quantization: ``--keep-float``, ``--input-dtype`` / ``--output-dtype`` and
``--per-tensor``, in int8 and 16x8, against TFLite-Micro and LiteRT.

Every compiled model is checked tensor by tensor against TFLite-Micro (integer tensors
identical; within 1 LSB downstream of a float op, whose kernel rounds differently) and
LiteRT runs it; the interface tensors have the asked dtypes; bad names fail in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli.clikit import fail_in
from tests.test_int16x8 import ZOO, check_tensors, compiled, data
from tools.runtimes import run_litert, run_tflm

CASES = [
    ("lenet", "int8", {"keep_float": ("/4/Conv",)}),
    ("lenet", "int16x8", {"keep_float": ("MaxPool",)}),
    ("dscnn", "int16x8", {"input_dtype": "float32", "output_dtype": "int8"}),
    ("dscnn", "int8", {"input_dtype": "uint8", "output_dtype": "int16"}),
    ("resnet8", "int16x8", {"io_dtype": "int8"}),
    ("dscnn", "int8", {"per_tensor": True}),
    ("dscnn", "int16x8", {"per_tensor": True}),
]


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


def _id(case: tuple) -> str:
    name, mode, opts = case
    return f"{name}-{mode}-" + "-".join(f"{k}={v}" for k, v in opts.items())


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_selective_bit_exact_with_tflm(case: tuple) -> None:
    name, mode, opts = case
    m = compiled(name, mode, **opts)
    assert check_tensors(m, data(name)[1][:10], 1 if "keep_float" in opts else 0) >= 3
    feeds = m.feed(data(name)[1][:100])
    a, b = run_tflm(m.data, feeds), run_litert(m.data, feeds)
    assert a.dtype == b.dtype
    assert float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) <= 1.0


@pytest.mark.parametrize("case", CASES[2:5], ids=[_id(c) for c in CASES[2:5]])
def test_interface_dtypes(case: tuple) -> None:
    name, mode, opts = case
    tfl = compiled(name, mode, **opts).tfl
    want_in = opts.get("input_dtype", opts.get("io_dtype"))
    want_out = opts.get("output_dtype", opts.get("io_dtype"))
    assert tfl.tensors[tfl.inputs[0]].dtype == want_in
    assert tfl.tensors[tfl.outputs[0]].dtype == want_out


def test_keep_float_keeps_the_node_float() -> None:
    tfl = compiled("lenet", "int8", keep_float=("/4/Conv",)).tfl
    convs = [op for op in tfl.operators if op.op == "CONV_2D"]
    kinds = sorted(tfl.tensors[op.inputs[1]].dtype for op in convs)
    assert kinds == ["float32", "int8"]


def test_per_tensor_has_one_weight_scale() -> None:
    tfl = compiled("dscnn", "int16x8", per_tensor=True).tfl
    for op in tfl.operators:
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert len(tfl.tensors[op.inputs[1]].quant.scale) == 1


def test_keep_float_unknown_name_is_one_line(work: Path) -> None:
    np.save(work / "cal.npy", data("lenet")[0][:8])
    line, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", work / "x.tflite",
                      "--quantize", "int8", "--calibration-data", work / "cal.npy",
                      "--keep-float", "NoSuchNode")
    assert "--keep-float: no node or op type named 'NoSuchNode'" in line
