"""The C target with ``--quantize int16x8``: bytes equal TFLite-Micro on our 16x8 ``.tflite``.

Every zoo model whose ops all have 16x8 kernels (the C target is integer-only, so the
models that need ``--fallback float`` are refused, see the last test) is compiled for C
and for TFLite with the same calibration data; the generated C built by host gcc
(``-std=c99 -Wall -Wextra -Werror -pedantic``, ``-O2``, and an AddressSanitizer + UBSan
build for dscnn) gives TFLite-Micro's int16 outputs on all held-out images, and for dscnn
the Cortex-M4 build under qemu (``microlith.app.board``) gives the same bytes on 10 of
them. The 16x8 arena is at most 2.05x the int8 arena.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.diagnostics import MicrolithError
from tests.c_end_to_end.c_models import ZOO, host_build, host_outputs, write_files
from tests.test_int16x8 import compiled, data
from tools.mcu import run as board
from tools.runtimes import run_tflm

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

INTEGER_MODELS = ("lenet", "dscnn", "resnet8", "helper_matmul")


def compile_c16(name: str, mode: str = "int16x8"):
    return compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        target="c", quantize=mode, calibration_data=data(name)[0], quiet=True))


def tflm_and_feeds(name: str) -> tuple[np.ndarray, np.ndarray]:
    m = compiled(name)
    feeds = np.ascontiguousarray(m.feed(data(name)[1]))
    return feeds, run_tflm(m.data, feeds, flatten=True)


@pytest.mark.parametrize("name", INTEGER_MODELS)
def test_c_16x8_host_equals_tflm(name: str, tmp_path) -> None:
    result = compile_c16(name)
    feeds, want = tflm_and_feeds(name)
    builds = ("O2", "sanitize") if name == "dscnn" else ("O2",)
    for build in builds:
        exe = host_build(write_files(tmp_path / build / "gen", result.files),
                         result.graph.inputs[0].name, build, tmp_path / build)
        got = host_outputs(exe, feeds, np.int16)
        assert got.shape == want.shape and np.array_equal(got, want), \
            f"{name} {build}: {int(np.sum(got != want))} output elements differ"


@pytest.mark.parametrize("name", INTEGER_MODELS)
def test_c_16x8_arena_at_most_2_05x_int8(name: str) -> None:
    a16, a8 = compile_c16(name).sizes["arena"], compile_c16(name, "int8").sizes["arena"]
    assert a16 <= 2.05 * a8, (name, a16, a8)


@pytest.mark.slow
def test_c_16x8_cortex_m4_equals_tflm(tmp_path) -> None:
    result = compile_c16("dscnn")
    feeds, want = tflm_and_feeds("dscnn")
    run = board.build_and_run(write_files(tmp_path / "gen", result.files),
                              [x.tobytes() for x in feeds[:10]], opt="-O2",
                              workdir=tmp_path / "board")
    got = np.stack([np.frombuffer(o, np.int16) for o in run.outputs])
    assert np.array_equal(got, want[:10])
    assert "warning" not in run.build_log, run.build_log
    print(f"\ndscnn 16x8 Cortex-M4 -O2: text={run.text} bss={run.bss} instructions/inference "
          f"{min(run.instructions)}..{max(run.instructions)}")


def test_c_16x8_refuses_float_fallback() -> None:
    with pytest.raises(MicrolithError, match="integer-only"):
        compile_onnx(ZOO / "mlp_sigmoid.onnx", CompileOptions(
            target="c", quantize="int16x8", fallback="float",
            calibration_data=data("mlp_sigmoid")[0], quiet=True))
