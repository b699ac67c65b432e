"""The C target on the host and on the board (the suite is described in ``c_models``).

* host: the generated directory plus ``c_models.HOST_MAIN`` build with strict warnings
  at ``-O2`` and ``-Os``; the output bytes equal TFLite-Micro and our integer
  interpreter on 450 held-out images plus 50 stress inputs; an AddressSanitizer + UBSan
  build runs clean on the same 500; ``--io-dtype uint8`` and ``float32`` interfaces
  equal TFLite-Micro too;
* board: the same C, cross-compiled for Cortex-M4 by ``tools.mcu.run.build_and_run``,
  gives the host's bytes under qemu on 20 inputs; the ``arm-none-eabi-size`` figures
  are printed (``bss`` holds the arena, the weights are in ``text``). The slow case
  (``@pytest.mark.slow``, still run in CI) repeats the board check at ``-Os``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from tests.c_end_to_end.c_models import (
    BUILDS,
    MODELS,
    N_TEST,
    ZOO,
    CModel,
    first_difference,
    host_build,
    host_outputs,
    model_host_outputs,
    parallel,
    samples,
    stress_inputs,
    value_of,
    write_files,
)
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

BOARD_ROWS = [*range(10), *range(N_TEST, N_TEST + 10)]  # 10 test images, 10 stress inputs


@pytest.fixture(scope="module")
def host(models: dict[str, CModel], tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, object]:
    """(model, build) -> outputs on the test inputs (or the exception), built in parallel."""
    root = tmp_path_factory.mktemp("host")

    def job(name: str, build: str) -> Callable[[], np.ndarray]:
        return lambda: model_host_outputs(models[name], build, root / f"{name}_{build}")

    return parallel({f"{name}-{build}": job(name, build) for name in MODELS for build in BUILDS})


# --------------------------------------------------------------------------- host builds


@pytest.mark.parametrize("build", ["O2", "Os"])
@pytest.mark.parametrize("name", MODELS)
def test_host_c_equals_tflm_and_interpreter(models: dict[str, CModel], host: dict[str, object],
                                            name: str, build: str) -> None:
    m = models[name]
    got = value_of(host[f"{name}-{build}"])
    assert got.shape == m.tflm.shape
    assert np.array_equal(m.interpreter, m.tflm), \
        f"{name}: interpreter vs TFLite-Micro: {first_difference(m.interpreter, m.tflm)}"
    assert np.array_equal(got, m.tflm), \
        f"{name} -{build}: C vs TFLite-Micro: {first_difference(got, m.tflm)}"


@pytest.mark.parametrize("name", MODELS)
def test_sanitizers_run_clean(models: dict[str, CModel], host: dict[str, object],
                              name: str) -> None:
    got = value_of(host[f"{name}-sanitize"])  # a finding exits non-zero with a report
    assert np.array_equal(got, models[name].tflm)


@pytest.mark.parametrize("io_dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", ["lenet", "mlp_sigmoid"])
def test_interface_dtypes(tmp_path: Path, name: str, io_dtype: str) -> None:
    """``--io-dtype uint8|float32``: the C's quantize / requantize edges equal TFLite-Micro."""
    calibration, x_test = samples(name)
    options = {"quantize": "int8", "calibration_data": calibration, "quiet": True,
               "io_dtype": io_dtype}
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(target="c", **options))
    tflite = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(**options)).output
    graph = result.graph
    physical = to_physical(x_test[:100], input_perm(graph))
    if io_dtype == "float32":
        noise = np.random.default_rng(3).standard_normal((20, *physical.shape[1:])) * 4
        feeds = np.concatenate([physical, noise.astype(np.float32)])
    else:
        quant = graph.inputs[0].quant
        stress = stress_inputs(physical.shape[1:]).view(np.uint8).copy()
        stress[0], stress[1] = 0, 255
        feeds = np.concatenate([quantize_input(physical, quant.scale[0], quant.zero_point[0],
                                               "uint8"), stress])
    assert graph.inputs[0].dtype.numpy == np.dtype(io_dtype)
    want = run_tflm(tflite, feeds, flatten=True)
    directory = write_files(tmp_path / "out", result.files)
    exe = host_build(directory, graph.inputs[0].name, "O2", tmp_path / "build")
    got = host_outputs(exe, feeds, want.dtype)
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), \
        first_difference(got.view(np.uint8), want.view(np.uint8))


# --------------------------------------------------------------------------- Cortex-M4


@pytest.fixture(scope="module")
def boards(models: dict[str, CModel], host: dict[str, object],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Model -> the board run at -O2 (RunResult, or the exception)."""
    root = tmp_path_factory.mktemp("board")
    return parallel({name: functools.partial(
        board.build_and_run, models[name].directory,
        [x.tobytes() for x in models[name].feeds[BOARD_ROWS]], opt="-O2",
        workdir=root / name) for name in MODELS})


def check_board(m: CModel, result: board.RunResult, opt: str) -> None:
    got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
    want = m.tflm[BOARD_ROWS]
    assert np.array_equal(got, want), \
        f"{m.name} {opt}: board vs host/TFLite-Micro: {first_difference(got, want)}"
    assert "warning" not in result.build_log, result.build_log
    arena = m.plan.arena_size
    print(f"\n{m.name} Cortex-M4 {opt}: text={result.text} data={result.data} "
          f"bss={result.bss} (arena {arena}, weights {m.result.sizes['weights']}); "
          f"instructions/inference {min(result.instructions)}..{max(result.instructions)}")
    assert result.text > 0 and result.bss > 0 and result.data >= 0
    assert result.bss >= arena > 0, "the arena must be zero-initialised RAM (.bss)"
    assert result.text >= m.result.sizes["weights"], "the weights must be in flash (text)"
    assert result.data < m.result.sizes["weights"], "the weights must not be copied to RAM"
    assert all(n > 0 for n in result.instructions)


@pytest.mark.parametrize("name", MODELS)
def test_cortex_m4_equals_host(models: dict[str, CModel], host: dict[str, object],
                               boards: dict[str, object], name: str,
                               record_property: Callable[[str, object], None]) -> None:
    host_o2 = value_of(host[f"{name}-O2"])
    assert np.array_equal(host_o2[BOARD_ROWS], models[name].tflm[BOARD_ROWS])
    result = value_of(boards[name])
    check_board(models[name], result, "-O2")
    record_property("arm_size", {"text": result.text, "data": result.data, "bss": result.bss})


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_cortex_m4_equals_host_at_os(models: dict[str, CModel], tmp_path: Path,
                                     name: str) -> None:
    m = models[name]
    result = board.build_and_run(m.directory, [x.tobytes() for x in m.feeds[BOARD_ROWS]],
                                 opt="-Os", workdir=tmp_path)
    check_board(m, result, "-Os")
