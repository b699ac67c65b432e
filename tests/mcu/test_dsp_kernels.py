"""The Cortex-M DSP kernels (``microlith_kernels_dsp.h``) on the M4 under qemu, per shape class.

Each case is a one-layer ONNX model (a convolution, a depthwise convolution or a fully
connected layer, with a ReLU or not) whose shape hits one class of the kernels' loops:
input channels not a multiple of four (the element-wise im2col path), an odd number of
output channels and of output pixels (the 1x1 tails of the 2x2 blocking), padding on every
side, stride 2, dilation, 1x1 pointwise (a fully connected layer over the pixels) and 1x1
stride 2 (a convolution), depth multipliers, channel counts beyond a multiple
of four in the depthwise kernel, depths with a tail in the fully connected one, grouped
convolutions (portable kernel). It is compiled to int8 ``.tflite`` and to C; the C is built
for the Cortex-M4 twice, with the DSP kernels (``__ARM_FEATURE_DSP``, the default
``select-kernels{optimize=speed}``) and with ``-DMLK_PORTABLE``, and once more with
``--optimize size``; every build's outputs on 12 inputs (random, plus all -128 and all 127)
must be TFLite-Micro's bytes, which our integer interpreter also gives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.app.integer_run import executable
from microlith.interpreter import run_graph
from microlith.passes.select_kernels import depthwise_scratch_bytes
from tests.mcu.one_layer import edited_copy, one_layer_model
from tools.mcu import run as board
from tools.runtimes import input_perm, quantize_input, run_tflm, to_physical

pytest.importorskip("tflite_micro")

# name: (input NCHW, op, attrs, weight shape, relu)
CASES: dict[str, tuple[tuple[int, ...], str, dict[str, object], tuple[int, ...], bool]] = {
    "conv3x3_c3_odd_out_pad1": ((1, 3, 7, 7), "Conv", {"pads": [1, 1, 1, 1]}, (5, 3, 3, 3),
                                True),
    "conv3x3_stride2_odd_pixels": ((1, 8, 9, 9), "Conv", {"pads": [1, 1, 1, 1],
                                                          "strides": [2, 2]}, (7, 8, 3, 3),
                                   False),
    "conv3x3_dilated_asym_pads": ((1, 4, 8, 7), "Conv", {"pads": [1, 2, 0, 1],
                                                         "dilations": [2, 2]}, (6, 4, 3, 3),
                                  True),
    "conv1x1_pointwise": ((1, 12, 5, 6), "Conv", {}, (16, 12, 1, 1), True),
    "conv1x1_stride2": ((1, 8, 7, 7), "Conv", {"strides": [2, 2]}, (5, 8, 1, 1), False),
    "conv1x1_depth_tail": ((1, 6, 3, 5), "Conv", {}, (3, 6, 1, 1), False),
    "conv5x5_c1": ((1, 1, 10, 10), "Conv", {"pads": [2, 2, 2, 2]}, (4, 1, 5, 5), True),
    # the int8 window gather (in_c % 4 != 0): dilated taps one by one, rows wholly outside
    # the image (pad 2 at dilation 2), a window clipped on both sides (width 3 < 3 taps x 3)
    "conv3x3_c3_dilated_stride2": ((1, 3, 9, 3), "Conv", {"pads": [2, 3, 2, 3],
                                                          "dilations": [2, 3],
                                                          "strides": [2, 1]}, (5, 3, 3, 3),
                                   False),
    "conv3x3_c6_stride2": ((1, 6, 9, 8), "Conv", {"pads": [1, 1, 1, 1], "strides": [2, 2]},
                           (4, 6, 3, 3), True),
    "conv_grouped": ((1, 8, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 2}, (6, 4, 3, 3),
                     False),
    "dw3x3_c12_pad1": ((1, 12, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 12},
                       (12, 1, 3, 3), True),
    "dw3x3_c7_stride2": ((1, 7, 9, 8), "Conv", {"pads": [1, 1, 1, 1], "group": 7,
                                                "strides": [2, 2]}, (7, 1, 3, 3), False),
    "dw5x5_c8_pad2": ((1, 8, 7, 7), "Conv", {"pads": [2, 2, 2, 2], "group": 8}, (8, 1, 5, 5),
                      False),
    "dw3x3_c6_valid_odd_width": ((1, 6, 5, 9), "Conv", {"group": 6}, (6, 1, 3, 3), False),
    "dw3x3_c8_dilated": ((1, 8, 9, 9), "Conv", {"pads": [2, 2, 2, 2], "group": 8,
                                                "dilations": [2, 2]}, (8, 1, 3, 3), True),
    "dw3x3_multiplier2": ((1, 3, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 3},
                          (6, 1, 3, 3), True),
    # the 3-wide depthwise kernel through transposed rows (microlith_kernels_dsp_dw3.h):
    # stride 2 with an odd width, rows wholly outside the image (pad 2), a 5-tall filter,
    # stride 2 down only, stride 3 down (rows skipped), VALID with an odd output width
    # (narrower rows than select_kernels.DW3_MIN_OUT_W run the kernel without scratch)
    "dw3x3_c8_stride2_odd_width": ((1, 8, 9, 13), "Conv", {"pads": [1, 1, 1, 1], "group": 8,
                                                          "strides": [2, 2]}, (8, 1, 3, 3),
                                   True),
    "dw3x3_c4_pad2": ((1, 4, 5, 6), "Conv", {"pads": [2, 2, 2, 2], "group": 4}, (4, 1, 3, 3),
                      False),
    "dw5x3_c8_asym_pads": ((1, 8, 8, 6), "Conv", {"pads": [2, 0, 2, 1], "group": 8},
                           (8, 1, 5, 3), False),
    "dw3x3_c16_stride_h2": ((1, 16, 7, 5), "Conv", {"pads": [1, 1, 1, 1], "group": 16,
                                                    "strides": [2, 1]}, (16, 1, 3, 3), True),
    "dw3x3_c4_stride3x2": ((1, 4, 10, 13), "Conv", {"pads": [0, 0, 1, 1], "group": 4,
                                                   "strides": [3, 2]}, (4, 1, 3, 3), False),
    "dw3x3_c8_valid_odd_width": ((1, 8, 6, 9), "Conv", {"group": 8}, (8, 1, 3, 3), False),
    "fc_odd_units_depth_tail": ((1, 37), "Gemm", {"transB": 1}, (11, 37), True),
    "fc_one_unit": ((1, 64), "Gemm", {"transB": 1}, (1, 64), False),
}


def _model(path: Path, name: str) -> Path:
    return one_layer_model(path, name, CASES[name])


def _inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (n, *shape[1:])).astype(np.float32)


@pytest.mark.parametrize("name", CASES)
def test_dsp_and_portable_kernels_equal_tflm_on_the_m4(tmp_path: Path, name: str) -> None:
    file = _model(tmp_path, name)
    shape = CASES[name][0]
    calibration = _inputs(shape, 32, 1)
    common = {"quantize": "int8", "calibration_data": calibration, "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(_inputs(shape, 10, 2), input_perm(tflite.graph)),
                           q.scale[0], q.zero_point[0])
    feeds = np.concatenate([feeds, np.full((2, *feeds.shape[1:]), -128, np.int8)])
    feeds[-1] = 127
    want = run_tflm(tflite.output, feeds, flatten=True)
    ours = run_graph(executable(tflite.graph), {tflite.graph.inputs[0].name: feeds})
    assert np.array_equal(np.asarray(next(iter(ours.values()))).reshape(want.shape), want)
    rows = [x.tobytes() for x in feeds]
    for optimize in ("speed", "size"):
        c = compile_onnx(file, CompileOptions(target="c", optimize=optimize, **common))
        directory = tmp_path / f"c_{optimize}"
        directory.mkdir()
        for fname, text in c.files.items():
            (directory / fname).write_text(text)
        scratch = c.graph.meta["memory_plan"].scratch
        uses = any(n.op == "c.conv_2d" and n.params.groups == 1 or
                   n.op == "c.depthwise_conv_2d" and depthwise_scratch_bytes(n.params)
                   for n in c.graph.nodes)
        assert bool(scratch) == (uses and optimize == "speed"), scratch
        builds = [[], ["-DMLK_PORTABLE"]] if optimize == "speed" else [[]]
        for cflags in builds:
            result = board.build_and_run(directory, rows, cflags=cflags)
            got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
            assert np.array_equal(got, want.reshape(got.shape)), (optimize, cflags)
            assert "warning" not in result.build_log, result.build_log


@pytest.mark.parametrize("name,edit", [(n, e) for n in ("dw3x3_c8_valid_odd_width",
                                                          "dw3x3_c8_stride2_odd_width")
                                       for e in ("rq_null", "narrow")])
def test_dsp_depthwise3_general_requantization_and_narrow_bounds(tmp_path: Path, name: str,
                                                                 edit: str) -> None:
    """The 3-wide depthwise kernel (four, two and one pixels a step, stride 1 and 2) without
    the SMMLAR table (the general MBQM) and with activation bounds narrower than int8: DSP ==
    portable == TFLite-Micro (clipped to the bounds) on the same edited C."""
    file = _model(tmp_path, name)
    shape = CASES[name][0]
    common = {"quantize": "int8", "calibration_data": _inputs(shape, 32, 1), "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(_inputs(shape, 6, 2), input_perm(tflite.graph)),
                           q.scale[0], q.zero_point[0])
    want = run_tflm(tflite.output, feeds, flatten=True)
    want = want if edit == "rq_null" else np.clip(want, -100, 90)
    c = compile_onnx(file, CompileOptions(target="c", **common))
    assert c.graph.meta["memory_plan"].scratch
    directory = tmp_path / "c"
    directory.mkdir()
    for fname, text in c.files.items():
        (directory / fname).write_text(text)
    edited = edited_copy(directory, edit, tmp_path)
    for cflags in ([], ["-DMLK_PORTABLE"]):
        result = board.build_and_run(edited, [x.tobytes() for x in feeds],
                                     cflags=[*cflags, "-Wno-unused-const-variable"])
        got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
        assert np.array_equal(got, want.reshape(got.shape)), cflags


def test_cli_optimize_speed_plans_scratch_and_size_none(tmp_path: Path) -> None:
    import subprocess
    import sys

    file = _model(tmp_path, "conv3x3_c3_odd_out_pad1")
    data = tmp_path / "calib.npy"
    np.save(data, _inputs(CASES["conv3x3_c3_odd_out_pad1"][0], 16, 1))
    outputs = {}
    for optimize in ("speed", "size"):
        out = tmp_path / optimize
        proc = subprocess.run([sys.executable, "-m", "microlith", "compile", str(file),
                               "--target", "c", "--quantize", "int8", "--calibration-data",
                               str(data), "--optimize", optimize, "-o", str(out)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        outputs[optimize] = proc.stdout
        inspect = subprocess.run([sys.executable, "-m", "microlith", "inspect", str(out)],
                                 capture_output=True, text=True, check=True).stdout
        assert ("scratch for layer: offset" in inspect) == (optimize == "speed"), inspect
    # 3x3 filter over 3 channels: three int16 columns of 27 elements
    assert "kernel scratch 162)" in outputs["speed"]
    assert "kernel scratch 0)" in outputs["size"]
    proc = subprocess.run([sys.executable, "-m", "microlith", "compile", str(file), "--target",
                           "c", "--quantize", "int8", "--calibration-data", str(data),
                           "--optimize", "fast", "-o", str(tmp_path / "bad")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--optimize" in proc.stderr
    assert not (tmp_path / "bad").exists()


MBQM_CHECK = r"""
#include <stdio.h>
#include "microlith_kernels.h"

