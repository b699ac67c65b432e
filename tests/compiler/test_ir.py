"""The IR: Graph API invariants, tensor types, the verifier and the printer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microlith.frontend.onnx_import import load_onnx
from microlith.ir.core import Graph, Node, Use, Value
from microlith.ir.printer import INLINE_LIMIT, constant_digest, print_graph
from microlith.ir.types import DType, QuantParams, TensorType
from microlith.ir.verifier import VerificationError, verify
from microlith.passes.pipelines import default_pipeline
from microlith.pipeline import PassContext, PassManager, parse_pipeline

ZOO = Path(__file__).resolve().parents[1] / "zoo"
F32 = DType.FLOAT32


def t(*shape: int, dtype: DType = F32) -> TensorType:
    return TensorType(dtype, tuple(shape))


def uses(value: Value) -> list[tuple[str, int]]:
    return [(use.node.name, use.index) for use in value.uses]


@pytest.fixture
def chain() -> Graph:
    """x -> a = Relu(x) -> b = Add(a, c) -> out; c a 4-element constant."""
    graph = Graph("chain")
    x = graph.add_input("x", t(1, 4))
    c = graph.add_constant(np.arange(4, dtype=np.float32).reshape(1, 4), "c")
    a = graph.add_node("Relu", [x], name="a")
    b = graph.add_node("Add", [a.output, c], name="b")
    graph.outputs = [b.output]
    verify(graph)
    return graph


# ---- Graph API ------------------------------------------------------------------------

def test_add_node_records_uses_and_infers_types(chain: Graph) -> None:
    x, a, b = chain.inputs[0], chain.node("a"), chain.node("b")
    assert uses(x) == [("a", 0)]
    assert uses(a.output) == [("b", 0)]
    assert uses(chain.values["c"]) == [("b", 1)]
    assert a.output.producer is a and b.output.type == t(1, 4)
    assert a.output.name == "a" and chain.values["a"] is a.output


def test_add_node_places_before_and_after(chain: Graph) -> None:
    x = chain.inputs[0]
    first = chain.add_node("Neg", [x], name="first", before=chain.node("a"))
    middle = chain.add_node("Abs", [x], name="middle", after=chain.node("a"))
    assert [n.name for n in chain.nodes] == ["first", "a", "middle", "b"]
    assert uses(x) == [("a", 0), ("first", 0), ("middle", 0)]
    assert first.graph is chain and middle.graph is chain


def test_unique_names() -> None:
    graph = Graph()
    x = graph.add_input("x", t(2))
    n1 = graph.add_node("Relu", [x], name="r")
    n2 = graph.add_node("Relu", [x], name="r")
    assert (n1.name, n2.name) == ("r", "r_1")
    assert (n1.output.name, n2.output.name) == ("r", "r_1")
    assert graph.add_constant(np.zeros(2, np.float32), "x").name == "x_1"
    with pytest.raises(ValueError, match="already defined"):
        graph._register(Value("x", t(2)))


def test_set_input_moves_the_use(chain: Graph) -> None:
    b, x, a = chain.node("b"), chain.inputs[0], chain.node("a")
    b.set_input(0, x)
    assert uses(a.output) == [] and uses(x) == [("a", 0), ("b", 0)]
    verify(chain)


def test_replace_all_uses_moves_every_use_and_graph_outputs() -> None:
    graph = Graph()
    x = graph.add_input("x", t(3))
    a = graph.add_node("Relu", [x], name="a")
    twice = graph.add_node("Add", [a.output, a.output], name="twice")
    neg = graph.add_node("Neg", [a.output], name="neg")
    graph.outputs = [a.output, twice.output]
    new = graph.add_node("Abs", [x], name="new", after=a)
    graph.replace_all_uses(a.output, new.output)
    assert uses(a.output) == []
    assert sorted(uses(new.output)) == [("neg", 0), ("twice", 0), ("twice", 1)]
    assert twice.inputs == [new.output, new.output] and neg.inputs == [new.output]
    assert graph.outputs == [new.output, twice.output]
    graph.replace_all_uses(new.output, new.output)  # a no-op, not a duplication
    assert len(new.output.uses) == 3
    graph.remove_node(a)
    verify(graph)


def test_remove_node_of_a_used_node_fails(chain: Graph) -> None:
    with pytest.raises(ValueError, match="cannot remove a: output a is still used"):
        chain.remove_node(chain.node("a"))
    with pytest.raises(ValueError, match="cannot remove b"):
        chain.remove_node(chain.node("b"))  # a graph output
    verify(chain)  # nothing changed


def test_remove_node_clears_uses_and_values(chain: Graph) -> None:
    x = chain.inputs[0]
    dead = chain.add_node("Sigmoid", [x], name="dead")
    chain.remove_node(dead)
    assert "dead" not in chain.values and dead.graph is None
    assert uses(x) == [("a", 0)] and dead not in chain.nodes
    assert chain.unique_node_name("dead") == "dead"  # the name is free again
    verify(chain)


def test_remove_value_rules(chain: Graph) -> None:
    with pytest.raises(ValueError, match="still in use"):
        chain.remove_value(chain.values["c"])
    spare = chain.add_constant(np.ones(2, np.float32), "spare")
    chain.remove_value(spare)
    assert "spare" not in chain.values
    verify(chain)


def test_sort_is_stable() -> None:
    graph = Graph()
    x = graph.add_input("x", t(2))
    names = ["p", "q", "r", "s"]
    for name in names:  # independent nodes: any order is topological
        graph.add_node("Relu", [x], name=name)
    graph.sort()
    assert [n.name for n in graph.nodes] == names
    late = graph.add_node("Neg", [x], name="late")
    graph.add_node("Abs", [late.output], name="user", before=graph.node("q"))
    graph.sort()
    # Only the misplaced node moves, just after its producer; the rest keep their order.
    assert [n.name for n in graph.nodes] == ["p", "q", "r", "s", "late", "user"]
    order = [n.name for n in graph.nodes]
    graph.sort()
    assert [n.name for n in graph.nodes] == order  # idempotent


def test_sort_moves_a_producer_forward_minimally() -> None:
    graph = Graph()
    x = graph.add_input("x", t(2))
    a = graph.add_node("Relu", [x], name="a")
    b = graph.add_node("Neg", [x], name="b")
    c = graph.add_node("Abs", [x], name="c")
    c.set_input(0, b.output)
    graph.nodes = [a, c, b]
    graph.sort()
    assert [n.name for n in graph.nodes] == ["a", "b", "c"]


def test_sort_reports_a_node_on_the_cycle() -> None:
    graph = Graph()
    x = graph.add_input("x", t(2))
    down = graph.add_node("Relu", [x], name="downstream")
    b = graph.add_node("Neg", [x], name="loop_b")
    c = graph.add_node("Abs", [b.output], name="loop_c")
    b.set_input(0, c.output)
    down.set_input(0, c.output)  # stuck too, but not on the cycle
    with pytest.raises(ValueError, match=r"cycle through node 'loop_[bc]'"):
        graph.sort()
    with pytest.raises(VerificationError):
        verify(graph)


def test_copy_is_deep_and_prints_identically() -> None:
    graph = load_onnx(ZOO / "resnet8.onnx")
    graph.meta["applied_passes"] = ["infer-shapes"]
    graph.nodes[0].meta["note"] = {"k": [1]}
    before = print_graph(graph)
    clone = graph.copy()
    verify(clone)
    assert print_graph(clone) == before
    assert all(a is not b for a, b in zip(graph.nodes, clone.nodes, strict=True))
    assert all(u.node.graph is clone for v in clone.values.values() for u in v.uses)
    # Mutating the clone leaves the original alone: IR, attributes and metadata.
    clone.nodes[0].attrs["strides"] = (2, 2)
    clone.nodes[0].meta["note"]["k"].append(2)
    clone.values[clone.inputs[0].name].meta["x"] = 1
    PassManager(parse_pipeline(default_pipeline())).run(clone, PassContext(warn=lambda m: None))
    assert graph.meta["applied_passes"] == ["infer-shapes"]
    assert "io_perms" not in graph.meta
    assert graph.nodes[0].meta["note"] == {"k": [1]}
    assert graph.inputs[0].meta == {}
    assert print_graph(graph) == before
    verify(graph)


def test_copy_shares_read_only_constant_data(chain: Graph) -> None:
    clone = chain.copy()
    assert clone.values["c"].data is chain.values["c"].data
    assert not clone.values["c"].data.flags.writeable


# ---- types ------------------------------------------------------------------------------

def test_quant_params_validation() -> None:
    assert str(QuantParams((0.5,), (3,))) == "q<0.5:3>"
    assert QuantParams((0.5, 0.25), (0, 0), axis=0).per_axis
    with pytest.raises(ValueError, match="same length"):
        QuantParams((0.5, 0.25), (0,), axis=0)
    with pytest.raises(ValueError, match="exactly one scale"):
        QuantParams((0.5, 0.25), (0, 0))
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and positive"):
            QuantParams((bad,), (0,))
    with pytest.raises(ValueError, match="at least one scale"):
        QuantParams((), (), axis=0)


def test_per_axis_sizes_are_checked() -> None:
    per_axis = QuantParams((0.1, 0.2, 0.3), (0, 0, 0), axis=0)
    typed = TensorType(DType.INT8, (3, 2), per_axis)
    assert typed.quant is per_axis and "axis=0,n=3" in str(typed)
    with pytest.raises(ValueError, match="3 scales for dimension 1 of size 2"):
        TensorType(DType.INT8, (3, 2), QuantParams((0.1, 0.2, 0.3), (0, 0, 0), axis=1))
    with pytest.raises(ValueError, match="out of range"):
        TensorType(DType.INT8, (3, 2), QuantParams((0.1,) * 3, (0,) * 3, axis=2))
    assert typed.with_shape((2, 3)).quant is None
    assert typed.with_quant(None) == TensorType(DType.INT8, (3, 2))


def test_tensor_type_basics() -> None:
    assert str(t(1, 3, 8, 8)) == "tensor<1x3x8x8xf32>" and str(t(dtype=DType.INT64)) == \
        "tensor<i64>"
    assert t(2, 3).nbytes == 24 and t().numel == 1 and t(2, 0).numel == 0
    with pytest.raises(ValueError, match="non-negative"):
        t(2, -1)
    assert DType.from_numpy(np.int8) is DType.INT8
    with pytest.raises(ValueError, match="unsupported element type float64"):
        DType.from_numpy(np.float64)


# ---- verifier: each invariant broken on purpose -----------------------------------------

def _break_value_table(g: Graph) -> None:
    g.values["alias"] = g.values["c"]


def _const_with_producer(g: Graph) -> None:
    g.values["c"].producer = g.node("a")


def _const_shape(g: Graph) -> None:
    g.values["c"].set_type(t(4))


def _foreign_node(g: Graph) -> None:
    g.node("a").graph = Graph()


def _unknown_op(g: Graph) -> None:
    g.node("a").op = "Bogus"


def _arity(g: Graph) -> None:
    a = g.node("a")
    a.inputs.append(g.inputs[0])
    g.inputs[0].uses.append(Use(a, 1))


def _unknown_attr(g: Graph) -> None:
    g.node("a").attrs["colour"] = "red"


def _bad_activation(g: Graph) -> None:
    g.node("b").attrs["activation"] = "SWISH"


def _use_before_def(g: Graph) -> None:
    g.nodes.reverse()


def _missing_use(g: Graph) -> None:
    g.values["a"].uses.clear()


def _duplicate_use(g: Graph) -> None:
    g.values["a"].uses.append(Use(g.node("b"), 0))


def _input_not_in_graph(g: Graph) -> None:
    stranger = Value("stranger", t(1, 4), np.zeros((1, 4), np.float32))
    g.node("b").set_input(1, stranger)


def _other_producer(g: Graph) -> None:
    g.values["a"].producer = g.node("b")


def _output_not_in_graph(g: Graph) -> None:
    del g.values["a"]


def _wrong_shape(g: Graph) -> None:
    g.values["a"].set_type(t(4, 1))


def _wrong_dtype(g: Graph) -> None:
    g.values["a"].set_type(t(1, 4, dtype=DType.INT32))


def _stale_use(g: Graph) -> None:
    removed = Node("Relu", "ghost")
    g.inputs[0].uses.append(Use(removed, 0))


def _undefined_output(g: Graph) -> None:
    g.outputs = [Value("nowhere", t(1, 4))]


BROKEN = {
    "value table": (_break_value_table,
                    "value table is inconsistent at 'alias' \\(holds value 'c'\\)"),
    "const producer": (_const_with_producer, "constant 'c' has a producer"),
    "const shape": (_const_shape, "constant 'c' data shape"),
    "foreign node": (_foreign_node, "node 'a' \\(Relu\\) does not belong"),
    "unknown op": (_unknown_op, "node 'a' \\(Bogus\\): unknown op"),
    "arity": (_arity, "node 'a' \\(Relu\\): 2 inputs, expected 1..1"),
    "unknown attr": (_unknown_attr, "node 'a' \\(Relu\\): unknown attributes \\['colour'\\]"),
    "activation": (_bad_activation, "node 'b' \\(Add\\): bad activation 'SWISH'"),
    "order": (_use_before_def, "node 'b' \\(Add\\): input 0 'a' is used before it is defined"),
    "missing use": (_missing_use, "node 'b' \\(Add\\): use list of 'a'"),
    "duplicate use": (_duplicate_use, "node 'b' \\(Add\\): use list of 'a' holds input 0 2"),
    "foreign input": (_input_not_in_graph,
                      "node 'b' \\(Add\\): input 1 'stranger' is not in the graph"),
    "other producer": (_other_producer, "node 'a' \\(Relu\\): output 'a' has another producer"),
    "output missing": (_output_not_in_graph, "node 'a' \\(Relu\\): output 'a' is not in the graph"),
    "shape": (_wrong_shape, "node 'a' \\(Relu\\): output 'a' has shape \\(4, 1\\)"),
    "dtype": (_wrong_dtype, "node 'a' \\(Relu\\): output 'a' has element type i32"),
    "stale use": (_stale_use, "stale use of 'x' by 'ghost'"),
    "undefined output": (_undefined_output, "graph output 'nowhere' is never defined"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_verifier_names_the_broken_node(chain: Graph, case: str) -> None:
    breaker, message = BROKEN[case]
    breaker(chain)
    with pytest.raises(VerificationError, match=message):
        verify(chain)


@pytest.mark.parametrize("name", ["lenet", "resnet8", "helper_ops", "helper_matmul"])
def test_imported_and_compiled_zoo_models_verify(name: str) -> None:
    graph = load_onnx(ZOO / f"{name}.onnx")
    verify(graph)
    PassManager(parse_pipeline(default_pipeline()), verify_each=True).run(
        graph, PassContext(warn=lambda m: None))
    verify(graph)


# ---- printer ----------------------------------------------------------------------------

def test_printer_numbering_and_layout(chain: Graph) -> None:
    assert print_graph(chain) == (
        "graph @chain(%arg0: tensor<1x4xf32>) {\n"
        "  %c0 = const tensor<1x4xf32> [0, 1, 2, 3]  # c\n"
        "  %0 = Relu(%arg0) : tensor<1x4xf32>  # a\n"
        "  %1 = Add(%0, %c0) : tensor<1x4xf32>  # b\n"
        "  return %1\n"
        "}\n")


def test_printer_numbering_ignores_creation_order_and_tensor_names() -> None:
    def build(reverse: bool, prefix: str) -> Graph:
        graph = Graph("g")
        x = graph.add_input(prefix + "x", t(2))
        values = [np.full(2, i, np.float32) for i in range(3)]
        made = {}
        for i in (reversed(range(3)) if reverse else range(3)):
            made[i] = graph.add_constant(values[i], f"{prefix}k{i}")
        h = x
        for i in range(3):
            h = graph.add_node("Add", [h, made[i]], name=f"add{i}").output
        graph.outputs = [h]
        return graph

    one, two = print_graph(build(False, "")), print_graph(build(True, "other_"))
    strip = [line.split("  #")[0] for line in one.splitlines()]
    assert strip == [line.split("  #")[0] for line in two.splitlines()]
    assert "%c0 = const tensor<2xf32> [0, 0]" in one and "%c2 = const tensor<2xf32> [2, 2]" in two


def test_printer_big_constants_by_shape_and_hash() -> None:
    graph = Graph()
    x = graph.add_input("x", t(3, 3))
    big = np.arange(9, dtype=np.float32).reshape(3, 3)
    small = np.arange(INLINE_LIMIT, dtype=np.float32)
    k_big = graph.add_constant(big, "big")
    k_small = graph.add_constant(small, "small")
    add = graph.add_node("Add", [x, k_big])
    graph.outputs = [add.output, k_small]
    text = print_graph(graph)
    assert f"%c0 = const tensor<3x3xf32> #{constant_digest(big)}  # big" in text
    assert "%c1 = const tensor<8xf32> [0, 1, 2, 3, 4, 5, 6, 7]  # small" in text
    assert "return %0, %c1" in text
    assert constant_digest(big) != constant_digest(big + 1)
    assert constant_digest(big) != constant_digest(big.reshape(9))  # shape is hashed too
    assert constant_digest(big) == constant_digest(big.copy())


def test_printer_sorts_attributes_and_formats_scalars() -> None:
    graph = Graph()
    x = graph.add_input("x", t(1, 4))
    clip = graph.add_node("Clip", [x], {"min": -float("inf"), "max": 6.0})
    flag = graph.add_node("Cast", [clip.output], {"to": "bool"})
    graph.outputs = [flag.output]
    text = print_graph(graph)
    assert "Clip(%arg0) {max=6, min=-inf}" in text
    assert 'Cast(%0) {to="bool"} : tensor<1x4xbool>' in text


@pytest.mark.parametrize("name", ["lenet", "mobilenet_v1", "helper_ops"])
def test_two_loads_print_byte_identically(name: str) -> None:
    texts = []
    for _ in range(2):
        graph = load_onnx(ZOO / f"{name}.onnx")
        texts.append(print_graph(graph))
        PassManager(parse_pipeline(default_pipeline())).run(graph, PassContext(warn=lambda m: None))
        texts.append(print_graph(graph))
    assert texts[0] == texts[2] and texts[1] == texts[3]
