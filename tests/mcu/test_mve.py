"""The Helium (MVE) kernels (``microlith_kernels_mve.h``) on the Cortex-M55 under qemu.

Each case is a one-layer ONNX model whose shape hits one class of the MVE loops: depths not
a multiple of 16 (the predicated VCTP step), unit counts not a multiple of four (the lanes
past the last unit), odd pixel counts (the last block of fewer than four im2col columns),
strides, dilation, padding on every side, input channels not a multiple of four, 1x1
pointwise convolutions (fully connected over the pixels), depthwise channel
counts below, at and beyond 16 (the predicated tail of the 16-channel block) and a depth
multiplier of 2 (the portable kernel). It is compiled to int8 ``.tflite`` and to C; the C is
built for the Cortex-M55 (mps3-an547) three ways -- the MVE kernels, the DSP kernels on the
same core (``-DMLK_NO_MVE``) and ``-DMLK_PORTABLE`` -- and every build's outputs on 12
inputs (random, plus all -128 and all 127) must be TFLite-Micro's bytes. Two paths the
calibrated models do not reach are forced by editing the generated records: no SMMLAR table
(``.rq = NULL``: the general MBQM per lane) and activation bounds narrower than int8 (the
VMAX / VMIN clamp). Batches > 1 (calibration needs batch 1) come from the host kernel
cases (``tests/backends/c/kernel_cases_nn.py``), run on the M55 against our integer
interpreter.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from tests.mcu.one_layer import edited_copy, one_layer_model
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
    "fc_depth50_units9": ((1, 50), "Gemm", {"transB": 1}, (9, 50), True),
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
    "conv3x3_c5_pads_bottom_left": ((1, 5, 6, 6), "Conv", {"pads": [0, 1, 1, 0]},
                                    (3, 5, 3, 3), False),
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
    "dw3x3_c6_valid": ((1, 6, 5, 9), "Conv", {"group": 6}, (6, 1, 3, 3), False),
    "dw3x3_multiplier2": ((1, 3, 6, 6), "Conv", {"pads": [1, 1, 1, 1], "group": 3},
                          (6, 1, 3, 3), True),
}
# (case, forced edit): the edited C against its own portable build
EDITED = {"conv3x3_stride2_odd_pixels": ("rq_null", "narrow"),
          "fc_depth37_units11": ("rq_null", "narrow"),
          "dw3x3_c21_stride2": ("rq_null", "narrow"),
          "conv1x1_pointwise_c40_odd": ("rq_null",)}


def _model(path: Path, name: str) -> Path:
    return one_layer_model(path, name, CASES[name])


def _inputs(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 2.0, (n, *shape[1:])).astype(np.float32)


def _compiled(tmp_path: Path, name: str) -> tuple[Path, list[bytes], np.ndarray]:
    """(C directory, input rows, TFLite-Micro's outputs) of one case."""
    file = _model(tmp_path, name)
    shape = CASES[name][0]
    common = {"quantize": "int8", "calibration_data": _inputs(shape, 32, 1), "quiet": True}
    tflite = compile_onnx(file, CompileOptions(**common))
    q = tflite.graph.inputs[0].quant
    feeds = quantize_input(to_physical(_inputs(shape, 10, 2), input_perm(tflite.graph)),
                           q.scale[0], q.zero_point[0])
    feeds = np.concatenate([feeds, np.full((2, *feeds.shape[1:]), -128, np.int8)])
    feeds[-1] = 127
    want = run_tflm(tflite.output, feeds, flatten=True)
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


# ----------------------------------------------------------------- records edited by hand

@pytest.mark.parametrize("name,edit", [(n, e) for n, edits in EDITED.items() for e in edits])
def test_mve_general_requantization_and_narrow_bounds(tmp_path: Path, name: str,
                                                      edit: str) -> None:
    """No SMMLAR table (the general MBQM per lane) and activation bounds narrower than int8
    (the VMAX / VMIN clamp): MVE == DSP == portable on the same edited C; the bounds only
    clip TFLite-Micro's bytes, a missing table changes nothing."""
    directory, rows, want = _compiled(tmp_path, name)
    edited = edited_copy(directory, edit, tmp_path)
    want = want if edit == "rq_null" else np.clip(want, -100, 90)
    for label, cflags in BUILDS.items():
        work = tmp_path / f"build_{label}"
        work.mkdir()
        got = _run(edited, rows, [*cflags, "-Wno-unused-const-variable"], work)
        assert np.array_equal(got, want.reshape(got.shape)), label


# --------------------------------------------------------------- the host kernel cases

def _kernel_cases() -> list:
    import sys

    here = str(Path(__file__).resolve().parents[1] / "backends" / "c")
    if here not in sys.path:
        sys.path.insert(0, here)
    import kernel_cases_nn  # type: ignore[import-not-found]

    cases = []
    for seed, make in enumerate((kernel_cases_nn.conv_cases, kernel_cases_nn.depthwise_cases,
                                 kernel_cases_nn.fully_connected_cases)):
        cases += make(np.random.default_rng(100 + seed))
    return cases


MODEL_H = """#ifndef MODEL_H
#define MODEL_H
#include <stddef.h>
#define MODEL_NUM_OUTPUTS 1
void *model_input(int i);
const void *model_output(int i);
size_t model_input_bytes(int i);
size_t model_output_bytes(int i);
int model_invoke(void);
#endif
"""


def _cases_program(cases: list) -> tuple[str, bytes, np.ndarray]:
    """(model.c running every case in turn, the concatenated inputs, the interpreter's
    concatenated outputs). One-group convolutions get a scratch buffer of exactly
    MLK_CONV_SCRATCH_BYTES, as the planner gives them."""
    from harness import _render_case, input_bytes  # type: ignore[import-not-found]

    scratches: list[str] = []
    decls, bufs, funcs, steps = [], [], [], []
    n_in = n_out = 0
    for index, case in enumerate(cases):
        d, b, f, (inputs, (out_name, out_bytes)) = _render_case(index, case)
        text = "\n".join(d)
        for m in re.finditer(r"static const mlk_conv2d_params (\w+) = \{(.*?)\};", text,
                             re.S):
            fields = dict(re.findall(r"\.(\w+) = (-?\d+),", m[2]))
            if fields["groups"] != "1":
                continue
            k = int(fields["k_h"]) * int(fields["k_w"]) * int(fields["in_c"])
            scratch = f"{m[1]}_scratch"
            scratches.append(f"static int16_t {scratch}[MLK_CONV_SCRATCH_BYTES({k}, "
                        f"{fields['in_c']}) / 2];")
            text = text.replace(m[0], m[0].replace(".groups = 1,",
                                                   f".groups = 1,\n    .scratch = {scratch},"))
        decls.append(text)
        bufs += b
        funcs.append(f)
        for name, nbytes in inputs:
            steps.append(f"    memcpy({name}, ml_in + {n_in}, {nbytes}u);")
            n_in += nbytes
        steps.append(f"    c{index}_run();")
        steps.append(f"    memcpy(ml_out + {n_out}, {out_name}, {out_bytes}u);")
        n_out += out_bytes
    source = "\n".join([
        '#include <string.h>', '#include "model.h"', '#include "microlith_kernels.h"',
        *scratches, *decls, *bufs, *funcs,
        f"static unsigned char ml_in[{n_in}];", f"static unsigned char ml_out[{n_out}];",
        "void *model_input(int i) { (void)i; return ml_in; }",
        "const void *model_output(int i) { (void)i; return ml_out; }",
        f"size_t model_input_bytes(int i) {{ (void)i; return {n_in}u; }}",
        f"size_t model_output_bytes(int i) {{ (void)i; return {n_out}u; }}",
        "int model_invoke(void)", "{", *steps, "    return 0;", "}", ""])
    want = np.concatenate([np.asarray(c.expected[0]).view(np.int8).ravel() for c in cases])
    return source, input_bytes(cases), want


@pytest.mark.slow
def test_the_host_kernel_cases_on_the_m55(tmp_path: Path) -> None:
    """Every convolution, depthwise and fully connected case of the host kernel tests
    (``tests/backends/c/kernel_cases_nn.py``: batches 2 and 3, RELU6's narrow bounds, no bias,
    per-tensor weights, kernels larger than the input, rank-3 fully connected) on the M55:
    the MVE, DSP and portable builds give our integer interpreter's bytes (== TFLite-Micro)."""
    from microlith.backends.c.emitter import kernel_headers

    cases = _kernel_cases()
    source, data, want = _cases_program(cases)
    directory = tmp_path / "cases"
    directory.mkdir()
    for name, text in kernel_headers().items():
        (directory / name).write_text(text)
    (directory / "model.h").write_text(MODEL_H)
    (directory / "model.c").write_text(source)
    for label, cflags in BUILDS.items():
        work = tmp_path / f"build_{label}"
        work.mkdir()
        got = _run(directory, [data], cflags, work)
        assert np.array_equal(got[0], want), label


# ----------------------------------------------------------- the vector requantization

RQ_CHECK = r"""
#include "model.h"
#include "microlith_kernels.h"
#include "rq_data.h"
static int32_t ml_out[2];
static unsigned char ml_in[4];
void *model_input(int i) { (void)i; return ml_in; }
const void *model_output(int i) { (void)i; return ml_out; }
size_t model_input_bytes(int i) { (void)i; return 4u; }
size_t model_output_bytes(int i) { (void)i; return 8u; }
/* every accumulator through every 4-channel window of the table: mlk_mve_rq4's lanes
 * (unclamped) against mlk_rq, and against the MBQM the interpreter computes (want) */
int model_invoke(void)
{
    int32_t bad = 0, n = 0, a, c, j;
    for (c = 0; c + 4 <= RQ_CHANNELS; c += 4) {
        for (a = 0; a < RQ_ACCS; ++a) {
            int32_t lanes[4];
            const int32x4_t acc = vld1q_s32(rq_acc + a);
            vst1q_s32(lanes, mlk_mve_rq4(acc, rq_table + 3 * c, vctp32q(4u), INT32_MIN,
                                         INT32_MAX));
            for (j = 0; j < 4; ++j) {
                bad += lanes[j] != mlk_rq(rq_acc[a + j], rq_table + 3 * (c + j));
                bad += lanes[j] != rq_want[(c + j) * (RQ_ACCS + 3) + a + j];
                ++n;
            }
        }
    }
    ml_out[0] = n;
    ml_out[1] = bad;
    return 0;
}
"""


def _c_array(name: str, values: np.ndarray) -> str:
    body = ", ".join(str(int(v)) for v in values.ravel())
    return f"static const int32_t {name}[{values.size}] = {{{body}}};\n"


@pytest.mark.parametrize("y_zp", [0, -128, 37])
def test_the_vector_requantization_equals_mlk_rq_and_mbqm(tmp_path: Path, y_zp: int) -> None:
    """``mlk_mve_rq4`` (VRMULH, VSHL) lane by lane == ``mlk_rq`` (SMMLAR) == y_zp + MBQM, on
    the M55, for tables of multipliers in [2^30, 2^31) with right shifts 1..31 (1..23 with
    a zero point) and accumulators up to the table's bound, edges included."""
    from microlith.backends.c.emitter import kernel_headers
    from microlith.backends.c.render_nn import requant_table
    from microlith.quant.fixed_point import multiply_by_quantized_multiplier as mbqm

    rng = np.random.default_rng(200 + y_zp)
    bound = 1 << 21
    top = 32 if y_zp == 0 else 23
    mult = np.concatenate([[1 << 30, (1 << 31) - 1], rng.integers(1 << 30, 1 << 31, 22)])
    right = np.concatenate([[1, top - 1], rng.integers(1, top, 22)])
    table = requant_table(mult, -right, bound, y_zp)
    assert table is not None
    acc = np.concatenate([[0, 1, -1, 2, -2, bound - 1, 1 - bound, bound, -bound],
                          rng.integers(-bound, bound, 120), rng.integers(-300, 300, 60)])
    acc = np.concatenate([acc, acc[:3]])  # every window of four starting below acc.size - 3
    n_acc = acc.size - 3
    want = np.stack([mbqm(acc, int(m), -int(r)) + y_zp for m, r in zip(mult, right,
                                                                          strict=True)])
    directory = tmp_path / "rq"
    directory.mkdir()
    for name, text in kernel_headers().items():
        (directory / name).write_text(text)
    (directory / "model.h").write_text(MODEL_H)
    (directory / "rq_data.h").write_text(
        f"#define RQ_CHANNELS {mult.size}\n#define RQ_ACCS {n_acc}\n" +
        _c_array("rq_table", table) + _c_array("rq_acc", acc) + _c_array("rq_want", want))
    (directory / "model.c").write_text(RQ_CHECK)
    got = _run(directory, [b"\0" * 4], [], tmp_path)
    n, bad = np.frombuffer(got[0].tobytes(), np.int32)
    assert (n, bad) == (mult.size * n_acc, 0)
