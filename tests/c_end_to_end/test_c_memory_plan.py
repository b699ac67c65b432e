"""The C target's static memory plan, checked independently of ``microlith.memory_plan``.

From the graph's node order: no two simultaneously live tensors overlap unless the
overlap is a legal alias (a reshape-like view of the same bytes, or an in-place
element-wise op writing over its dying input 0), every range is inside the arena and
aligned, and the arena is at most 1.15x the liveness lower bound on every zoo model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.ir.core import Graph
from microlith.memory_plan import MemoryPlan
from microlith.passes.pipelines import int8_pipeline
from tests.c_end_to_end.c_models import (
    MODELS,
    ZOO,
    CModel,
    samples,
)

pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

MAX_ARENA_OVER_LOWER_BOUND = 1.15
# Rules of ``microlith.memory_plan`` (restated here on purpose: the test is the spec).
VIEW_OPS = ("tfl.reshape",)  # the C target's ops, after legalize-c
INPLACE_OPS = ("tfl.relu", "tfl.logistic", "tfl.tanh", "tfl.leaky_relu", "tfl.hard_swish",
               "tfl.add", "tfl.sub", "tfl.mul", "c.lut")


# --------------------------------------------------------------------------- memory plan


def recomputed_lifetimes(graph: Graph) -> dict[str, tuple[int, int]]:
    """First definition .. last use of every activation in the graph's node order."""
    end = max(len(graph.nodes) - 1, 0)
    span: dict[str, list[int]] = {v.name: [0, 0] for v in graph.inputs}
    for step, node in enumerate(graph.nodes):
        for v in node.inputs:
            if v is not None and not v.is_constant:
                span.setdefault(v.name, [step, step])[1] = step
        for v in node.outputs:
            span.setdefault(v.name, [step, step])
    for v in graph.outputs:
        span[v.name][1] = end
    return {name: (a, b) for name, (a, b) in span.items()}


def check_memory_plan(graph: Graph, plan: MemoryPlan) -> dict[str, int]:
    """Assert ``plan`` is a valid static layout for ``graph``; returns alias counts by kind.

    Two tensors may share bytes while both are live only if they are a *view* pair (a
    reshape-like node's output and its same-sized input, at the same offset) or an
    *in-place* pair (an element-wise node's output over its same-sized input 0, which is
    no graph input or output and whose bytes — through any view — are not read later).
    """
    life = recomputed_lifetimes(graph)
    values = {v.name: v for v in graph.values.values()}
    assert set(plan.offsets) == set(life), "every activation (and only those) is planned"
    assert plan.lifetimes == life, "the plan's lifetimes follow the graph's node order"
    align = plan.alignment
    assert align > 0 and align & (align - 1) == 0
    assert plan.arena_size % align == 0
    for name, offset in plan.offsets.items():
        assert plan.sizes[name] == values[name].type.nbytes, name
        assert offset >= 0 and offset % align == 0, f"{name}: offset {offset} not aligned"
        assert offset + plan.sizes[name] <= plan.arena_size, f"{name} ends past the arena"

    view_root: dict[str, str] = {name: name for name in life}

    def find(name: str) -> str:
        while view_root[name] != name:
            name = view_root[name]
        return name

    inplace: list[tuple[int, str, str]] = []  # (step, input 0, output)
    outputs = {v.name for v in graph.outputs}
    graph_io = {v.name for v in graph.inputs} | outputs
    for step, node in enumerate(graph.nodes):
        x = node.inputs[0] if node.inputs else None
        if x is None or x.is_constant or len(node.outputs) != 1:
            continue
        y = node.output
        if x.type.nbytes != y.type.nbytes:
            continue
        if node.op in VIEW_OPS:
            view_root[find(y.name)] = find(x.name)
        elif node.op in INPLACE_OPS and x.name not in graph_io:
            inplace.append((step, x.name, y.name))

    def legal(a: str, b: str) -> str | None:
        if plan.offsets[a] != plan.offsets[b]:
            return None  # a partial overlap is never an alias
        if find(a) == find(b):
            return "view"
        for step, x, y in inplace:
            if {find(a), find(b)} != {find(x), find(y)}:
                continue
            old = [n for n in life if find(n) == find(x)]
            new = [n for n in life if find(n) == find(y)]
            if (max(life[n][1] for n in old) <= step <= min(life[n][0] for n in new)
                    and not outputs & set(old)):
                return "in-place"
        return None

    kinds = {"view": 0, "in-place": 0}
    names = sorted(plan.offsets)
    for i, a in enumerate(names):
        (oa, sa), (fa, la) = (plan.offsets[a], plan.sizes[a]), life[a]
        for b in names[i + 1:]:
            (ob, sb), (fb, lb) = (plan.offsets[b], plan.sizes[b]), life[b]
            if fa <= lb and fb <= la and oa < ob + sb and ob < oa + sa:
                kind = legal(a, b)
                assert kind is not None, (
                    f"{graph.name}: {a!r} [{oa}, {oa + sa}) steps {fa}..{la} and {b!r} "
                    f"[{ob}, {ob + sb}) steps {fb}..{lb} overlap and are not an alias")
                kinds[kind] += 1
    for node_name, (offset, size) in plan.scratch.items():
        step = next(i for i, n in enumerate(graph.nodes) if n.name == node_name)
        assert offset % align == 0 and offset + size <= plan.arena_size
        for name, (first, last) in life.items():
            if first <= step <= last:
                assert offset >= plan.offsets[name] + plan.sizes[name] or \
                    plan.offsets[name] >= offset + size, f"scratch of {node_name} over {name}"
    # The lower bound: the most bytes of distinct buffers (alias groups) live at one step.
    group = {name: name for name in life}

    def top(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for a in names:
        if find(a) != a and plan.offsets[a] == plan.offsets[find(a)]:
            group[top(a)] = top(find(a))
    for _, x, y in inplace:
        if plan.offsets[x] == plan.offsets[y] and legal(x, y) == "in-place":
            group[top(y)] = top(x)
    buffers: dict[str, list[int]] = {}
    for name, (first, last) in life.items():
        buf = buffers.setdefault(top(name), [0, first, last])
        buf[0] = max(buf[0], plan.sizes[name])
        buf[1], buf[2] = min(buf[1], first), max(buf[2], last)
    for node_name, (_, size) in plan.scratch.items():  # kernel scratch: live at its node
        step = next(i for i, n in enumerate(graph.nodes) if n.name == node_name)
        buffers[f"scratch:{node_name}"] = [size, step, step]
    lower = max((sum(size for size, first, last in buffers.values() if first <= s <= last)
                 for s in range(max(len(graph.nodes), 1))), default=0)
    assert plan.lower_bound == lower, (plan.lower_bound, lower)
    assert plan.lower_bound <= plan.arena_size
    return kinds


def plan_for(name: str) -> tuple[Graph, MemoryPlan]:
    """helper_ops has ops without a C kernel: plan its int8 (float fallback) graph."""
    calibration, _ = samples(name)
    spec = int8_pipeline(fallback="float") + ",prepare,plan-memory"
    result = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(
        pipeline=spec, quantize="int8", calibration_data=calibration, quiet=True))
    return result.graph, result.graph.meta["memory_plan"]


