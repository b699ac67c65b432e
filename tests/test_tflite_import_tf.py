"""A real TF-converter int8 ``.tflite`` (``tests/data``, made by ``tools/make_tf_tflite.py``
with TensorFlow's ``TFLiteConverter``) compiles to C whose outputs are TFLite-Micro's bytes
on that same file, with the arena at the liveness bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microlith import Converter
from microlith.app.driver import write_directory
from microlith.app.run_model import run_c_directory, run_tflite
from microlith.formats.tflite.flatbuffer import parse_model
from tools.digits import load_digits_split

ROOT = Path(__file__).resolve().parents[1]
TF_INT8 = ROOT / "tests" / "data" / "tf_converter_digits_int8.tflite"


def test_tf_converter_int8_file_to_c_matches_tflm(tmp_path: Path) -> None:
    model = parse_model(TF_INT8.read_bytes())
    assert {model.tensors[i].dtype for i in model.inputs + model.outputs} == {"int8"}
    result = Converter.from_tflite(TF_INT8, target="c").compile()
    write_directory(tmp_path / "c", result.files)
    x = load_digits_split(16, "NHWC")[2][:40]  # the file's own layout: NHWC
    ours = run_c_directory(tmp_path / "c", x, "host").outputs[0]
    micro = run_tflite(TF_INT8, x, "tflite-micro").outputs[0]
    assert ours.dtype == micro.dtype == np.int8
    np.testing.assert_array_equal(ours, micro)
    assert len(np.unique(micro.argmax(-1))) > 1  # a real model, not a constant
    assert result.sizes["arena"] == -(-result.sizes["lower_bound"] // 8) * 8
