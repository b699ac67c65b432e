"""The C target with ``--quantize int16x8``: bytes equal TFLite-Micro on our 16x8 ``.tflite``.

Every zoo model whose ops all have 16x8 kernels (a ``--fallback float`` model is
``tests/c_end_to_end/test_c_fallback.py``'s) is compiled for C
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
from tests.c_end_to_end.c_models import ZOO, host_build, host_outputs, write_files
from tests.test_int16x8 import compiled, data
from tools.mcu import run as board
from tools.runtimes import run_tflm

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

INTEGER_MODELS = ("lenet", "dscnn", "resnet8", "helper_matmul", "mobilenet_v1", "mlp_sigmoid")


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


def _ops_model(path) -> None:
    """Conv, LeakyRelu, Sub, Concat, MaxPool, AveragePool (pads, border not counted), Mul,
    Transpose, Gemm: the 16x8 C kernels the zoo does not reach."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32),
                                       name)

    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["a0"], pads=[1, 1, 1, 1]),
        helper.make_node("LeakyRelu", ["a0"], ["a"], alpha=0.1),
        helper.make_node("Conv", ["x", "wb"], ["b"]),
        helper.make_node("Sub", ["a", "b"], ["s"]),
        helper.make_node("Concat", ["s", "a"], ["c"], axis=1),
        helper.make_node("MaxPool", ["c"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["m"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["p", "m"], ["q"]),
        helper.make_node("Transpose", ["q"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["t"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "ops16", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [init("wa", 4, 3, 3, 3), init("ba", 4), init("wb", 4, 3, 1, 1), init("wf", 5, 128),
         init("bf", 5)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_c_16x8_other_kernels_equal_tflm(tmp_path) -> None:
    from microlith.formats.tflite.flatbuffer import parse_model
    from tools.runtimes import quantize_input, to_physical

    path = tmp_path / "ops16.onnx"
    _ops_model(path)
    rng = np.random.default_rng(3)
    cal = rng.standard_normal((64, 3, 8, 8)).astype(np.float32)
    xs = rng.standard_normal((40, 3, 8, 8)).astype(np.float32)
    options = {"quantize": "int16x8", "calibration_data": cal, "quiet": True}
    tfl = compile_onnx(path, CompileOptions(**options))
    c = compile_onnx(path, CompileOptions(target="c", **options))
    model = parse_model(tfl.output)
    ops = {op.op for op in model.operators}
    assert {"LEAKY_RELU", "SUB", "CONCATENATION", "MAX_POOL_2D", "AVERAGE_POOL_2D",
            "MUL"} <= ops, ops
    q = model.tensors[model.inputs[0]].quant
    perm = tfl.graph.meta.get("io_perms", {}).get(tfl.graph.inputs[0].name)
    feeds = np.ascontiguousarray(quantize_input(to_physical(xs, perm), q.scale[0],
                                                q.zero_point[0], "int16"))
    want = run_tflm(tfl.output, feeds, flatten=True)
    exe = host_build(write_files(tmp_path / "gen", c.files), c.graph.inputs[0].name,
                     "sanitize", tmp_path / "b")
    assert np.array_equal(host_outputs(exe, feeds, np.int16), want)


MBQM64_CHECK = r"""
#include <stdio.h>
#include "microlith_kernels.h"

/* TFLite's MultiplyByQuantizedMultiplier(int64 x, m, s) in 128-bit arithmetic (exact floor),
 * its low 32 bits as the int32 result */
static int32_t oracle(int64_t x, int32_t m, int s)
{
    const __int128 r = m < 0x7FFF0000 ? (m + (1 << 15)) >> 16 : 0x7FFF;
    const int t = 15 - s;
    __int128 v = (__int128)x * r + ((__int128)1 << (t - 1));
    const __int128 d = (__int128)1 << t;
    __int128 q = v / d;
    if (v % d != 0 && v < 0) {
        q -= 1;
    }
    return (int32_t)(uint32_t)(unsigned __int128)q;
}

int main(void)
{
    static const int64_t edges[] = {0, 1, -1, 2, -2, ((int64_t)1 << 47) - 1, -((int64_t)1 << 47),
                                    INT32_MAX, INT32_MIN, (int64_t)1 << 40, -((int64_t)1 << 40)};
    uint64_t st = 88172645463325252ull;
    long bad = 0, n = 0;
    for (int s = -31; s <= 7; ++s) {
        for (int i = 0; i < 100000; ++i) {
            int64_t x;
            int32_t m;
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            x = i < 11 ? edges[i] : (int64_t)(st >> 17) - ((int64_t)1 << 46);
            if ((i & 3) == 1) {
                x >>= (st >> 40) & 31;
            }
            m = (int32_t)((1u << 30) | ((uint32_t)(st >> 32) & 0x3FFFFFFFu));
            m = i == 20 ? 0 : i == 21 ? INT32_MAX : m;
            m = i == 22 ? 0x7FFF0000 - 1 : i == 23 ? 0x7FFF0000 : m;
            ++n;
            bad += mlk_mbqm64(x, m, s) != oracle(x, m, s);
        }
    }
    printf("%ld %ld\n", n, bad);
    return 0;
}
"""


def test_mbqm64_equals_the_exact_tflite_rounding(tmp_path) -> None:
    """``mlk_mbqm64`` (a 32-bit funnel shift for right shifts under 32, the plain int64 form
    beyond) equals TFLite's 64-bit MultiplyByQuantizedMultiplier, evaluated exactly in 128
    bits, over every shift -31..7 and accumulators across |x| < 2^47 (low 32 bits compared,
    so results past int32 wrap alike)."""
    import subprocess

    from microlith.backends.c.emitter import kernel_headers

    for name, text in kernel_headers().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "check.c").write_text(MBQM64_CHECK)
    exe = tmp_path / "check"
    subprocess.run(["gcc", "-std=gnu99", "-O2", "-Wall", "-Wextra", "-Werror", "-I",
                    str(tmp_path), str(tmp_path / "check.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3900000", "0"]
