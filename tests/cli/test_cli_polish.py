"""CLI polish: did-you-mean for flags and commands, output suffixes that contradict the
target, capped node lists, progress lines off a terminal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.cli.clikit import ZOO, assert_clean_failure, fail_in, opset, run, save


def test_mistyped_flag_suggests_the_flag(work: Path) -> None:
    proc = run("compile", ZOO / "lenet.onnx", "-o", "m.tflite", "--quantise", "int8", cwd=work)
    assert proc.returncode == 2
    assert "unrecognized argument --quantise (did you mean --quantize?)" in proc.stderr
    assert "usage:" not in proc.stderr and len(proc.stderr.splitlines()) == 2
    proc = run("inspect", "x.tflite", "--jsn", cwd=work)
    assert "(did you mean --json?)" in proc.stderr and proc.returncode == 2
    proc = run("compil", "x.onnx", cwd=work)
    assert "did you mean 'compile'?" in proc.stderr and proc.returncode == 2
    proc = run("compile", ZOO / "lenet.onnx", "-o", "m.tflite", "--zzzz", cwd=work)
    assert "unrecognized argument --zzzz\n" in proc.stderr  # nothing close: no guess


def test_output_suffix_contradicting_the_target(work: Path) -> None:
    message, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "-o", "out.c")
    assert "writes a .tflite flatbuffer, not a .c file (for C use --target c -o DIR)" in message
    message, _ = fail_in(work, "compile", ZOO / "lenet.onnx", "--target", "c", "-o",
                         "m.tflite", "--quantize", "int8", "--calibration-data", "x.npz")
    assert "--target c writes a directory of files" in message
    ok = run("compile", ZOO / "lenet.onnx", "-o", "model.bin", "-q", cwd=work)
    assert ok.returncode == 0 and (work / "model.bin").stat().st_size > 0


def _many_unsupported(path: Path, count: int) -> Path:
    nodes = [helper.make_node("Celu", [f"t{i}"], [f"t{i + 1}"], name=f"celu_{i}")
             for i in range(count)]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(f"t{count}", TensorProto.FLOAT,
                                                             [1, 4])])
    return save(helper.make_model(graph, opset_imports=opset()), path)


def test_long_node_lists_are_capped(work: Path) -> None:
    model = _many_unsupported(work / "many.onnx", 250)
    proc = run("compile", model, "-o", "m.tflite", cwd=work)
    line = assert_clean_failure(proc, "unsupported ops: Celu")
    assert "celu_9, ... 240 more" in line and "celu_10" not in line and len(line) < 400


def test_progress_lines_when_not_a_terminal(work: Path, monkeypatch) -> None:
    """Off a terminal the calibrator prints a line every few seconds; force the interval to
    zero through the Python API (the CLI's subprocess runs are short, so print nothing)."""
    import io

    from microlith import CompileOptions, compile_onnx
    from microlith.calibration import data as calibration_data

    original = calibration_data.Progress.__init__

    def fast(self, *args, **kwargs):
        kwargs["line_interval"] = 0.0
        original(self, *args, **kwargs)

    stream = io.StringIO()
    monkeypatch.setattr(calibration_data.Progress, "__init__", fast)
    monkeypatch.setattr("sys.stderr", stream)
    x = np.random.default_rng(0).standard_normal((40, 1, 16, 16)).astype(np.float32)
    np.savez(work / "c.npz", input=x)
    compile_onnx(ZOO / "lenet.onnx", CompileOptions(quantize="int8",
                                                    calibration_data=str(work / "c.npz")))
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("progress: calibrating 40/40 samples (100%), ")
               for line in lines), lines
    assert "\r" not in stream.getvalue()
    _ = onnx  # the model helpers above use onnx through clikit
