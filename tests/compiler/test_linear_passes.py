"""Passes stay linear: the indexed structures behind them agree with the plain ones.

* ``Graph`` records ``before``/``after`` placements and removals and applies them at the
  next read of ``graph.nodes``: random edit sequences give exactly the order that
  ``list.insert`` / ``list.remove`` give.
* ``plan_memory`` (per-buffer read horizons, per-step placement lists, swept lower bound)
  gives the same plan as the direct quadratic formulation, kept here as the reference.
* An operation count, not a timing: the number of reads of ``graph.nodes`` (each one a
  walk of the whole list) per pass of the int8 C pipeline does not grow with the chain.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.ir import core
from microlith.ir.core import Graph, Node, Value
from microlith.ir.ops import Memory, get_op
from microlith.ir.types import DType, TensorType
from microlith.memory_plan import plan_memory
from microlith.pipeline import manager
from tools.bench_scaling import CHANNELS, SIDE, calibration_file, chain_model


def t(n: int) -> TensorType:
    return TensorType(DType.INT8, (1, n))


# ---- pending placements ------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_pending_placements_match_list_insert(seed: int) -> None:
    rng = random.Random(seed)
    graph = Graph()
    x = graph.add_input("x", t(4))
    reference: list[Node] = []
    for step in range(300):
        action = rng.random()
        if action < 0.15 and reference:
            victim = rng.choice(reference)
            graph.remove_node(victim)
            reference.remove(victim)
        elif action < 0.3 or not reference:
            reference.append(graph.add_node("Relu", [x], name=f"n{step}", output_types=[t(4)]))
        else:
            anchor = rng.choice(reference[-5:] if rng.random() < 0.5 else reference)
            where = {"before": anchor} if rng.random() < 0.5 else {"after": anchor}
            node = graph.add_node("Relu", [x], name=f"n{step}", output_types=[t(4)], **where)
            at = reference.index(anchor) + (0 if "before" in where else 1)
            reference.insert(at, node)
        if rng.random() < 0.1:  # a read in the middle applies what is pending
            assert graph.nodes == reference
    assert [n.name for n in graph.nodes] == [n.name for n in reference]
    assert all(n.graph is graph for n in graph.nodes)


def test_placement_next_to_a_pending_or_removed_node() -> None:
    graph = Graph()
    x = graph.add_input("x", t(4))
    a = graph.add_node("Relu", [x], name="a", output_types=[t(4)])
    b = graph.add_node("Relu", [x], name="b", output_types=[t(4)], after=a)
    graph.add_node("Relu", [x], name="c", output_types=[t(4)], after=b)  # b is pending
    graph.add_node("Relu", [x], name="d", output_types=[t(4)], before=b)
    graph.add_node("Relu", [x], name="e", output_types=[t(4)], after=a)
    graph.remove_node(b)  # its neighbours stay where they were placed
    assert [n.name for n in graph.nodes] == ["a", "e", "d", "c"]
    with pytest.raises(ValueError, match="not in the graph"):
        graph.add_node("Relu", [x], name="f", output_types=[t(4)], after=b)


def test_sort_and_copy_see_pending_edits() -> None:
    graph = Graph()
    x = graph.add_input("x", t(4))
    a = graph.add_node("Relu", [x], name="a", output_types=[t(4)])
    graph.add_node("Relu", [a.output], name="b", output_types=[t(4)])
    graph.add_node("Relu", [x], name="c", output_types=[t(4)], before=a)
    clone = graph.copy()
    graph.sort()
    assert [n.name for n in graph.nodes] == ["c", "a", "b"]
    assert [n.name for n in clone.nodes] == ["c", "a", "b"]


# ---- plan-memory against the direct formulation --------------------------------------

def reference_plan(graph: Graph, scratch: dict[str, int], alignment: int, inplace: bool
                   ) -> tuple[dict[str, int], int, int, dict[str, tuple[int, int]]]:
    """(offsets, arena, lower bound, scratch) by scanning the graph for every question."""
    nodes, end = graph.nodes, max(len(graph.nodes) - 1, 0)
    group: dict[str, str] = {}

    def root(name: str) -> str:
        while group.get(name, name) != name:
            name = group[name]
        return name

    spans: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}

    def touch(value: Value, step: int) -> None:
        sizes[value.name] = value.type.nbytes
        span = spans.setdefault(value.name, [step, step])
        span[0], span[1] = min(span[0], step), max(span[1], step)

    for value in graph.inputs:
        touch(value, 0)
    for step, node in enumerate(nodes):
        for v in [*node.inputs, *node.outputs]:
            if v is not None and not v.is_constant:
                touch(v, step)
    for value in graph.outputs:
        touch(value, end)
        spans[value.name][1] = end
    for step, node in enumerate(nodes):
        x, out = node.inputs[0], node.output
        memory = get_op(node.op).memory
        if x is None or x.is_constant or out.type.nbytes != x.type.nbytes:
            continue
        last_read = max(i for i, n in enumerate(nodes) if any(v is x for v in n.inputs))
        r = root(x.name)
        read_later = any(v is not None and not v.is_constant and root(v.name) == r
                         for later in nodes[step + 1:] for v in later.inputs)
        if memory is Memory.ALIAS or (
                inplace and memory is Memory.INPLACE and x not in graph.inputs
                and x not in graph.outputs and last_read == step and not read_later
                and all(root(o.name) != r for o in graph.outputs)):
            group[root(out.name)] = r
    buffers: dict[str, list] = {}  # root -> [names, size, first, last]
    for name in sizes:
        buf = buffers.setdefault(root(name), [[], 0, spans[name][0], spans[name][1]])
        buf[0].append(name)
        buf[1] = max(buf[1], sizes[name])
        buf[2], buf[3] = min(buf[2], spans[name][0]), max(buf[3], spans[name][1])
    for name, nbytes in sorted(scratch.items()):
        if nbytes > 0:
            step = next(i for i, n in enumerate(nodes) if n.name == name)
            buffers[f"scratch:{name}"] = [[], nbytes, step, step]
    placed: list[tuple[list, int]] = []

    def align(n: int) -> int:
        return (n + alignment - 1) // alignment * alignment

    for buf in sorted(buffers.values(), key=lambda b: (-b[1], b[2], sorted(b[0]))):
        offset = 0
        for other, at in sorted(((o, a) for o, a in placed if o[2] <= buf[3] and buf[2] <= o[3]),
                                key=lambda p: p[1]):
            if offset + buf[1] <= at:
                break
            offset = max(offset, align(at + other[1]))
        placed.append((buf, offset))
    arena = align(max((at + b[1] for b, at in placed), default=0))
    lower = max(sum(b[1] for b, _ in placed if b[2] <= s <= b[3]) for s in range(end + 1))
    offsets = {name: at for b, at in placed for name in b[0]}
    scratch_at = {key.split(":", 1)[1]: (at, b[1]) for key, b in buffers.items()
                  for bb, at in placed if bb is b and key.startswith("scratch:")}
    return offsets, arena, lower, scratch_at


def random_graph(rng: random.Random, count: int) -> tuple[Graph, dict[str, int]]:
    """A random DAG of in-place (relu, add), aliasing (reshape) and plain (conv) ops."""
    graph = Graph()
    values = [graph.add_input("x", t(16))]
    if rng.random() < 0.5:
        values.append(graph.add_input("y", t(rng.choice((16, 32)))))
    shape = graph.add_constant(np.array([1, 16], np.int32), "shape")
    scratch: dict[str, int] = {}
    for i in range(count):
        op = rng.choice(("tfl.relu", "tfl.add", "tfl.reshape", "tfl.conv_2d"))
        pick = [rng.choice(values[-4:] if rng.random() < 0.7 else values) for _ in range(2)]
        inputs: list[Value | None] = {"tfl.relu": pick[:1], "tfl.add": pick,
                                      "tfl.reshape": [pick[0], shape],
                                      "tfl.conv_2d": [pick[0], shape]}[op]
        size = inputs[0].type.shape[1] if op != "tfl.conv_2d" or rng.random() < 0.5 else \
            rng.choice((8, 16, 32, 48))
        node = graph.add_node(op, inputs, name=f"n{i}", output_types=[t(size)])
        values.append(node.output)
        if op == "tfl.conv_2d" and rng.random() < 0.5:
            scratch[node.name] = rng.choice((0, 8, 24))
    graph.outputs = [values[-1]] + ([rng.choice(values[1:-1])] if rng.random() < 0.4 else [])
    return graph, scratch


@pytest.mark.parametrize("seed", range(40))
def test_plan_memory_matches_the_direct_formulation(seed: int) -> None:
    rng = random.Random(seed)
    graph, scratch = random_graph(rng, rng.randint(1, 40))
    alignment, inplace = rng.choice((1, 4, 16)), rng.random() < 0.8
    plan = plan_memory(graph, scratch, alignment, inplace)
    offsets, arena, lower, scratch_at = reference_plan(graph, scratch, alignment, inplace)
    assert plan.offsets == offsets
    assert (plan.arena_size, plan.lower_bound) == (arena, lower)
    assert plan.scratch == scratch_at


# ---- operation count -----------------------------------------------------------------

def node_list_reads(monkeypatch: pytest.MonkeyPatch, model: Path, calibration: Path
                    ) -> Counter[str]:
    """Reads of ``Graph.nodes`` per pass while compiling ``model`` to int8 C."""
    counts: Counter[str] = Counter()
    current = ["import"]
    plain = core.Graph.nodes

    def counted(self: Graph) -> list[Node]:
        counts[current[0]] += 1
        return plain.fget(self)  # type: ignore[misc]

    class Tag(manager.Instrument):
        def before(self, pass_: object, graph: Graph) -> None:
            current[0] = str(pass_)

    monkeypatch.setattr(core.Graph, "nodes", property(counted, plain.fset))
    run = manager.PassManager.run

    def tagged(self: manager.PassManager, graph: Graph, ctx: object = None) -> Graph:
        self.instruments.append(Tag())
        return run(self, graph, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(manager.PassManager, "run", tagged)
    compile_onnx(model, CompileOptions(target="c", quantize="int8", quiet=True,
                                       calibration_data=str(calibration)))
    monkeypatch.undo()
    return counts


def test_node_list_walks_per_pass_do_not_grow_with_the_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    for nodes in (30, 120):
        model, calibration = tmp_path / f"chain{nodes}.onnx", tmp_path / f"cal{nodes}.npy"
        chain_model(nodes, str(model))
        calibration_file((1, CHANNELS, SIDE, SIDE), str(calibration))
        reads.append(node_list_reads(monkeypatch, model, calibration))
    assert {"fuse-requantize", "insert-qdq", "plan-memory"} <= set(reads[0])
    assert reads[0] == reads[1]
