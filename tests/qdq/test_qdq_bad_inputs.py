"""Bad Q/DQ models: one ``error:`` line naming the file, node and culprit; exit 2; nothing
written. The good model of this file compiles (so each case fails for its own reason).

A zero point outside its type cannot be stored in a typed ONNX tensor; the way it
arrives is a zero point of a wider type than the data (int32 300 for int8 weights),
which ONNX's own type inference names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.badinput import cli_run, fails_cleanly, save
from tests.qdq.qdqkit import qdq_gemm

Case = tuple[Callable[[], onnx.ModelProto], list[str]]
CASES: dict[str, Case] = {
    "zero-scale": (lambda: qdq_gemm(x_scale=0.0), ["'q_x'", "scale 0", "finite and positive"]),
    "negative-weight-scale": (lambda: qdq_gemm(w_scale=np.array([0.01, -0.5, 0.01],
                                                                np.float32)),
                              ["'dq_w'", "scale -0.5", "finite and positive"]),
    "zero-point-out-of-type": (lambda: qdq_gemm(w_zp=np.array([0, 300, 0], np.int32)),
                               ["dq_w", "x_zero_point", "int32"]),
    "per-axis-length": (lambda: qdq_gemm(w_scale=np.full(4, 0.01, np.float32),
                                         w_zp=np.zeros(4, np.int8)),
                        ["'dq_w'", "4 entries", "axis 0", "has 3"]),
    "dq-without-q": (lambda: qdq_gemm(int_input=True),
                     ["'dq_x'", "no matching QuantizeLinear", "'xq'", "graph input"]),
    "dq-other-params-than-q": (lambda: qdq_gemm(dq_scale=0.03),
                               ["'dq_x'", "no matching QuantizeLinear", "differ"]),
    "int16": (lambda: qdq_gemm(x_zp=np.array(0, np.int16), opset=21),
              ["'q_x'", "int16 is not supported"]),
}


def test_the_good_model_compiles(tmp_path: Path) -> None:
    save(qdq_gemm(), tmp_path / "good.onnx")
    run = cli_run("compile", "good.onnx", "-o", "out.tflite", cwd=tmp_path)
    assert run.status == 0, run.err
    assert (tmp_path / "out.tflite").stat().st_size > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_qdq_model_is_one_line_error(tmp_path: Path, case: str) -> None:
    build, needles = CASES[case]
    save(build(), tmp_path / "bad.onnx")
    line = fails_cleanly(tmp_path, "compile", "bad.onnx", "-o", "out.tflite")
    assert line.startswith("error: bad.onnx: "), line
    for needle in needles:
        assert needle in line, (needle, line)
