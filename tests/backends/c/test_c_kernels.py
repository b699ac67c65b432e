"""The C kernels and their renderers vs the integer interpreter (== TFLite-Micro), byte for byte.

Every op gets several one-node graphs (seeded random int8 data, realistic scales and zero
points, strides / dilations / asymmetric pads / depth multipliers / broadcast shapes /
fused activations, the table and the arithmetic path of element-wise ops, in-place
aliasing); all of them are rendered into one C program, compiled with
``-std=c99 -Wall -Wextra -Werror -pedantic`` at -O2, at -Os and with
``-fsanitize=address,undefined``, and every output must equal ``run_graph``'s bytes.
Every node of the int8 zoo models (real weights and quantization, inputs from the
interpreter) is checked the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import kernel_cases_data
import kernel_cases_elementwise
import kernel_cases_nn
import numpy as np
import pytest
from harness import (
    Case,
    build_and_run,
    isolate,
    one_node_graph,
    qparams,
    qtype,
)
from kernel_cases_nn import conv_cases

from microlith.backends.c import render_ops
from microlith.backends.c.render_context import RenderContext
from microlith.diagnostics import BackendError
from microlith.interpreter import run_graph
from microlith.ir.core import Graph
from microlith.ir.ops import all_ops
from microlith.ir.types import DType, TensorType
from microlith.passes import legalize_c

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")

# Every case generator, in this order: one seeded generator feeds them all in turn.
GENERATORS = {**kernel_cases_nn.GENERATORS, **kernel_cases_elementwise.GENERATORS,
              **kernel_cases_data.GENERATORS}


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def op_results(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(20240611)
    groups = {name: gen(rng) for name, gen in GENERATORS.items()}
    cases = [c for group in groups.values() for c in group]
    results = build_and_run(cases, tmp_path_factory.mktemp("c_kernels"))
    by_case = {id(c): {build: outs[i] for build, outs in results.items()}
               for i, c in enumerate(cases)}
    return groups, by_case


def _assert_identical(case: Case, outputs: dict[str, np.ndarray]) -> None:
    expected = case.expected[0].reshape(-1)
    for build, got in outputs.items():
        got = got.reshape(-1)
        assert got.dtype == expected.dtype and got.size == expected.size, case.name
        if expected.dtype.kind == "f":
            same = np.array_equal(got.view(np.uint32), expected.view(np.uint32))
        else:
            same = np.array_equal(got, expected)
        if not same:
            diff = np.flatnonzero(got.reshape(-1) != expected.reshape(-1))
            raise AssertionError(
                f"{case.name} ({build}): {diff.size} of {expected.size} elements differ, "
                f"first at {diff[:5].tolist()}: C {got[diff[:5]].tolist()} vs "
                f"interpreter {expected[diff[:5]].tolist()}")


@pytest.mark.parametrize("group", sorted(GENERATORS))
def test_kernel_matches_interpreter(op_results, group: str) -> None:
    groups, by_case = op_results
    assert groups[group]
    for case in groups[group]:
        _assert_identical(case, by_case[id(case)])


def test_table_and_arithmetic_paths_both_covered(op_results) -> None:
    groups, _ = op_results
    for group, kernel in [("logistic", "mlk_logistic_i8("), ("tanh", "mlk_tanh_i8("),
                          ("hard_swish", "mlk_hard_swish_i8("), ("relu", "mlk_relu_i8("),
                          ("leaky_relu", "mlk_leaky_relu_i8(")]:
        texts = []
        for case in groups[group][:2]:
            ctx = RenderContext(tensor_expr=lambda v: v.name)
            texts.append(render_ops.render_node(ctx, case.node))
        assert kernel in texts[0] and "mlk_lut_i8(" in texts[1], group


def test_every_int8_op_has_a_renderer() -> None:
    """Every ONNX-level op with an int8 rule lowers for C, into ops the C backend renders."""
    needed = {name for name, opdef in all_ops().items()
              if opdef.has_int8_kernel and opdef.dialect == "onnx"}
    needed |= {"QuantizeLinear", "DequantizeLinear"}
    assert not sorted(needed - set(legalize_c.RULES))
    from microlith.quant.registry import integer_ops

    # the C kernels are the integer kernels: every integer target op renders
    assert sorted(set(integer_ops()) - set(render_ops.RENDERERS)) == [
        "DequantizeLinear", "QuantizeLinear"]


def test_every_float_c_op_has_a_float_renderer() -> None:
    """legalize-c's float op set is exactly what the float renderers (and reshape) emit."""
    assert set(legalize_c.FLOAT_C_OPS) == set(render_ops.FLOAT_RENDERERS) | {"tfl.reshape"}


