"""Smaller items of the reliability issue (class 12) that are not about files.

* A weight channel whose largest value is denormal (1e-45) quantizes like an all-zero
  channel (scale 1, all zeros): the same ``.tflite`` bytes, where it used to be refused
  with a zero scale; a channel of ordinary small weights is still quantized normally.
* ``microlith debug`` refuses labels that are not class ids of the model's first output
  (negative, or >= its number of scores), naming the file and the sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from microlith.quant.params import quantize_weights
from tests.badinput import ZOO, assert_one_error, cli_run, model, save, vi


def _fc(weight: np.ndarray) -> onnx.ModelProto:
    return model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
                 [vi("x", [1, 4])], [vi("y", [1, 3])], {"w": weight})


def _int8(tmp_path: Path, weight: np.ndarray, name: str) -> bytes:
    save(_fc(weight), tmp_path / f"{name}.onnx")
    run = cli_run("compile", f"{name}.onnx", "-o", f"{name}.tflite", "--quantize", "int8",
                  "--calibration-data", "calib.npz", "-q", cwd=tmp_path)
    assert run.status == 0 and run.err == "" and run.runtime_warnings == [], run.err
    return (tmp_path / f"{name}.tflite").read_bytes()


@pytest.mark.parametrize("tiny", [1e-45, 1e-40, 1e-37])
def test_denormal_weight_channel_quantizes_like_a_zero_channel(tmp_path: Path,
                                                               tiny: float) -> None:
    np.savez(tmp_path / "calib.npz",
             x=np.random.default_rng(1).standard_normal((8, 1, 4)).astype(np.float32))
    weight = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    zero = weight.copy()
    zero[1] = 0
    denormal = zero.copy()
    denormal[1, 2] = np.float32(tiny)
    assert _int8(tmp_path, denormal, "denormal") == _int8(tmp_path, zero, "zero")


def test_small_but_normal_weights_keep_their_own_scale() -> None:
    weight = np.array([[1e-30, -4e-31], [1.0, 0.5]], np.float32)
    q, params = quantize_weights(weight, axis=0)
    assert params.scale[0] == pytest.approx(1e-30 / 127, rel=1e-6)
    assert q[0].tolist() == [127, -51] and q[1].tolist() == [127, 64]


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("digits")
    x = np.random.default_rng(0).uniform(0, 1, (6, 1, 16, 16)).astype(np.float32)
    np.savez(where / "calib.npz", input=x)
    return where


@pytest.mark.parametrize("labels, needles", [
    ([0, 1, 2, 3, 4, 10], ["label 10 of sample 5", "0..9"]),
    ([0, -1, 2, 3, 4, 5], ["label -1 of sample 1"]),
    ([0, 1, 2, 3, 2**40, 5], ["of sample 4"]),
])
def test_debug_labels_outside_the_class_range_are_refused(digits_files: Path,
                                                         labels: list[int],
                                                         needles: list[str]) -> None:
    x = np.load(digits_files / "calib.npz")["input"]
    np.savez(digits_files / "eval.npz", input=x, labels=np.array(labels, np.int64))
    run = cli_run("debug", ZOO / "lenet.onnx", "--calibration-data", "calib.npz", "--data",
                  "eval.npz", "-q", cwd=digits_files)
    assert_one_error(run, "eval.npz", *needles)


def test_debug_labels_inside_the_range_are_accepted(digits_files: Path) -> None:
    x = np.load(digits_files / "calib.npz")["input"]
    np.savez(digits_files / "good.npz", input=x, labels=np.array([0, 1, 2, 3, 9, 5]))
    run = cli_run("debug", ZOO / "lenet.onnx", "--calibration-data", "calib.npz", "--data",
                  "good.npz", "-q", cwd=digits_files)
    assert run.status == 0 and "top-1 accuracy (6 labelled samples)" in run.out, run.err