int main(void)
{
    static const int32_t edges[] = {0, 1, -1, 2, -2, 3, -3, INT32_MAX, INT32_MIN,
                                    INT32_MIN + 1, INT32_MAX - 1, 1 << 30, -(1 << 30)};
    uint64_t st = 88172645463325252ull;
    long bad = 0, n = 0;
    for (int s = -31; s <= 31; ++s) {
        for (int i = 0; i < 100000; ++i) {
            int32_t x, m;
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            x = i < 13 ? edges[i] : (int32_t)(uint32_t)st;
            if ((i & 3) == 1) {
                x /= 1 << ((st >> 40) & 30);
            }
            m = (int32_t)((1u << 30) | ((uint32_t)(st >> 32) & 0x3FFFFFFFu));
            m = i == 20 ? 0 : i == 21 ? INT32_MAX : i == 22 ? 1 << 30 : m;
            ++n;
            bad += mlk_mbqm(x, m, s) != mlk_mbqm_pos(x, m, s);
        }
    }
    printf("%ld %ld\n", n, bad);
    return 0;
}
"""


def test_the_dsp_requantization_equals_mbqm(tmp_path: Path) -> None:
    """``mlk_mbqm_pos`` (one SMLAL) equals ``mlk_mbqm`` for every multiplier >= 0."""
    import subprocess

    from microlith.backends.c.emitter import kernel_headers

    for name, text in kernel_headers().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "check.c").write_text(MBQM_CHECK)
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path),
                    str(tmp_path / "check.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["6300000", "0"]


def test_the_smmlar_requantization_table_equals_mbqm() -> None:
    """``requant_table``'s constants, evaluated as ``mlk_rq`` does (hi = a + half + (a >> 31),
    the high word of hi 2^32 + 2^31 + a m2 (SMMLAR), then >> r), give y_zp + MBQM for multipliers in
    [2^30, 2^31) and 0, right shifts 1..31, accumulators up to the bound; layers outside
    (a left shift, a too large bound, a zero multiplier with a zero point) get no table."""
    from microlith.backends.c.render_nn import requant_table
    from microlith.quant.fixed_point import multiply_by_quantized_multiplier as mbqm

    rng = np.random.default_rng(5)
    bound = 1 << 20
    acc = np.concatenate([[0, 1, -1, 2, -2, bound - 1, 1 - bound],
                          rng.integers(-bound, bound, 4000), rng.integers(-512, 512, 2000)])
    cases = (  # (multipliers, right shifts, y_zp)
        (np.concatenate([[0, 1 << 30, (1 << 31) - 1], rng.integers(1 << 30, 1 << 31, 40)]),
         np.concatenate([[1, 31, 7], rng.integers(1, 32, 40)]), 0),
        (np.concatenate([[1 << 30, (1 << 31) - 1], rng.integers(1 << 30, 1 << 31, 30)]),
         np.concatenate([[1, 22], rng.integers(1, 23, 30)]), -128),
        (rng.integers(1 << 30, 1 << 31, 20), rng.integers(1, 20, 20), 37))
    for mult, right, y_zp in cases:
        table = requant_table(mult, -right, bound, y_zp)
        assert table is not None
        m2, half, r = (table.reshape(-1, 3)[:, i].astype(np.int64) for i in range(3))
        for c in range(mult.size):
            hi = acc + half[c] + (acc >> 31)
            v = (hi << 32) + (1 << 31) + acc * m2[c]  # exact in int64: |acc m2| < 2^52
            want = mbqm(acc, int(mult[c]), -int(right[c])) + y_zp
            assert np.array_equal((v >> 32) >> r[c], want), (y_zp, c)
    mult, right = cases[0][0], cases[0][1]
    assert requant_table(mult, np.zeros_like(right), bound) is None  # no right shift
    assert requant_table(mult, -right, (1 << 31) - 3) is None  # h + half could wrap
    assert requant_table(mult, -right, bound, 3) is None  # a zero multiplier, y_zp != 0
    assert requant_table(mult[1:], -right[1:], bound, -128) is None  # r = 31: y_zp 2^r wraps


@pytest.mark.parametrize("cpu", ["cortex-m7", "cortex-m3"])
def test_other_cores_give_the_same_bytes(tmp_path: Path, cpu: str) -> None:
    """The same C on the Cortex-M7 (mps2-an500, DSP kernels) and the Cortex-M3 (mps2-an385,
    no DSP extension: the portable kernels) equals TFLite-Micro, for a convolution, a
    depthwise convolution with a channel tail and a fully connected layer."""
    from microlith.app.board.cpus import CPUS

    for name in ("conv3x3_stride2_odd_pixels", "dw3x3_c7_stride2", "fc_odd_units_depth_tail"):
        file = _model(tmp_path, name)
        shape = CASES[name][0]
        common = {"quantize": "int8", "calibration_data": _inputs(shape, 32, 1), "quiet": True}
        tflite = compile_onnx(file, CompileOptions(**common))
        q = tflite.graph.inputs[0].quant
        feeds = quantize_input(to_physical(_inputs(shape, 4, 2), input_perm(tflite.graph)),
                               q.scale[0], q.zero_point[0])
        want = run_tflm(tflite.output, feeds, flatten=True)
        c = compile_onnx(file, CompileOptions(target="c", **common))
        directory = tmp_path / f"c_{name}"
        directory.mkdir()
        for fname, text in c.files.items():
            (directory / fname).write_text(text)
        result = board.build_and_run(directory, [x.tobytes() for x in feeds], cpu=cpu,
                                     workdir=tmp_path / f"build_{name}")
        got = np.stack([np.frombuffer(o, np.int8) for o in result.outputs])
        assert np.array_equal(got, want.reshape(got.shape)), (cpu, name)
        assert "warning" not in result.build_log, result.build_log
        # the DSP kernels are compiled exactly where the core has the extension (the
        # convolution's long dot products are out of line, mlk_dsp_dot2x2_call; the fully
        # connected and depthwise kernels are all inline)
        symbols = subprocess_nm(result.elf)
        dsp_symbols = any("mlk_dsp" in s for s in symbols)
        assert dsp_symbols == (CPUS[cpu].dsp and name.startswith("conv")), symbols


def subprocess_nm(elf: Path) -> list[str]:
    import subprocess

    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[-1] for line in out.splitlines() if line.strip()]