def test_rendering_is_deterministic() -> None:
    case = conv_cases(np.random.default_rng(1))[2]
    texts = []
    for _ in range(2):
        ctx = RenderContext(tensor_expr=lambda v: f"(arena + {len(v.name)})")
        texts.append(render_ops.render_node(ctx, case.node) + "\n".join(ctx.declarations))
    assert texts[0] == texts[1]
    assert "(const int8_t *)((arena + 2))" in texts[0]


def _c_problems(graph: Graph) -> str:
    from microlith.pipeline import PassContext

    try:
        legalize_c.LegalizeC().run(graph, PassContext())
    except BackendError as exc:
        return str(exc)
    return ""


def test_check_c_supported_reasons() -> None:
    rng = np.random.default_rng(2)
    ok = conv_cases(rng)[0].node
    assert render_ops.check_c_supported(ok) is None
    float_graph = Graph("f")
    x = float_graph.add_input("x", TensorType(DType.FLOAT32, (1, 4)))
    float_graph.add_node("Relu", [x])
    assert _c_problems(float_graph) == ""  # the float C target: mlk_unary_f32
    float_abs = Graph("d")  # ABS: a float .tflite builtin without a C kernel
    a = float_abs.add_input("a", TensorType(DType.FLOAT32, (1, 4)))
    float_abs.add_node("Abs", [a])
    assert "no C kernel for tfl.abs" in _c_problems(float_abs)
    softmax = one_node_graph("Softmax", [qtype((2, 3), 0.1, 0)], qparams(1 / 256, -128),
                             axis=0)
    assert _c_problems(softmax) == ""  # any axis now: TRANSPOSE around SOFTMAX
    bad_softmax = one_node_graph("Softmax", [qtype((2, 3), 0.1, 0)], qparams(0.01, 0))
    bad_softmax.rewrite_node(bad_softmax.nodes[0], "tfl.softmax", bad_softmax.nodes[0].inputs,
                             {"beta": 1.0})
    assert "1/256" in render_ops.check_c_supported(bad_softmax.nodes[0])
    exp = Graph("e")
    xq = exp.add_input("x", qtype((1, 4), 0.1, 0))
    exp.add_node("Sqrt", [xq], output_types=[qtype((1, 4), 0.1, 0)])
    assert "no C kernel" in _c_problems(exp)
    assert getattr(ok.params, "scratch_bytes", 0) == 0


# --------------------------------------------------------------------------- zoo models

ZOO_DIR = Path(__file__).resolve().parents[2] / "zoo"
ZOO = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")


@pytest.fixture(scope="module")
def zoo_cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    digits = pytest.importorskip("tools.digits")
    from microlith.app.driver import CompileOptions, compile_onnx

    tmp = tmp_path_factory.mktemp("zoo_calib")
    images = digits.load_digits_split(16, "NCHW")
    flat = digits.load_digits_split(8, "flat")
    np.savez(tmp / "conv.npz", input=images[0][:300])
    np.savez(tmp / "flat.npz", input=flat[0][:300])
    cases = []
    for model in ZOO:
        calib = tmp / ("flat.npz" if model == "mlp_sigmoid" else "conv.npz")
        graph = compile_onnx(str(ZOO_DIR / f"{model}.onnx"),
                             CompileOptions(quantize="int8", calibration_data=str(calib),
                                            quiet=True)).graph
        test = (images if model != "mlp_sigmoid" else flat)[2][:3]
        for k, sample in enumerate(test):
            x = sample[None]
            if x.ndim == 4:
                x = x.transpose(0, 2, 3, 1)  # the compiled graph's input is NHWC
            q = graph.inputs[0].quant
            xq = np.clip(np.round(x / q.scale[0]) + q.zero_point[0], -128, 127).astype(np.int8)
            values = run_graph(graph, {graph.inputs[0].name: xq}, keep_all=True)
            for node in graph.nodes:
                cases.append(isolate(node, values, f"{model} #{k} {node.name} ({node.op})"))
    return cases


def test_zoo_nodes_match_interpreter(zoo_cases: list[Case], tmp_path_factory) -> None:
    for case in zoo_cases:
        assert render_ops.check_c_supported(case.node) is None, case.name
    results = build_and_run(zoo_cases, tmp_path_factory.mktemp("c_zoo"), ("O2", "sanitize"))
    for i, case in enumerate(zoo_cases):
        _assert_identical(case, {build: outs[i] for build, outs in results.items()})
