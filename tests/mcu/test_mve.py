"""The Helium (MVE) kernels (``microlith_kernels_mve.h``) on the Cortex-M55 under qemu.

Each case is a one-layer ONNX model whose shape hits one class of the MVE loops: depths not
a multiple of 16 (the predicated VCTP step), unit counts not a multiple of four (the lanes
past the last unit), odd pixel counts (the last block of fewer than four im2col columns),
strides, dilation, padding on every side, input channels not a multiple of four, 1x1
pointwise convolutions (fully connected over the pixels), batches > 1, depthwise channel
counts below, at and beyond 16 (the predicated tail of the 16-channel block) and a depth
multiplier of 2 (the portable kernel). It is compiled to int8 ``.tflite`` and to C; the C is
built for the Cortex-M55 (mps3-an547) three ways -- the MVE kernels, the DSP kernels on the
same core (``-DMLK_NO_MVE``) and ``-DMLK_PORTABLE`` -- and every build's outputs on 12
inputs (random, plus all -128 and all 127) must be TFLite-Micro's bytes. Two paths the
calibrated models do not reach are forced by editing the generated records: no SMLAL table
(``.rq = NULL``: the general MBQM per lane) and activation bounds narrower than int8 (the
VMAX / VMIN clamp); there the portable build of the same edited C is the reference. The
vector requantization is also checked lane by lane against ``mlk_rq`` on random
accumulators and every table the renderer can write.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro")

M55 = "cortex-m55"
BUILDS = {"mve": [], "dsp": ["-DMLK_NO_MVE"], "portable": ["-DMLK_PORTABLE"]}

# name: (input NCHW or (batch, depth), op, attrs, weight shape, relu)
CASES: dict[str, tuple[tuple[int, ...], str, dict[str, object], tuple[int, ...], bool]] = {
    "fc_depth37_units11": ((1, 37), "Gemm", {"transB": 1}, (11, 37), True),
    "fc_depth64_one_unit": ((1, 64), "Gemm", {"transB": 1}, (1, 64), False),
    "fc_depth8_units6": ((1, 8), "Gemm", {"transB": 1}, (6, 8), False),
    "fc_batch3_depth50_units9": ((3, 50), "Gemm", {"transB": 1}, (9, 50), True),
    "conv3x3_c3_odd_out_pad1": ((1, 3, 7, 7), "Conv", {"pads": [1, 1, 1, 1]}, (5, 3, 3, 3),
                                True),
    "conv3x3_stride2_odd_pixels": ((1, 8, 9, 9), "Conv", {"pads": [1, 1, 1, 1],
                                                          "strides": [2, 2]}, (7, 8, 3, 3),
                                   False),
    "conv3x3_dilated_asym_pads": ((1, 4, 8, 7), "Conv", {"pads": [1, 2, 0, 1],
                                                         "dilations": [2, 2]}, (6, 4, 3, 3),
                                  True),
    "conv3x3_c16_depth144": ((1, 16, 6, 5), "Conv", {"pads": [1, 1, 1, 1]}, (8, 16, 3, 3),
                             True),
    "conv5x5_c1": ((1, 1, 10, 10), "Conv", {"pads": [2, 2, 2, 2]}, (4, 1, 5, 5), True),
    "conv3x3_batch2": ((2, 5, 6, 6), "Conv", {"pads": [0, 1, 1, 0]}, (3, 5, 3, 3), False),
    "conv1x1_pointwise_c12": ((1, 12, 5, 6), "Conv", {}, (16, 12, 1, 1), True),
    "conv1x1_pointwise_c40_odd": ((1, 40, 3, 3), "Conv", {}, (13, 40, 1, 1), False),
    "conv1x1_stride2": ((1, 8, 7, 7), "Conv", {"strides": [2, 2]}, (5, 8, 1, 1), False),
    "conv_grouped": ((1, 8, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 2}, (6, 4, 3, 3),
                     False),
    "dw3x3_c12_pad1": ((1, 12, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 12},
                       (12, 1, 3, 3), True),
    "dw3x3_c7_stride2": ((1, 7, 9, 8), "Conv", {"pads": [1, 1, 1, 1], "group": 7,
                                                "strides": [2, 2]}, (7, 1, 3, 3), False),
    "dw3x3_c16": ((1, 16, 5, 5), "Conv", {"pads": [1, 1, 1, 1], "group": 16},
                  (16, 1, 3, 3), False),
    "dw3x3_c21_stride2": ((1, 21, 7, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 21,
                                                  "strides": [2, 2]}, (21, 1, 3, 3), True),
    "dw5x5_c8_pad2": ((1, 8, 7, 7), "Conv", {"pads": [2, 2, 2, 2], "group": 8}, (8, 1, 5, 5),
                      False),
    "dw3x3_c32_dilated": ((1, 32, 9, 9), "Conv", {"pads": [2, 2, 2, 2], "group": 32,
                                                  "dilations": [2, 2]}, (32, 1, 3, 3), True),
    "dw3x3_c6_valid_batch2": ((2, 6, 5, 9), "Conv", {"group": 6}, (6, 1, 3, 3), False),
    "dw3x3_multiplier2": ((1, 3, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 3},
                          (6, 1, 3, 3), True),
}
# (case, forced edit): the edited C against its own portable build
EDITED = {"conv3x3_stride2_odd_pixels": ("rq_null", "narrow"),
          "fc_depth37_units11": ("rq_null", "narrow"),
          "dw3x3_c21_stride2": ("rq_null", "narrow"),
          "conv1x1_pointwise_c40_odd": ("rq_null",)}


def _model(path: Path, name: str) -> Path:
    shape, op, attrs, w_shape, relu = CASES[name]
    rng = np.random.default_rng(sum(name.encode()))
    w = (rng.standard_normal(w_shape) * 0.4).astype(np.float32)
    b = (rng.standard_normal(w_shape[0]) * 0.2).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    out = "y" if not relu else "t"
    nodes = [helper.make_node(op, ["x", "w", "b"], [out], name="layer", **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["t"], ["y"], name="relu"))
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    file = path / f"{name}.onnx"
    onnx.save(model, file)
    return file


def _inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, (n * shape[0], *shape[1:]))
    return x.astype(np.float32)


def _compiled(tmp_path: Path, name: str) -> tuple[Path, list[bytes], np.ndarray]:
    """(C directory, input rows, TFLite-Micro's outputs) of one case."""
    file = _model(tmp_path, name)
    shape = CASES[name][0]
    common = {"quantize": "int8", "calibration_data": _inputs(shape, 32, 1), "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(_inputs(shape, 10, 2), input_perm(tflite.graph)),
                           q.scale[0], q.zero_point[0])
    feeds = np.concatenate([feeds, np.full((2 * shape[0], *feeds.shape[1:]), -128, np.int8)])
    feeds[-shape[0]:] = 127
    feeds = feeds.reshape(-1, *shape[:1], *feeds.shape[1:])  # one model input per inference
    want = run_tflm(tflite.output, feeds.reshape(-1, *feeds.shape[2:]) if shape[0] == 1
                    else feeds, flatten=True)
    c = compile_onnx(file, CompileOptions(target="c", **common))
    directory = tmp_path / "c"
    directory.mkdir()
    for fname, text in c.files.items():
        (directory / fname).write_text(text)
    return directory, [x.tobytes() for x in feeds], want


def _run(directory: Path, rows: list[bytes], cflags: list[str], work: Path) -> np.ndarray:
    result = board.build_and_run(directory, rows, cflags=cflags, cpu=M55, workdir=work)
    assert "warning" not in result.build_log, result.build_log
    return np.stack([np.frombuffer(o, np.int8) for o in result.outputs])


@pytest.mark.parametrize("name", CASES)
def test_mve_dsp_and_portable_equal_tflm_on_the_m55(tmp_path: Path, name: str) -> None:
    directory, rows, want = _compiled(tmp_path, name)
    for label, cflags in BUILDS.items():
        work = tmp_path / f"build_{label}"
        work.mkdir()
        got = _run(directory, rows, cflags, work)
        assert np.array_equal(got, want.reshape(got.shape)), label
