"""The DSP pools (``microlith_kernels_dsp_pool.h``) give the portable pools' bytes,
TFLite-Micro's and our integer interpreter's on the Cortex-M4, for every shape class, and
take fewer instructions.

int8 AVERAGE_POOL_2D sums eight channels a pass in int16 lanes (SXTAB16), chunked at 256
taps a lane; MAX_POOL_2D keeps four channels a word (SSUB8 + SEL); the 16x8 pools use two
int16 channels a word (SSUB16 + SEL for the maximum, int32 sums for the average). Each case
is one pooling layer: SAME windows clipped at the borders, VALID, a counted border
(``count_include_pad``: PAD + VALID pool in the ``.tflite``), strides, channel tails (not
a multiple of 8, 4 or 2), a batch of two, a fused activation narrower than the type, the
MLPerf global pools (8x8, 25x5, 3x3) and windows at and past the 256-tap lane limit
(whole-width windows are one run of taps; narrower ones are chunked by rows, a row of more
than 256 taps within the row). Inputs: all at the type's minimum, all at its maximum (the
extremes of the lane range), then random. Built three ways -- DSP,
``-DMLK_PORTABLE_POOL`` (the portable pools on the M4), ``-DMLK_PORTABLE``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx, write_directory
from microlith.interpreter import run_graph
from tools.mcu import run as board
from tools.runtimes import tflm_interpreter, tflm_invoke

pytest.importorskip("tflite_micro")

FLAGS = {"dsp": [], "portable-pool": ["-DMLK_PORTABLE_POOL"], "portable": ["-DMLK_PORTABLE"]}

# name: (input NCHW, ONNX op, attributes, Clip(0, 6) after the pool: fused, narrowing the
# range at both ends). int8 cases are Q/DQ models (scale 0.05, zero point 3: no calibration,
# so the "_batch2" cases keep a batch of two); int16 ones are calibrated (batch 1).
CASES: dict[str, tuple[list[int], str, dict[str, object], bool]] = {
    "avg3x3_s2_same_c10": ([1, 10, 9, 11], "AveragePool",
                           {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
                           False),
    "avg2x2_valid_c4_batch2": ([2, 4, 8, 6], "AveragePool",
                               {"kernel_shape": [2, 2], "strides": [2, 2]}, False),
    "avg3x3_valid_c7": ([1, 7, 6, 7], "AveragePool", {"kernel_shape": [3, 3]}, False),
    "avg3x3_border_c13": ([1, 13, 5, 7], "AveragePool",
                          {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                           "count_include_pad": 1}, False),
    "avg2x3_s1x2_clip_c6": ([1, 6, 7, 8], "AveragePool",
                            {"kernel_shape": [2, 3], "strides": [1, 2]}, True),
    "gap8x8_c64": ([1, 64, 8, 8], "AveragePool", {"kernel_shape": [8, 8]}, False),
    "gap25x5_c20": ([1, 20, 25, 5], "AveragePool", {"kernel_shape": [25, 5]}, False),
    "gap3x3_c36": ([1, 36, 3, 3], "AveragePool", {"kernel_shape": [3, 3]}, False),
    "gap16x16_c8_lane_limit": ([1, 8, 16, 16], "AveragePool", {"kernel_shape": [16, 16]},
                               False),
    "gap20x20_c12_two_runs": ([1, 12, 20, 20], "AveragePool", {"kernel_shape": [20, 20]},
                              False),
    "avg17x16_c9_row_chunks": ([1, 9, 20, 20], "AveragePool",
                               {"kernel_shape": [17, 16], "strides": [3, 4]}, False),
    "avg1x300_c4_row_split": ([1, 4, 2, 310], "AveragePool",
                              {"kernel_shape": [1, 300], "strides": [1, 10]}, False),
    "max3x3_s2_same_c13": ([1, 13, 9, 11], "MaxPool",
                           {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
                           False),
    "max2x2_valid_c11_batch2": ([2, 11, 8, 6], "MaxPool",
                                {"kernel_shape": [2, 2], "strides": [2, 2]}, False),
    "max2x2_clip_c6": ([1, 6, 6, 8], "MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]},
                       True),
}
INT8 = tuple(CASES)
WIDE = ("avg3x3_s2_same_c10", "avg2x2_valid_c4_batch2", "avg3x3_valid_c7", "avg3x3_border_c13",
        "avg2x3_s1x2_clip_c6", "gap8x8_c64", "gap25x5_c20", "gap20x20_c12_two_runs",
        "avg1x300_c4_row_split", "max3x3_s2_same_c13", "max2x2_valid_c11_batch2",
        "max2x2_clip_c6")


def _shape(name: str, qdq: bool) -> list[int]:
    shape = CASES[name][0]
    if not qdq and name.endswith("_batch2"):
        return [1, shape[1], shape[2] * shape[0], shape[3]]  # stacked, see _batch_of_two
    return shape


def _model(path: Path, name: str, qdq: bool) -> Path:
    """The pool (and its clip) as a float model, or with ``qdq`` between Q/DQ pairs."""
    _, op, attrs, clip = CASES[name]
    shape = _shape(name, qdq)
    nodes = [helper.make_node(op, ["xd" if qdq else "x"], ["p"], **attrs)]
    if clip:
        nodes.append(helper.make_node("Clip", ["p", "lo", "hi"], ["pc"]))
    last = nodes[-1].output[0]
    if qdq:
        nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                 helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]), *nodes,
                 helper.make_node("QuantizeLinear", [last, "s", "z"], ["yq"]),
                 helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    else:
        nodes.append(helper.make_node("Identity", [last], ["y"]))
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(3, np.int8), "z"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    file = path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), file)
    return file


def _batch_of_two(model_c: str) -> str:
    """The 16x8 "_batch2" layers (the calibration needs a batch of one): the record of a
    VALID pool over an image of 2H rows, H a multiple of the stride, rewritten as a batch of
    two images of H rows -- no window straddles the seam, so the bytes are the same."""
    record = re.compile(r"(\.batches = )1,(.*?)(\.in_h = )(\d+),(.*?)(\.out_h = )(\d+),", re.S)
    match = record.search(model_c)
    assert match, "no pool record"
    text = (f"{match[1]}2,{match[2]}{match[3]}{int(match[4]) // 2},{match[5]}"
            f"{match[6]}{int(match[7]) // 2},")
    return model_c[:match.start()] + text + model_c[match.end():]


def _check(tmp: Path, name: str, quantize: str) -> dict[str, int]:
    """Every build's bytes equal TFLite-Micro's and the interpreter's; the instructions of
    the first (all-minimum) inference per build."""
    wide = quantize == "int16x8"
    dtype = np.int16 if wide else np.int8
    rng = np.random.default_rng(len(name))
    file = _model(tmp, name, qdq=not wide)
    common: dict[str, object] = {"quiet": True}
    if wide:
        shape = _shape(name, qdq=False)
        scale = 8.0 if CASES[name][3] else 1.0  # the clip to [0, 6] narrows both ends
        common |= {"quantize": quantize, "calibration_data":
                   rng.uniform(-scale, scale, (16, 1, *shape[1:])).astype(np.float32)}
    tflite = compile_onnx(file, CompileOptions(**common))
    info = np.iinfo(dtype)
    physical = list(tflite.graph.inputs[0].type.shape)
    feeds = [np.full(physical, info.min, dtype), np.full(physical, info.max, dtype),
             rng.integers(info.min, info.max + 1, physical).astype(dtype),
             rng.integers(info.min // 4, info.max // 4, physical).astype(dtype)]
    interp = tflm_interpreter(tflite.output)
    want = [tflm_invoke(interp, f).reshape(-1).copy() for f in feeds]
    graph = tflite.graph
    ours = [np.asarray(run_graph(graph, {graph.inputs[0].name: f})[graph.outputs[0].name])
            .reshape(-1) for f in feeds]
    for w, o in zip(want, ours, strict=True):
        assert np.array_equal(w, o), f"{name}: interpreter"
    result = compile_onnx(file, CompileOptions(target="c", **common))
    write_directory(tmp / "c", result.files)
    model_c = (tmp / "c" / "model.c").read_text()
    assert ".batches = 2," in model_c if not wide and name.endswith("_batch2") else True
    if wide and name.endswith("_batch2"):
        (tmp / "c" / "model.c").write_text(_batch_of_two(model_c))
    counts = {}
    for label, flags in FLAGS.items():
        run = board.build_and_run(tmp / "c", [f.tobytes() for f in feeds], cflags=flags,
                                  workdir=tmp / label)
        assert "warning" not in run.build_log, run.build_log
        for i, (out, w) in enumerate(zip(run.outputs, want, strict=True)):
            assert np.array_equal(np.frombuffer(out, dtype), w), f"{name} {label} input {i}"
        counts[label] = run.instructions[0]
    print(name, quantize, counts)
    return counts


@pytest.mark.slow
@pytest.mark.parametrize("name", INT8)
def test_int8_pools_equal_tflm(tmp_path: Path, name: str) -> None:
    counts = _check(tmp_path, name, "int8")
    assert counts["dsp"] < counts["portable-pool"], counts


@pytest.mark.slow
@pytest.mark.parametrize("name", WIDE)
def test_int16_pools_equal_tflm(tmp_path: Path, name: str) -> None:
    counts = _check(tmp_path, name, "int16x8")
    _, op, attrs, _ = CASES[name]
    if op == "AveragePool" and np.prod(attrs["kernel_shape"]) < 8:  # the portable kernel
        assert counts["dsp"] == counts["portable-pool"], counts  # (MLK_DSP_POOL_I16_AVG_TAPS)
    else:
        assert counts["dsp"] < counts["portable-pool"], counts

