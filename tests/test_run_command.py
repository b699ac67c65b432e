"""``microlith run``: the emitted C on the host (gcc) and on the Cortex-M4 (qemu) gives
TFLite-Micro's bytes on the same model; inputs are quantized / transposed as documented;
missing tools and runtimes are one line naming what to install."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from microlith import CompileOptions, compile_onnx
from microlith.app.driver import write_atomic, write_directory
from microlith.app.run_model import run_c_directory, run_tflite
from microlith.diagnostics import UsageError
from tests.cli.clikit import run

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "examples" / "lenet_digits.onnx"
CALIB = ROOT / "examples" / "digits_calibration.npz"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("run")
    opts = dict(quantize="int8", calibration_data=str(CALIB), quiet=True)
    c = compile_onnx(LENET, CompileOptions(target="c", **opts))
    write_directory(tmp / "c", c.files)
    write_atomic(tmp / "m.tflite", compile_onnx(LENET, CompileOptions(**opts)).output)
    x = np.load(CALIB)["input"][:12]
    np.save(tmp / "x.npy", x)
    return {"c": tmp / "c", "tflite": tmp / "m.tflite", "x": tmp / "x.npy", "dir": tmp}


def test_host_c_matches_tflm_on_the_tflite(compiled):
    x = np.load(compiled["x"])
    host = run_c_directory(compiled["c"], x, "host")
    micro = run_tflite(compiled["tflite"], x, "tflite-micro")
    assert micro.runtime == "TFLite-Micro" and host.outputs[0].dtype == np.int8
    assert host.outputs[0].shape == (12, 10)
    np.testing.assert_array_equal(host.outputs[0], micro.outputs[0])
    assert len(set(host.outputs[0].argmax(1))) > 3  # real digits, several classes


def test_inputs_quantized_and_transposed(compiled):
    from microlith.app.run_model import header_interface
    from microlith.ir.types import QuantParams
    from microlith.quant.params import quantize_array

    x = np.load(compiled["x"])[:3]
    _, (info,), _ = header_interface(compiled["c"])
    assert info.shape == (1, 16, 16, 1) and info.dtype == np.int8
    by_float = run_c_directory(compiled["c"], x, "host").outputs[0]
    nhwc = quantize_array(x.transpose(0, 2, 3, 1), QuantParams((info.scale,),
                                                               (info.zero_point,)))
    by_int8 = run_c_directory(compiled["c"], nhwc, "host").outputs[0]
    np.testing.assert_array_equal(by_float, by_int8)
    one = run_c_directory(compiled["c"], nhwc[:1], "host").outputs[0]
    np.testing.assert_array_equal(one, by_int8[:1])


def test_litert_within_one_step_of_tflm(compiled):
    x = np.load(compiled["x"])
    lite = run_tflite(compiled["tflite"], x, "litert")
    micro = run_tflite(compiled["tflite"], x, "auto")
    assert lite.runtime == "LiteRT" and micro.runtime == "TFLite-Micro"
    diff = np.abs(lite.outputs[0].astype(int) - micro.outputs[0].astype(int))
    assert diff.max() <= 1


def test_cli_run_writes_outputs(compiled):
    work = compiled["dir"]
    proc = run("run", compiled["c"], "--input", compiled["x"], "-o", "y.npy", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "output 0: int8 [12, 10] (host gcc)" in proc.stdout
    proc = run("run", compiled["tflite"], "--input", compiled["x"], "-o", "t.npz", cwd=work)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(work / "y.npy"), np.load(work / "t.npz")["output0"])


@pytest.mark.slow
def test_cortex_m4_matches_host_and_counts_instructions(compiled):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed "
                    "(tools/mcu/install_toolchain.sh)")
    x = np.load(compiled["x"])[:3]
    board = run_c_directory(compiled["c"], x, "cortex-m4")
    host = run_c_directory(compiled["c"], x, "host")
    np.testing.assert_array_equal(board.outputs[0], host.outputs[0])
    assert len(board.instructions) == 3 and min(board.instructions) > 10_000
    proc = run("run", compiled["c"], "--input", compiled["x"], "--on", "cortex-m4",
               cwd=compiled["dir"])
    assert proc.returncode == 0 and "instructions per inference" in proc.stdout


def test_errors_are_one_line(compiled, monkeypatch):
    x = np.load(compiled["x"])
    with pytest.raises(UsageError, match=r"shape \[12, 1, 8, 32\] does not match the model "
                                         r"input \[1, 16, 16, 1\]"):
        run_c_directory(compiled["c"], x.reshape(12, 1, 8, 32), "host")
    with pytest.raises(UsageError, match="dtype int32 does not match"):
        run_c_directory(compiled["c"], np.zeros((1, 16, 16, 1), np.int32), "host")
    with pytest.raises(UsageError, match="not a microlith C output directory"):
        run_c_directory(compiled["dir"], x, "host")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match="gcc not found on PATH .*apt-get install gcc"):
        run_c_directory(compiled["c"], x, "host")
    with pytest.raises(UsageError, match="arm-none-eabi-gcc.*not found.*gcc-arm-none-eabi"):
        run_c_directory(compiled["c"], x, "cortex-m4")
    monkeypatch.setitem(sys.modules, "tflite_micro.python.tflite_micro", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(UsageError, match=r"pip install 'microlith\[runtimes\]'"):
        run_tflite(compiled["tflite"], x)


def test_cli_run_bad_arguments(compiled):
    work = compiled["dir"]
    proc = run("run", compiled["tflite"], "--input", compiled["x"], "--on", "cortex-m4",
               cwd=work)
    assert proc.returncode == 2 and "compile with --target c" in proc.stderr
    proc = run("run", compiled["c"], "--input", compiled["x"], "-o", "y.txt", cwd=work)
    assert proc.returncode == 2 and "give a .npy" in proc.stderr
    proc = run("run", compiled["c"], "--input", "missing.npy", cwd=work)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "missing.npy" in proc.stderr
