"""The 16x8 DSP kernels (``microlith_kernels_dsp_wide.h``: CONV_2D with one group,
DEPTHWISE_CONV_2D and FULLY_CONNECTED, int16 activations x int8 weights with SMLAD and the
halfword multiply-accumulates) give the portable 16x8 C's
bytes and TFLite-Micro's, on the Cortex-M4 under qemu.

* zoo models compiled ``--quantize int16x8``: lenet (5x5 filters of 25 and 150 elements:
  the stack column), resnet8 (3x3x32 = 288 elements: the per-row runs) and their fully
  connected layers, dscnn and mobilenet_v1 (their depthwise layers), DSP build ==
  ``-DMLK_PORTABLE`` build == TFLite-Micro;
* single layers built to overflow a 32-bit accumulator: every weight of a channel at the
  int8 maximum and the input at the int16 minimum make each product 2^22 in magnitude, so
  a 3x3x64 filter (576 products, over 2^31) or a 700-deep fully connected layer is exact
  only with the int64 sum of 508-product chunks, and so is a 23x23 depthwise window (529
  taps, added to int64 after each filter row); odd channel counts, dilation and
  padding reach the tails and the taps outside the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx, write_directory
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro")


def _board_pair(directory: Path, feeds: np.ndarray, tmp: Path) -> tuple[np.ndarray, ...]:
    """(DSP outputs, portable outputs, DSP instructions, portable instructions) on the M4."""
    out = []
    for label, flags in (("dsp", []), ("portable", ["-DMLK_PORTABLE"])):
        run = board.build_and_run(directory, [x.tobytes() for x in feeds], cflags=flags,
                                  workdir=tmp / label)
        assert "warning" not in run.build_log, run.build_log
        out.append((np.stack([np.frombuffer(o, np.int16) for o in run.outputs]),
                    run.instructions[0]))
    return out[0][0], out[1][0], out[0][1], out[1][1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lenet", "resnet8", "dscnn", "mobilenet_v1"])
def test_zoo_16x8_dsp_equals_portable_and_tflm(tmp_path: Path, name: str) -> None:
    from tests.c_end_to_end.test_c_int16x8 import compile_c16, tflm_and_feeds

    result = compile_c16(name)
    feeds, want = tflm_and_feeds(name)
    feeds, want = feeds[:4], want[:4]
    write_directory(tmp_path / "c", result.files)
    dsp, portable, n_dsp, n_portable = _board_pair(tmp_path / "c", feeds, tmp_path)
    assert np.array_equal(portable, want.reshape(portable.shape))
    assert np.array_equal(dsp, want.reshape(dsp.shape))
    # measured: lenet 0.60, resnet8 0.56, dscnn 0.64, mobilenet_v1 0.73
    assert n_dsp < 0.8 * n_portable, (n_dsp, n_portable)


def _layer(path: Path, kind: str, x_shape: list[int], w: np.ndarray, **attrs: object) -> Path:
    b = np.linspace(-0.5, 0.5, w.shape[0]).astype(np.float32)
    op = "Conv" if kind == "conv" else "Gemm"
    extra = {"transB": 1} if kind == "fc" else attrs
    node = helper.make_node(op, ["x", "w", "b"], ["y"], **extra)
    graph = helper.make_graph(
        [node], kind, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    file = path / f"{kind}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), file)
    return file


CASES = {
    # name: (kind, input shape, weight shape, attributes)
    "conv3x3_c64_long": ("conv", [1, 64, 5, 5], (6, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
    "conv3x3_c5_dilated": ("conv", [1, 5, 9, 8], (7, 5, 3, 3),
                           {"pads": [2, 1, 2, 1], "dilations": [2, 2], "strides": [1, 2]}),
    "conv5x5_c3_stack": ("conv", [1, 3, 8, 8], (5, 3, 5, 5), {"pads": [2, 2, 2, 2]}),
    "fc_700": ("fc", [1, 700], (9, 700), {}),
    "dw3x3_c8_strided": ("conv", [1, 8, 7, 6], (8, 1, 3, 3),
                         {"group": 8, "pads": [1, 1, 1, 1], "strides": [2, 1]}),
    "dw3x3_c6_dilated_tail": ("conv", [1, 6, 9, 9], (6, 1, 3, 3),
                              {"group": 6, "pads": [2, 1, 2, 1], "dilations": [2, 2]}),
    "dw23x23_c4_long": ("conv", [1, 4, 24, 23], (4, 1, 23, 23), {"group": 4}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_layers_at_the_accumulator_bounds(tmp_path: Path, name: str) -> None:
    kind, x_shape, w_shape, attrs = CASES[name]
    rng = np.random.default_rng(len(name))
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    w[0] = 1.0  # channel 0: every weight quantizes to 127
    w[1] = -1.0  # channel 1: every weight -127
    file = _layer(tmp_path, kind, x_shape, w, **attrs)
    calib = rng.uniform(-1, 1, (16, *x_shape[1:])).astype(np.float32)
    common = {"quantize": "int16x8", "calibration_data": calib, "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    x = np.concatenate([np.full((2, *x_shape[1:]), -1.0, np.float32),
                        np.full((1, *x_shape[1:]), 1.0, np.float32),
                        rng.uniform(-1, 1, (2, *x_shape[1:])).astype(np.float32)])
    feeds = quantize_input(to_physical(x, input_perm(tflite.graph)), q.scale[0],
                           q.zero_point[0], np.int16)
    assert feeds.min() <= -32767
    want = run_tflm(tflite.output, feeds, flatten=True)
    write_directory(tmp_path / "c", compile_onnx(file, CompileOptions(target="c",
                                                                      **common)).files)
    dsp, portable, _, _ = _board_pair(tmp_path / "c", feeds, tmp_path)
    assert np.array_equal(portable, want.reshape(portable.shape)), name
    assert np.array_equal(dsp, want.reshape(dsp.shape)), name
