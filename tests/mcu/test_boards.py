"""The ARMv8-M boards: the Cortex-M33 (qemu mps2-an505) and the Cortex-M55 (mps3-an547).

They have their own memory maps (Secure aliases, the M55's ITCM and QSPI flash) and
timers (the M33's dual timer on a 20 MHz clock, the M55's 64-bit system counter on
32 MHz), so the checks of ``test_board.py`` are repeated there: a naked run of N ``nop``
is counted as exactly N + 2 instructions, the stand-in's outputs are its known
computation, a bus error becomes the HardFault report. Then a zoo model (dscnn: regular,
depthwise and pointwise convolutions, fully connected; the DSP kernels on every DSP
core) gives TFLite-Micro's bytes on every board, and ``microlith run --on cortex-m33``
counts instructions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microlith.app.board.cpus import CPUS
from tests.mcu.test_board import FAULTY, NOPS, STANDIN, _expected, _input, _write_model
from tools.mcu import run as board

V8M = ["cortex-m33", "cortex-m55"]


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    try:
        board.check_toolchain()
    except board.ToolchainMissing as exc:
        pytest.fail(f"{exc} (CI runs tools/mcu/install_toolchain.sh before the tests)")


@pytest.mark.parametrize("cpu", V8M)
def test_counts_are_exact_and_outputs_right(tmp_path: Path, cpu: str) -> None:
    nops = _write_model(tmp_path / "nops", "nops", NOPS)
    for n in (0, 100, 3000):
        result = board.build_and_run(nops, [b"\x00", b"\x01"], prefix="nops", cpu=cpu,
                                     cflags=[f"-DNOPS={n}"])
        assert result.instructions == [n + 2, n + 2], (cpu, n)
    standin = _write_model(tmp_path / "standin", "model", STANDIN)
    inputs = [_input(loops, seed) for seed, loops in enumerate((0, 1000, 3000))]
    result = board.build_and_run(standin, inputs, cpu=cpu)
    assert result.outputs == [_expected(data) for data in inputs]  # .data copy, FPU on
    assert result.build_log == ""
    counts = result.instructions
    assert counts[2] - counts[1] == 4000  # 2 per loop iteration
    # the ticks are the board's clock: 128 ns per instruction at shift 7
    hz = CPUS[cpu].board.timer_hz
    assert abs((result.ticks[2] - result.ticks[1]) - 4000 * 128e-9 * hz) <= 1


@pytest.mark.parametrize("cpu", V8M)
def test_a_bus_error_is_reported_as_a_hardfault(tmp_path: Path, cpu: str) -> None:
    source = FAULTY.replace("0x60000000u", "0xF0000000u")  # unmapped on both
    model = _write_model(tmp_path, "bad", source)
    with pytest.raises(board.BoardFault) as info:
        board.build_and_run(model, [bytes(4)], prefix="bad", cpu=cpu)
    assert info.value.exit_code == 0xF1
    assert "precise data bus error at address 0xf0000000" in str(info.value)
    assert "in bad_invoke (bad.c:" in str(info.value)


@pytest.fixture(scope="module")
def dscnn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """dscnn's C directory, 8 int8 inputs (6 test images, the two saturated ones) and
    TFLite-Micro's outputs on them."""
    from microlith.app.driver import CompileOptions, compile_onnx, write_directory
    from tests.c_end_to_end.c_models import ZOO, samples
    from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

    pytest.importorskip("tflite_micro")
    calibration, test = samples("dscnn")
    common = {"quantize": "int8", "calibration_data": calibration, "quiet": True}
    tflite = compile_onnx(ZOO / "dscnn.onnx", CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(test[:8], input_perm(tflite.graph)), q.scale[0],
                           q.zero_point[0])
    feeds[6], feeds[7] = -128, 127
    want = run_tflm(tflite.output, feeds, flatten=True)
    directory = tmp_path_factory.mktemp("dscnn") / "c"
    write_directory(directory, compile_onnx(ZOO / "dscnn.onnx",
                                            CompileOptions(target="c", **common)).files)
    return directory, feeds, want


@pytest.mark.slow
@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m7", *V8M])
def test_zoo_model_equals_tflm_on_every_board(dscnn: tuple[Path, np.ndarray, np.ndarray],
                                              tmp_path: Path, cpu: str) -> None:
    directory, feeds, want = dscnn
    result = board.build_and_run(directory, [x.tobytes() for x in feeds], cpu=cpu,
                                 workdir=tmp_path)
    got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
    assert np.array_equal(got, want.reshape(got.shape)), cpu
    assert "warning" not in result.build_log, result.build_log
    assert len(set(result.instructions[:6])) == 1  # no data-dependent branches, exact counts
    assert 100_000 < result.instructions[0] < 5_000_000
    main_c = (tmp_path / "main.c").read_text()
    assert f"harness for {CPUS[cpu].machine}" in main_c


@pytest.mark.slow
def test_cli_runs_on_the_cortex_m33(dscnn: tuple[Path, np.ndarray, np.ndarray],
                                    tmp_path: Path) -> None:
    from tests.cli.clikit import run

    directory, feeds, want = dscnn
    np.save(tmp_path / "x.npy", feeds[:2])
    proc = run("run", directory, "--input", tmp_path / "x.npy", "--on", "cortex-m33",
               "-o", "y.npy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "(Cortex-M33 (qemu mps2-an505))" in proc.stdout
    assert "Cortex-M33: " in proc.stdout and "instructions per inference" in proc.stdout
    got = np.load(tmp_path / "y.npy")
    assert np.array_equal(got.reshape(2, -1), want[:2].reshape(2, -1))