@pytest.mark.parametrize("name", [*MODELS, "helper_ops"])
def test_memory_plan_is_valid_and_tight(models: dict[str, CModel], name: str) -> None:
    graph, plan = (models[name].graph, models[name].plan) if name in models else plan_for(name)
    kinds = check_memory_plan(graph, plan)
    assert plan.arena_size <= MAX_ARENA_OVER_LOWER_BOUND * plan.lower_bound, \
        f"{name}: arena {plan.arena_size} > {MAX_ARENA_OVER_LOWER_BOUND} x lower bound " \
        f"{plan.lower_bound}"
    if name in models:
        assert models[name].result.sizes["arena"] == plan.arena_size
        assert models[name].result.sizes["lower_bound"] == plan.lower_bound
    if name in ("resnet8", "mlp_sigmoid", "helper_matmul", "helper_ops"):
        assert kinds["in-place"] > 0, f"{name}: expected in-place element-wise ops"
    # FULLY_CONNECTED flattens its input itself: no flatten is left to be a view
    assert not any(n.op == "tfl.reshape" and n.output.users() and all(
        u.op == "tfl.fully_connected" for u in n.output.users()) for n in graph.nodes), name


def test_memory_plan_checker_rejects_bad_plans(models: dict[str, CModel]) -> None:
    """Must-not-pass: the checker catches an overlap, a misaligned and a too-big offset."""
    graph, good = models["lenet"].graph, models["lenet"].plan
    conv, pool = graph.nodes[0].output.name, graph.nodes[1].output.name  # live together

    def variant(offsets: dict[str, int]) -> MemoryPlan:
        return MemoryPlan(good.arena_size, {**good.offsets, **offsets}, good.sizes,
                          good.lifetimes, good.lower_bound, good.alignment, good.scratch)

    cases = {"overlap": {pool: good.offsets[conv]},
             "conv-over-its-input": {graph.inputs[0].name: good.offsets[conv]},
             "misaligned": {pool: good.offsets[pool] + 1},
             "outside": {pool: good.arena_size}}
    check_memory_plan(graph, good)
    for case, offsets in cases.items():
        with pytest.raises(AssertionError):
            check_memory_plan(graph, variant(offsets))
            pytest.fail(f"the checker accepted the bad plan {case!r}")


def test_no_inplace_over_an_input_read_later(tmp_path: Path) -> None:
    """``b = Sigmoid(a); y = Add(a, b)``: the Sigmoid may not write over ``a`` (read by the
    Add later); the Add may write over its dying input 0 ``a``."""
    from onnx import TensorProto, helper, numpy_helper


    scale = numpy_helper.from_array(np.full((1, 64), 0.5, np.float32), "scale")
    graph_def = helper.make_graph(
        [helper.make_node("Mul", ["x", "scale"], ["a"], name="mul"),
         helper.make_node("Sigmoid", ["a"], ["b"], name="sigmoid"),
         helper.make_node("Add", ["a", "b"], ["y"], name="add")], "inplace",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [scale])
    path = tmp_path / "inplace.onnx"
    onnx.save(helper.make_model(graph_def, opset_imports=[helper.make_opsetid("", 17)]), path)
    calib = np.random.default_rng(3).standard_normal((32, 64)).astype(np.float32)
    result = compile_onnx(path, CompileOptions(target="c", quantize="int8",
                                               calibration_data=calib, quiet=True))
    graph, plan = result.graph, result.graph.meta["memory_plan"]
    assert [n.op for n in graph.nodes] == ["tfl.mul", "c.lut", "tfl.add"]  # Sigmoid: a table
    assert check_memory_plan(graph, plan)["in-place"] == 1
    assert plan.offsets["y"] == plan.offsets["a"] != plan.offsets["b"]
    bad = MemoryPlan(plan.arena_size, {**plan.offsets, "b": plan.offsets["a"]}, plan.sizes,
                     plan.lifetimes, plan.lower_bound, plan.alignment)
    with pytest.raises(AssertionError, match="overlap and are not an alias"):
        check_memory_plan(graph, bad)
