"""``--optimize size`` on the Cortex-M4: the portable kernels, at most 1.1x the portable
build's flash (it is that build: 1.00x), the same bytes as TFLite-Micro.

dscnn (regular, depthwise and pointwise convolutions, fully connected) is compiled at
speed and at size; the size build's ``model.o`` (text + data, ``arm-none-eabi-size``) is
compared with the speed build compiled ``-DMLK_PORTABLE``, at ``-Os`` and ``-O2``, and
with the DSP speed build (which must stay larger: the DSP kernels are the flash the size
mode saves).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx, write_directory
from tools.mcu import run as board

pytest.importorskip("tflite_micro")


def _flash(obj: Path) -> int:
    out = subprocess.run([board.SIZE, str(obj)], capture_output=True, text=True, check=True)
    text, data = (int(v) for v in out.stdout.splitlines()[-1].split()[:2])
    return text + data


@pytest.mark.slow
def test_size_mode_is_the_portable_build(tmp_path: Path) -> None:
    from tests.c_end_to_end.c_models import ZOO, samples
    from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

    calibration, test = samples("dscnn")
    common = {"quantize": "int8", "calibration_data": calibration, "quiet": True}
    tflite = compile_onnx(ZOO / "dscnn.onnx", CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(test[:3], input_perm(tflite.graph)), q.scale[0],
                           q.zero_point[0])
    want = run_tflm(tflite.output, feeds, flatten=True)
    for mode in ("speed", "size"):
        write_directory(tmp_path / mode, compile_onnx(ZOO / "dscnn.onnx", CompileOptions(
            target="c", optimize=mode, **common)).files)
    assert "#define MLK_PORTABLE 1" in (tmp_path / "size" / "model.c").read_text()
    assert "MLK_PORTABLE" not in (tmp_path / "speed" / "model.c").read_text()
    for opt in ("-Os", "-O2"):
        flash = {}
        for label, mode, flags in (("size", "size", []), ("dsp", "speed", []),
                                   ("portable", "speed", ["-DMLK_PORTABLE"])):
            work = tmp_path / f"{label}{opt}"
            run = board.build_and_run(tmp_path / mode, [x.tobytes() for x in feeds], opt=opt,
                                      cflags=flags, workdir=work)
            got = np.stack([np.frombuffer(o, np.int8) for o in run.outputs])
            assert np.array_equal(got, want.reshape(got.shape)), (label, opt)
            flash[label] = _flash(work / "00_model.o")
        assert flash["size"] <= 1.1 * flash["portable"], (opt, flash)
        assert flash["dsp"] > 1.1 * flash["portable"], (opt, flash)
